#!/usr/bin/env python3
"""Produce throughput over one listener with confluent-kafka (librdkafka), for scripts/bench-tls.sh.

Usage: bench_tls_produce.py BOOTSTRAP TOPIC RECORDS RECORD_SIZE [key=value ...]
The key=value pairs are librdkafka properties (security.protocol, sasl.*, ssl.*).
Prints one line: records/s, MB/s, seconds.
"""

import sys
import time

from confluent_kafka import Producer


def main():
    bootstrap, topic, records, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    extra = dict(a.split("=", 1) for a in sys.argv[5:])
    failed = []
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "linger.ms": 5,
            "batch.size": 1048576,
            "queue.buffering.max.kbytes": 1048576,
            "queue.buffering.max.messages": 1000000,
            **extra,
        }
    )
    value = b"x" * size
    # Warm up: connection, login, topic metadata.
    p.produce(topic, value)
    p.flush(30)

    def cb(err, _msg):
        if err is not None:
            failed.append(err)

    start = time.monotonic()
    for _ in range(records):
        while True:
            try:
                p.produce(topic, value, on_delivery=cb)
                break
            except BufferError:
                p.poll(0.01)
    left = p.flush(120)
    secs = time.monotonic() - start
    if left or failed:
        sys.exit(f"{left} undelivered, {len(failed)} failed: {failed[:3]}")
    print(f"{records / secs:.0f} records/s  {records * size / secs / 1e6:.1f} MB/s  {secs:.2f} s")


if __name__ == "__main__":
    main()
