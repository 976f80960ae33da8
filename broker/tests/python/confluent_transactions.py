#!/usr/bin/env python3
"""Transactions through the broker with confluent-kafka's transactional producer (librdkafka).

Usage: confluent_transactions.py BOOTSTRAP TOPIC

1. TOPIC with 1 partition and max.message.bytes=2000; a producer with transactional.id initialises.
2. Transaction "c" (5 records) is committed, "a" (5 records) is aborted.
3. Abort on error: transaction "e" sends 3 records, then one larger than the topic's
   max.message.bytes, which the broker refuses (MESSAGE_TOO_LARGE); commit_transaction() then
   reports that the transaction must be aborted, and it is. Transaction "d" (3 records) is
   then committed the way applications do it: retried after an abortable error (the first
   attempt meets the sequence gap the refused record left, OUT_OF_ORDER_SEQUENCE_NUMBER as in
   Kafka, and librdkafka bumps the epoch with InitProducerId, KIP-360, when it aborts).
4. A second producer with the same transactional.id fences the first, which had transaction
   "z" open: the first cannot commit it (fatal error); the second commits "f" (2 records).
5. A read_committed consumer sees exactly c, d, f in order; a read_uncommitted one sees every
   record (c, a, e, d, z, f).

Prints "OK" and exits 0 on success, exits 1 with a message otherwise.
"""

import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

TIMEOUT_S = 30


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def producer(bootstrap):
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": "py-tx",
            "transaction.timeout.ms": 60000,
            "message.timeout.ms": 10000,
            "linger.ms": 2,
        }
    )
    p.init_transactions(TIMEOUT_S)
    return p


def send(p, topic, prefix, n, partition=0):
    for i in range(n):
        p.produce(topic, key=f"{prefix}-{i}", value=f"{prefix}-{i}", partition=partition)
    p.flush(TIMEOUT_S)


def read(bootstrap, topic, isolation, expected, quiet=1.0):
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{isolation}",
            "enable.auto.commit": False,
            "isolation.level": isolation,
            "fetch.wait.max.ms": 50,
        }
    )
    c.assign([TopicPartition(topic, 0, 0)])
    values = []
    deadline = time.monotonic() + TIMEOUT_S
    quiet_until = None
    while time.monotonic() < deadline:
        if quiet_until is not None and time.monotonic() >= quiet_until:
            break
        msg = c.poll(0.1)
        if msg is not None:
            if msg.error():
                raise KafkaException(msg.error())
            values.append(msg.value().decode())
        if len(values) >= expected and quiet_until is None:
            quiet_until = time.monotonic() + quiet
    c.close()
    return values


def names(prefix, n):
    return [f"{prefix}-{i}" for i in range(n)]


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics(
        [NewTopic(topic, 1, 1, config={"max.message.bytes": "2000"})]
    ).values():
        f.result(TIMEOUT_S)

    p = producer(bootstrap)
    p.begin_transaction()
    send(p, topic, "c", 5)
    p.commit_transaction(TIMEOUT_S)
    p.begin_transaction()
    send(p, topic, "a", 5)
    p.abort_transaction(TIMEOUT_S)

    # Abort on error.
    failed = []
    p.begin_transaction()
    send(p, topic, "e", 3)
    p.produce(topic, value="x" * 5000, partition=0, on_delivery=lambda err, _m: failed.append(err))
    p.flush(TIMEOUT_S)
    if not failed or failed[0] is None:
        fail(f"a record above max.message.bytes was delivered: {failed}")
    try:
        p.commit_transaction(TIMEOUT_S)
        fail("commit_transaction succeeded after a failed delivery")
    except KafkaException as e:
        if not e.args[0].txn_requires_abort():
            fail(f"commit after a failed delivery: unexpected error {e}")
    p.abort_transaction(TIMEOUT_S)
    for attempt in range(3):
        p.begin_transaction()
        try:
            send(p, topic, "d", 3)
            p.commit_transaction(TIMEOUT_S)
            break
        except KafkaException as e:
            if not e.args[0].txn_requires_abort() or attempt == 2:
                raise
            p.abort_transaction(TIMEOUT_S)

    # Fencing.
    p.begin_transaction()
    send(p, topic, "z", 2)
    second = producer(bootstrap)
    try:
        p.commit_transaction(TIMEOUT_S)
        fail("a fenced producer committed")
    except KafkaException as e:
        if not e.args[0].fatal():
            fail(f"fenced producer: expected a fatal error, got {e}")
    second.begin_transaction()
    send(second, topic, "f", 2)
    second.commit_transaction(TIMEOUT_S)

    committed = read(bootstrap, topic, "read_committed", 10)
    want = names("c", 5) + names("d", 3) + names("f", 2)
    if committed != want:
        fail(f"read_committed saw {committed}, expected {want}")
    everything = read(bootstrap, topic, "read_uncommitted", 20, quiet=0.5)
    want_all = names("c", 5) + names("a", 5) + names("e", 3) + names("d", 3) + names("z", 2)
    want_all += names("f", 2)
    if everything != want_all:
        fail(f"read_uncommitted saw {everything}, expected {want_all}")
    print("OK")


if __name__ == "__main__":
    main()
