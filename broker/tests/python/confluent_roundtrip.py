#!/usr/bin/env python3
"""Admin + produce + consume round trip through the broker with confluent-kafka (librdkafka).

Usage: confluent_roundtrip.py BOOTSTRAP TOPIC

1. AdminClient.create_topics: TOPIC with 3 partitions and retention.ms=3600000;
   list_topics shows 3 partitions; describe_configs shows retention.ms=3600000.
2. Producer (acks=all): 200 messages with keys, headers and explicit timestamps; flush.
3. Consumer with a group.id but no auto-commit, assign()ed to all partitions at
   OFFSET_BEGINNING: reads all 200 and checks keys, values, headers, timestamps, offsets and
   per-partition order.
4. AdminClient.delete_topics; list_topics no longer shows TOPIC.

Prints "OK" and exits 0 on success, exits 1 with a message otherwise.
"""

import sys
import time
import traceback

from confluent_kafka import (OFFSET_BEGINNING, TIMESTAMP_CREATE_TIME, Consumer, KafkaException,
                             Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

N = 200
PARTITIONS = 3
RETENTION_MS = "3600000"
TIMEOUT_S = 60


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def wait_for(what, predicate, timeout=TIMEOUT_S):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        ok, last = predicate()
        if ok:
            return last
        time.sleep(0.2)
    fail(f"timed out waiting for {what}; last state: {last!r}")


def main():
    if len(sys.argv) != 3:
        fail(f"usage: {sys.argv[0]} BOOTSTRAP TOPIC")
    bootstrap, topic = sys.argv[1], sys.argv[2]
    common = {"bootstrap.servers": bootstrap, "client.id": "confluent-roundtrip"}

    # --- admin: create + inspect -------------------------------------------------------------
    admin = AdminClient(common)
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1,
                  config={"retention.ms": RETENTION_MS})],
        operation_timeout=30, request_timeout=30)
    for name, future in futures.items():
        try:
            future.result(timeout=TIMEOUT_S)
        except KafkaException as e:
            fail(f"create_topics({name}) failed: {e}")

    def partitions_visible():
        md = admin.list_topics(topic=topic, timeout=10)
        t = md.topics.get(topic)
        if t is None or t.error is not None:
            return False, t and t.error
        return sorted(t.partitions) == list(range(PARTITIONS)), sorted(t.partitions)

    wait_for(f"{topic} to have {PARTITIONS} partitions in list_topics", partitions_visible)

    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = admin.describe_configs([resource], request_timeout=30)[resource].result(timeout=TIMEOUT_S)
    entry = configs.get("retention.ms")
    if entry is None or entry.value != RETENTION_MS:
        fail(f"describe_configs: retention.ms = {entry and entry.value!r}, want {RETENTION_MS!r}")

    # --- produce -----------------------------------------------------------------------------
    producer = Producer({**common, "acks": "all", "linger.ms": 5})
    base_ts = int(time.time() * 1000) - 10_000
    delivered = {}  # seq -> (partition, offset)
    errors = []

    def on_delivery(seq):
        def callback(err, msg):
            if err is not None:
                errors.append((seq, err))
            else:
                delivered[seq] = (msg.partition(), msg.offset())
        return callback

    sent = {}
    for i in range(N):
        key = f"key-{i}".encode()
        value = f"value-{i}-".encode() + bytes([i % 256]) * (i % 17)
        headers = [("seq", str(i).encode()), ("origin", b"confluent-kafka")]
        ts = base_ts + i
        sent[i] = (key, value, headers, ts)
        producer.produce(topic, value=value, key=key, headers=headers, timestamp=ts,
                         on_delivery=on_delivery(i))
        producer.poll(0)
    remaining = producer.flush(TIMEOUT_S)
    if remaining:
        fail(f"{remaining} messages still undelivered after flush({TIMEOUT_S})")
    if errors:
        fail(f"{len(errors)} delivery errors, first: {errors[0]}")
    if len(delivered) != N:
        fail(f"{len(delivered)} delivery reports, want {N}")
    expected = {}  # (partition, offset) -> (key, value, headers, ts)
    for seq, (p, o) in delivered.items():
        if (p, o) in expected:
            fail(f"offset {p}/{o} reported for two messages")
        expected[(p, o)] = sent[seq]
    del producer

    # --- consume -----------------------------------------------------------------------------
    consumer = Consumer({**common,
                         "group.id": f"confluent-roundtrip-{topic}",
                         "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    received = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(received) < N:
        if time.monotonic() > deadline:
            fail(f"received only {len(received)}/{N} messages within {TIMEOUT_S}s")
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error() is not None:
            fail(f"consumer error: {msg.error()}")
        received.append(msg)
    consumer.close()

    last_offset = {}
    for m in received:
        k = (m.partition(), m.offset())
        if k not in expected:
            fail(f"unexpected message at {k}: key={m.key()!r}")
        key, value, headers, ts = expected.pop(k)
        if m.key() != key or m.value() != value:
            fail(f"message at {k}: got key={m.key()!r} value={m.value()!r}, want key={key!r} value={value!r}")
        if (m.headers() or []) != headers:
            fail(f"message at {k}: got headers {m.headers()!r}, want {headers!r}")
        if m.timestamp() != (TIMESTAMP_CREATE_TIME, ts):
            fail(f"message at {k}: got timestamp {m.timestamp()}, want {(TIMESTAMP_CREATE_TIME, ts)}")
        if m.offset() <= last_offset.get(m.partition(), -1):
            fail(f"partition {m.partition()}: offset {m.offset()} delivered after {last_offset[m.partition()]}")
        last_offset[m.partition()] = m.offset()
    if expected:
        fail(f"never received: {sorted(expected)}")

    # --- admin: delete -----------------------------------------------------------------------
    for name, future in admin.delete_topics([topic], operation_timeout=30, request_timeout=30).items():
        try:
            future.result(timeout=TIMEOUT_S)
        except KafkaException as e:
            fail(f"delete_topics({name}) failed: {e}")

    def topic_gone():
        topics = admin.list_topics(timeout=10).topics
        return topic not in topics, sorted(topics)

    wait_for(f"{topic} to disappear from list_topics", topic_gone)

    print("OK", flush=True)


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        sys.exit(1)
