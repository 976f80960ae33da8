#!/bin/sh
# The ACLs of the secure compose stack (docker-compose.secure.yml): each service's SCRAM user
# gets what it uses and nothing more, as kafka-acls.sh would grant it. Run once by the stack's
# `kafka-acls` service as the super user admin; adding an ACL that exists is a no-op, so a
# restart runs it again harmlessly.
set -eu
acls() { broker acls --add "$@"; }

# connect: its internal topics, groups and exactly-once source transactional ids (all named
# connect-...), the orders it sinks and the tutorial's my_topic_users it sources and sinks.
acls --allow-principal User:connect --resource-pattern-type prefixed --topic connect- --operation All
acls --allow-principal User:connect --resource-pattern-type prefixed --group connect- --operation Read --operation Describe
acls --allow-principal User:connect --resource-pattern-type prefixed --transactional-id connect- --operation Write --operation Describe
acls --allow-principal User:connect --topic orders --operation Read --operation Describe
acls --allow-principal User:connect --topic my_topic_users --operation Read --operation Write --operation Describe --operation Create
acls --allow-principal User:connect --cluster --operation IdempotentWrite

# order-service: publishes orders in transactions (transactional ids order-service-N; the
# settle consumer's group order-service-N-settle), registers its instance in the registry.
acls --allow-principal User:order-service --topic orders --operation Write --operation Read --operation Describe --operation Create
acls --allow-principal User:order-service --resource-pattern-type prefixed --transactional-id order-service --operation Write --operation Describe
acls --allow-principal User:order-service --resource-pattern-type prefixed --group order-service --operation Read --operation Describe
acls --allow-principal User:order-service --cluster --operation IdempotentWrite

# the registry (datasync-registry): every service announces itself and reads the others.
for svc in order-service user-service; do
    acls --allow-principal "User:$svc" --topic datasync-registry --operation Write --operation Read --operation Describe --operation Create
    acls --allow-principal "User:$svc" --resource-pattern-type prefixed --group datasync-registry-reader- --operation Read --operation Describe
done

# console: sees everything, changes nothing (it runs --read-only in this stack).
acls --allow-principal User:console --topic '*' --operation Describe --operation Read --operation DescribeConfigs
acls --allow-principal User:console --group '*' --operation Describe --operation Read
acls --allow-principal User:console --cluster --operation Describe --operation DescribeConfigs

broker acls --list
