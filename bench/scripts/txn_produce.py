#!/usr/bin/env python3
"""Transactional against idempotent produce with confluent-kafka (librdkafka 2.16), the
client issue 12's target names beside rdkafka: one producer, RECORDS records of 1 KiB to topic
TOPIC (1 partition), acks=all, linger.ms 0 as scripts/bench-transactions.sh's broker-bench;
transactional: PER_TXN records per transaction, one commit after each.

Usage: txn_produce.py BOOTSTRAP TOPIC idempotent|transactional [RECORDS] [PER_TXN]
Prints: mode, records/s, MB/s.
"""

import sys
import time
import uuid

from confluent_kafka import Producer


def main():
    bootstrap, topic, mode = sys.argv[1:4]
    records = int(sys.argv[4]) if len(sys.argv) > 4 else 200_000
    per_txn = int(sys.argv[5]) if len(sys.argv) > 5 else 100
    value = b"x" * 1024
    conf = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 0,
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 2_097_151,
    }
    failed = []

    def report(err, _msg):
        if err is not None:
            failed.append(err)

    if mode == "transactional":
        conf["transactional.id"] = f"bench-{uuid.uuid4()}"
    p = Producer(conf)
    # Warm-up outside the timed part: metadata, connections, and for transactions the
    # producer id and a first transaction.
    if mode == "transactional":
        p.init_transactions(30)
        p.begin_transaction()
        p.produce(topic, value, callback=report)
        p.commit_transaction(30)
    else:
        p.produce(topic, value, callback=report)
        p.flush(30)
    started = time.monotonic()
    sent = 0
    if mode == "transactional":
        while sent < records:
            p.begin_transaction()
            for _ in range(min(per_txn, records - sent)):
                p.produce(topic, value, callback=report)
                sent += 1
            p.commit_transaction(30)
    else:
        while sent < records:
            try:
                p.produce(topic, value, callback=report)
                sent += 1
            except BufferError:
                p.poll(0.001)
            p.poll(0)
        p.flush(60)
    elapsed = time.monotonic() - started
    if failed:
        print(f"FAIL: {len(failed)} records not delivered: {failed[0]}", file=sys.stderr)
        sys.exit(1)
    print(f"{mode} {records / elapsed:.0f} records/s {records * 1024 / elapsed / 1e6:.1f} MB/s")


if __name__ == "__main__":
    main()
