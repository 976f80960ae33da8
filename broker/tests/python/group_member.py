#!/usr/bin/env python3
"""A bare consumer-group member, meant to be SIGKILLed (no LeaveGroup) by group_balance.py.

Usage: group_member.py BOOTSTRAP TOPIC LIB GROUP   (LIB = kafka-python | confluent)

Subscribes to TOPIC in GROUP (session timeout 6000 ms, heartbeat 500 ms, auto commit off) and
polls forever. Each time its assignment changes it prints `ASSIGNED <p,p,...>` (sorted partition
numbers, possibly empty) on stdout, flushed.
"""

import sys
import time
import traceback

SESSION_TIMEOUT_MS = 6000
HEARTBEAT_MS = 500


def report(last, now):
    if now != last:
        print("ASSIGNED " + ",".join(str(p) for p in sorted(now)), flush=True)
    return now


def run_kafka_python(bootstrap, topic, group):
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=[bootstrap], group_id=group,
                             client_id="group-member-subprocess",
                             session_timeout_ms=SESSION_TIMEOUT_MS,
                             heartbeat_interval_ms=HEARTBEAT_MS,
                             enable_auto_commit=False, auto_offset_reset="earliest")
    # Metadata before subscribing, 1 s polls: see KafkaPythonLib.subscribe in group_balance.py.
    while not consumer.partitions_for_topic(topic):
        time.sleep(0.1)
    consumer.subscribe([topic])
    last = None
    while True:
        consumer.poll(timeout_ms=1000)
        last = report(last, frozenset(tp.partition for tp in consumer.assignment()))


def run_confluent(bootstrap, topic, group):
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "client.id": "group-member-subprocess",
                         "session.timeout.ms": SESSION_TIMEOUT_MS,
                         "heartbeat.interval.ms": HEARTBEAT_MS,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    last = None
    while True:
        msg = consumer.poll(0.1)
        if msg is not None and msg.error() is not None:
            print(f"consumer error: {msg.error()}", file=sys.stderr, flush=True)
        last = report(last, frozenset(tp.partition for tp in consumer.assignment()))


def main():
    if len(sys.argv) != 5:
        print(f"usage: {sys.argv[0]} BOOTSTRAP TOPIC LIB GROUP", file=sys.stderr)
        sys.exit(2)
    bootstrap, topic, lib, group = sys.argv[1:]
    if lib == "kafka-python":
        run_kafka_python(bootstrap, topic, group)
    elif lib == "confluent":
        run_confluent(bootstrap, topic, group)
    else:
        print(f"unknown LIB {lib!r}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    try:
        main()
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException:
        traceback.print_exc()
        sys.exit(1)
