#!/usr/bin/env python3
"""The legacy request versions (Produce v0-2, Fetch v0-3, ListOffsets v0) are authorized like
every other: kafka-python pinned to Kafka 0.9 (Produce v1, Fetch v1, ListOffsets v0) as a
principal with DESCRIBE but neither WRITE nor READ on TOPIC is refused both.

Usage: acl_legacy.py BOOTSTRAP TOPIC

Prints "OK" and exits 0, or exits 1 with a message.
"""

import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import TopicAuthorizationFailedError


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def main():
    bootstrap, topic = sys.argv[1:3]
    p = KafkaProducer(bootstrap_servers=bootstrap, api_version=(0, 9), retries=0,
                      max_block_ms=10000)
    try:
        p.send(topic, b"x").get(timeout=15)
        fail("Produce v1 was accepted without WRITE")
    except TopicAuthorizationFailedError:
        pass
    finally:
        p.close(timeout=5)
    c = KafkaConsumer(bootstrap_servers=bootstrap, api_version=(0, 9),
                      enable_auto_commit=False, group_id=None)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    try:
        for _ in range(20):
            got = c.poll(timeout_ms=500)
            if got:
                fail(f"Fetch v1 returned {got} without READ")
        fail("Fetch v1 was not refused")
    except TopicAuthorizationFailedError:
        pass
    finally:
        c.close()
    print("OK", flush=True)


if __name__ == "__main__":
    main()
