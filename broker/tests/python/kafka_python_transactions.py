#!/usr/bin/env python3
"""Transactions through the broker with kafka-python's transactional producer (pure Python).

Usage: kafka_python_transactions.py BOOTSTRAP TOPIC

1. TOPIC with 1 partition; a KafkaProducer with transactional_id initialises.
2. Transaction "c" (3 records) commits; "a" (3 records) aborts; "d" (2 records) commits with
   send_offsets_to_transaction(offset 5 for group "kp-group"); "x" (1 record) sends offset 9
   and aborts.
3. A read_committed consumer sees exactly c, d in order; a read_uncommitted one sees c, a, d, x;
   the group's committed offset is 5 (the aborted transaction's 9 was never committed).

Prints "OK" and exits 0 on success, exits 1 with a message otherwise.
"""

import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import OffsetAndMetadata


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    KafkaAdminClient(bootstrap_servers=bootstrap).create_topics([NewTopic(topic, 1, 1)])
    tp = TopicPartition(topic, 0)
    p = KafkaProducer(bootstrap_servers=bootstrap, transactional_id="kp-tx")
    p.init_transactions()

    def txn(prefix, n, commit, offset=None):
        p.begin_transaction()
        for i in range(n):
            p.send(topic, key=b"k", value=f"{prefix}-{i}".encode(), partition=0)
        if offset is not None:
            p.send_offsets_to_transaction({tp: OffsetAndMetadata(offset, "", -1)}, "kp-group")
        p.flush()
        if commit:
            p.commit_transaction()
        else:
            p.abort_transaction()

    txn("c", 3, True)
    txn("a", 3, False)
    txn("d", 2, True, offset=5)
    txn("x", 1, False, offset=9)
    p.close()

    def read(isolation):
        c = KafkaConsumer(
            bootstrap_servers=bootstrap,
            isolation_level=isolation,
            enable_auto_commit=False,
            consumer_timeout_ms=1500,
        )
        c.assign([tp])
        c.seek_to_beginning()
        values = [m.value.decode() for m in c]
        c.close()
        return values

    committed = read("read_committed")
    if committed != ["c-0", "c-1", "c-2", "d-0", "d-1"]:
        fail(f"read_committed saw {committed}")
    everything = read("read_uncommitted")
    want = ["c-0", "c-1", "c-2", "a-0", "a-1", "a-2", "d-0", "d-1", "x-0"]
    if everything != want:
        fail(f"read_uncommitted saw {everything}")
    group = KafkaConsumer(bootstrap_servers=bootstrap, group_id="kp-group", enable_auto_commit=False)
    offset = group.committed(tp)
    group.close()
    if offset != 5:
        fail(f"committed offset of kp-group is {offset}, expected 5")
    print("OK")


if __name__ == "__main__":
    main()
