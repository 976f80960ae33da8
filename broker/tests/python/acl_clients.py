#!/usr/bin/env python3
"""ACLs enforced on a SASL_PLAINTEXT listener, driven through confluent-kafka's AdminClient and
checked with confluent-kafka and kafka-python clients.

Usage: acl_clients.py SASL_BOOTSTRAP PREFIX setup|after-restart

Users (the broker's users file): admin (a super user), alice, bob.

setup:
1. admin creates PREFIX-orders-a, PREFIX-orders-b, PREFIX-secret and writes 3 records to each;
2. bob (no ACLs) gets TOPIC_AUTHORIZATION_FAILED producing (confluent and kafka-python), sees
   none of the topics in Metadata and reads nothing;
3. admin grants alice READ on topics prefixed PREFIX-orders- and READ on group PREFIX-g:
   alice consumes both orders topics in group PREFIX-g (6 records), sees only them in Metadata,
   cannot read PREFIX-secret, and cannot use group PREFIX-other (GROUP_AUTHORIZATION_FAILED);
   an offset of PREFIX-secret committed into PREFIX-g by admin is TOPIC_AUTHORIZATION_FAILED
   when alice asks for it by name, and left out of her list of all the group's offsets;
4. a DENY READ on PREFIX-orders-b beats the prefixed ALLOW;
5. alice's transactional producer without WRITE on its transactional id is refused;
6. describe_acls lists what was created; delete_acls removes a temporary ACL; alice may not
   list ACLs (CLUSTER_AUTHORIZATION_FAILED);
7. given WRITE on its transactional id and the topics, alice's transactional producer commits.
after-restart (the broker was killed with SIGKILL and restarted): the ACLs of setup still hold.

Prints "OK <step>" and exits 0, or exits 1 with a message.
"""

import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer
from confluent_kafka import TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

TIMEOUT_S = 20


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def auth(bootstrap, user):
    return {
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "PLAIN",
        "sasl.username": user,
        "sasl.password": f"{user}-secret",
    }


def produce(bootstrap, user, topic, values):
    """Delivery errors (KafkaError codes) of producing `values` as `user`."""
    errors = []

    def report(err, _msg):
        if err is not None:
            errors.append(err.code())

    p = Producer({**auth(bootstrap, user), "acks": "all", "message.timeout.ms": 8000})
    for v in values:
        p.produce(topic, v, callback=report)
    p.flush(TIMEOUT_S)
    return errors


def read(bootstrap, user, topics, group, wait_s=TIMEOUT_S, expect=None):
    """(values, error codes) that `user` reads from partition 0 of `topics`."""
    c = Consumer({
        **auth(bootstrap, user),
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    c.assign([TopicPartition(t, 0, OFFSET_BEGINNING) for t in topics])
    got, errors = [], []
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and (expect is None or len(got) < expect):
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error() is not None:
            errors.append(m.error().code())
        else:
            got.append(m.value())
    c.close()
    return got, errors


def subscribe_read(bootstrap, user, topics, group, expect):
    """Consumes through the group protocol: (values, error codes)."""
    c = Consumer({
        **auth(bootstrap, user),
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    c.subscribe(topics)
    got, errors = [], []
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline and len(got) < expect:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error() is not None:
            errors.append(m.error().code())
            if m.error().code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
                break
        else:
            got.append(m.value())
    if got:
        try:
            c.commit(asynchronous=False)
        except KafkaException as e:
            errors.append(e.args[0].code())
    c.close()
    return got, errors


def visible_topics(bootstrap, user, prefix):
    a = AdminClient(auth(bootstrap, user))
    md = a.list_topics(timeout=TIMEOUT_S)
    return sorted(t for t in md.topics if t.startswith(prefix))


def acl(restype, name, pattern, principal, op, perm):
    return AclBinding(restype, name, pattern, principal, "*", op, perm)


def create_acls(admin, bindings):
    for b, f in admin.create_acls(bindings, request_timeout=TIMEOUT_S).items():
        f.result()


def check_alice(bootstrap, prefix):
    """What the ACLs of setup give alice (and deny her)."""
    a_topic, b_topic, secret = f"{prefix}-orders-a", f"{prefix}-orders-b", f"{prefix}-secret"
    got, errors = read(bootstrap, "alice", [a_topic], f"{prefix}-g", expect=3)
    if len(got) < 3:
        fail(f"alice read {got} from {a_topic} (errors {errors})")
    got, errors = read(bootstrap, "alice", [b_topic], f"{prefix}-g", wait_s=6)
    if got or KafkaError.TOPIC_AUTHORIZATION_FAILED not in errors:
        fail(f"DENY on {b_topic} does not beat the prefixed ALLOW: {got} {errors}")
    got, errors = read(bootstrap, "alice", [secret], f"{prefix}-g", wait_s=6)
    if got:
        fail(f"alice read {secret} without an ACL: {got} {errors}")
    seen = visible_topics(bootstrap, "alice", prefix)
    if seen != [a_topic, b_topic]:
        fail(f"alice sees {seen} in Metadata")


def check_offsets(bootstrap, prefix):
    """OffsetFetch as Kafka answers it: admin commits an offset of PREFIX-secret into group
    PREFIX-g too; alice, asking for it by name, gets TOPIC_AUTHORIZATION_FAILED on that
    partition (and her own topic's offset), and the admin API's list of all the group's offsets
    leaves PREFIX-secret out for her."""
    a_topic, secret, group = f"{prefix}-orders-a", f"{prefix}-secret", f"{prefix}-g"
    c = Consumer({**auth(bootstrap, "admin"), "group.id": group, "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition(secret, 0, 2)], asynchronous=False)
    c.close()
    c = Consumer({**auth(bootstrap, "alice"), "group.id": group, "enable.auto.commit": False})
    asked = c.committed([TopicPartition(a_topic, 0), TopicPartition(secret, 0)], timeout=TIMEOUT_S)
    c.close()
    mine, theirs = asked
    if mine.error is not None or mine.offset != 3:
        fail(f"alice's committed offset of {a_topic}: {mine.offset} {mine.error}, want 3")
    if theirs.error is None or theirs.error.code() != KafkaError.TOPIC_AUTHORIZATION_FAILED:
        fail(f"alice fetched the offset of {secret}: {theirs.offset} {theirs.error}")
    from confluent_kafka import ConsumerGroupTopicPartitions

    admin = AdminClient(auth(bootstrap, "alice"))
    listed = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
    parts = listed[group].result().topic_partitions
    topics = sorted({tp.topic for tp in parts})
    if secret in topics or a_topic not in topics:
        fail(f"alice's list of {group}'s offsets: {topics}")


def setup(bootstrap, prefix):
    a_topic, b_topic, secret = f"{prefix}-orders-a", f"{prefix}-orders-b", f"{prefix}-secret"
    admin = AdminClient(auth(bootstrap, "admin"))
    for f in admin.create_topics([NewTopic(t, 1, 1) for t in (a_topic, b_topic, secret)]).values():
        f.result()
    for t in (a_topic, b_topic, secret):
        errors = produce(bootstrap, "admin", t, [f"{t}-{i}".encode() for i in range(3)])
        if errors:
            fail(f"the super user could not produce to {t}: {errors}")

    # bob has no ACLs at all.
    errors = produce(bootstrap, "bob", a_topic, [b"x"])
    if errors != [KafkaError.TOPIC_AUTHORIZATION_FAILED]:
        fail(f"bob's produce: {errors}, want TOPIC_AUTHORIZATION_FAILED")
    from kafka import KafkaProducer
    from kafka.errors import TopicAuthorizationFailedError

    kp = KafkaProducer(
        bootstrap_servers=bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_plain_username="bob",
        sasl_plain_password="bob-secret",
        max_block_ms=8000,
    )
    try:
        kp.send(a_topic, b"x").get(timeout=10)
        fail("kafka-python: bob produced without an ACL")
    except TopicAuthorizationFailedError:
        pass
    finally:
        kp.close(timeout=5)
    if visible_topics(bootstrap, "bob", prefix):
        fail(f"bob sees topics in Metadata: {visible_topics(bootstrap, 'bob', prefix)}")
    got, _ = read(bootstrap, "bob", [a_topic], f"{prefix}-bob", wait_s=5)
    if got:
        fail(f"bob read {got}")
    print("OK no-acls", flush=True)

    create_acls(admin, [
        acl(ResourceType.TOPIC, f"{prefix}-orders-", ResourcePatternType.PREFIXED,
            "User:alice", AclOperation.READ, AclPermissionType.ALLOW),
        acl(ResourceType.GROUP, f"{prefix}-g", ResourcePatternType.LITERAL,
            "User:alice", AclOperation.READ, AclPermissionType.ALLOW),
    ])
    got, errors = subscribe_read(bootstrap, "alice", [a_topic, b_topic], f"{prefix}-g", 6)
    if len(got) != 6 or errors:
        fail(f"alice in group {prefix}-g read {len(got)} records, errors {errors}")
    got, errors = subscribe_read(bootstrap, "alice", [a_topic], f"{prefix}-other", 3)
    if got or KafkaError.GROUP_AUTHORIZATION_FAILED not in errors:
        fail(f"alice used group {prefix}-other without an ACL: {got} {errors}")
    check_offsets(bootstrap, prefix)
    print("OK prefix-and-group", flush=True)

    create_acls(admin, [
        acl(ResourceType.TOPIC, b_topic, ResourcePatternType.LITERAL,
            "User:alice", AclOperation.READ, AclPermissionType.DENY),
    ])
    check_alice(bootstrap, prefix)
    print("OK deny-wins", flush=True)

    tp = Producer({**auth(bootstrap, "alice"), "transactional.id": f"{prefix}-tx"})
    try:
        tp.init_transactions(TIMEOUT_S)
        fail("alice initialised a transaction without WRITE on its transactional id")
    except KafkaException as e:
        if e.args[0].code() != KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
            fail(f"init_transactions: {e}")
    print("OK transactional-id", flush=True)

    temp = acl(ResourceType.TOPIC, f"{prefix}-temp", ResourcePatternType.LITERAL,
               "User:bob", AclOperation.WRITE, AclPermissionType.ALLOW)
    create_acls(admin, [temp])
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                  AclOperation.ANY, AclPermissionType.ANY)
    listed = admin.describe_acls(everything, request_timeout=TIMEOUT_S).result()
    if len(listed) != 4 or temp not in listed:
        fail(f"describe_acls: {listed}")
    bobs = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.MATCH, "User:bob", None,
                            AclOperation.ANY, AclPermissionType.ANY)
    deleted = [d for f in admin.delete_acls([bobs], request_timeout=TIMEOUT_S).values()
               for d in f.result()]
    if deleted != [temp]:
        fail(f"delete_acls removed {deleted}")
    listed = admin.describe_acls(everything, request_timeout=TIMEOUT_S).result()
    if len(listed) != 3:
        fail(f"after delete_acls: {listed}")
    # librdkafka hands back an empty list for DescribeAcls' top-level error; kafka-python's
    # admin client raises it, so it checks that the broker refuses alice.
    from kafka import KafkaAdminClient
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ResourcePatternFilter
    from kafka.admin import ResourceType as KResourceType, ACLResourcePatternType
    from kafka.errors import ClusterAuthorizationFailedError

    ka = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_plain_username="alice",
        sasl_plain_password="alice-secret",
    )
    try:
        listed = ka.describe_acls(ACLFilter(
            principal=None, host="*", operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(KResourceType.ANY, None,
                                                   ACLResourcePatternType.ANY)))
        fail(f"alice listed ACLs without DESCRIBE on the cluster: {listed}")
    except ClusterAuthorizationFailedError:
        pass
    finally:
        ka.close()
    print("OK admin-client", flush=True)

    # With WRITE on its transactional id and on the topics, the same producer commits.
    create_acls(admin, [
        acl(ResourceType.TRANSACTIONAL_ID, f"{prefix}-tx", ResourcePatternType.LITERAL,
            "User:alice", AclOperation.WRITE, AclPermissionType.ALLOW),
        acl(ResourceType.TOPIC, f"{prefix}-orders-", ResourcePatternType.PREFIXED,
            "User:alice", AclOperation.WRITE, AclPermissionType.ALLOW),
    ])
    tp = Producer({**auth(bootstrap, "alice"), "transactional.id": f"{prefix}-tx"})
    tp.init_transactions(TIMEOUT_S)
    tp.begin_transaction()
    tp.produce(a_topic, b"in-a-transaction")
    tp.commit_transaction(TIMEOUT_S)
    got, errors = read(bootstrap, "alice", [a_topic], f"{prefix}-g", expect=4)
    if len(got) != 4 or got[-1] != b"in-a-transaction":
        fail(f"after alice's transaction {a_topic} holds {got} (errors {errors})")
    print("OK transaction-allowed", flush=True)


def main():
    if len(sys.argv) != 4:
        fail(__doc__)
    bootstrap, prefix, step = sys.argv[1:]
    if step == "setup":
        setup(bootstrap, prefix)
    elif step == "after-restart":
        check_alice(bootstrap, prefix)
        print("OK after-restart", flush=True)
    else:
        fail(f"unknown step {step}")


if __name__ == "__main__":
    main()
