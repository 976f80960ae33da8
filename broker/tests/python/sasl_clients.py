#!/usr/bin/env python3
"""SASL_PLAINTEXT with confluent-kafka (librdkafka) and kafka-python: PLAIN, SCRAM-SHA-256 and
SCRAM-SHA-512.

Usage: sasl_clients.py SASL_BOOTSTRAP TOPIC_PREFIX

The broker's users file holds alice=alice-secret. For each client and mechanism:
1. alice produces 5 messages (acks=all) to TOPIC_PREFIX-<client>-<mechanism> and reads them back
   from the beginning: the exact values, in order;
2. alice with a wrong password, and an unknown user, are refused (librdkafka reports the
   authentication error) and see no metadata (one mechanism each, to keep the timeouts short);
Then a client without SASL on the SASL listener gets nothing (its connection is closed).

Prints "OK 6" (client/mechanism pairs passed) and exits 0, or exits 1 with a message.
"""

import sys
import time
import traceback

MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
from secure_roundtrip import TIMEOUT_S, confluent_roundtrip, fail


def sasl_conf(bootstrap, mechanism):
    return {
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": mechanism,
        "sasl.username": "alice",
        "sasl.password": "alice-secret",
    }


def confluent_refused(bootstrap, mechanism, user, password):
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient

    errors = []
    a = AdminClient({
        "bootstrap.servers": bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": mechanism,
        "sasl.username": user,
        "sasl.password": password,
        "error_cb": errors.append,
    })
    try:
        md = a.list_topics(timeout=5)
        fail(f"confluent {mechanism} {user}/{password}: got metadata {md.topics}")
    except KafkaException:
        pass
    # error_cb runs from poll().
    deadline = time.monotonic() + 10
    while not errors and time.monotonic() < deadline:
        a.poll(0.5)
    if not any(e.code() == KafkaError._AUTHENTICATION for e in errors):
        fail(f"confluent {mechanism} {user}/{password}: no authentication error, got {errors}")


def kafka_python_roundtrip(bootstrap, topic, mechanism):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    auth = dict(
        bootstrap_servers=bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_plain_username="alice",
        sasl_plain_password="alice-secret",
    )
    p = KafkaProducer(acks="all", **auth)
    values = [f"kp-{mechanism}-{i}".encode() for i in range(5)]
    for v in values:
        p.send(topic, v).get(timeout=TIMEOUT_S)
    p.close()
    c = KafkaConsumer(enable_auto_commit=False, consumer_timeout_ms=2000, **auth)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    got = [m.value for m in c][: len(values)]
    c.close()
    if got != values:
        fail(f"kafka-python {mechanism}: read {got}, want {values}")


def kafka_python_refused(bootstrap, mechanism, user, password):
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    try:
        p = KafkaProducer(
            bootstrap_servers=bootstrap,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism=mechanism,
            sasl_plain_username=user,
            sasl_plain_password=password,
            request_timeout_ms=5000,
            max_block_ms=5000,
            bootstrap_timeout_ms=5000,
        )
        p.partitions_for("anything")
        fail(f"kafka-python {mechanism} {user}/{password}: connected")
    except KafkaError as e:
        return str(e)


def main():
    bootstrap, prefix = sys.argv[1], sys.argv[2]
    passed = 0
    for mechanism in MECHANISMS:
        slug = mechanism.lower().replace("-", "")
        confluent_roundtrip(sasl_conf(bootstrap, mechanism), f"{prefix}-confluent-{slug}", mechanism)
        kafka_python_roundtrip(bootstrap, f"{prefix}-kp-{slug}", mechanism)
        passed += 2
    # Each refusal costs the client's own timeout (5 s): a wrong password and an unknown user
    # per client, over different mechanisms.
    confluent_refused(bootstrap, "PLAIN", "alice", "wrong-password")
    confluent_refused(bootstrap, "SCRAM-SHA-512", "mallory", "alice-secret")
    kafka_python_refused(bootstrap, "SCRAM-SHA-256", "alice", "wrong-password")
    kafka_python_refused(bootstrap, "PLAIN", "mallory", "alice-secret")
    # No SASL at all on the SASL listener: nothing.
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient
    try:
        md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=5)
        fail(f"a PLAINTEXT client got metadata from the SASL listener: {md.topics}")
    except KafkaException:
        pass
    print(f"OK {passed}")


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception:
        traceback.print_exc()
        sys.exit(1)
