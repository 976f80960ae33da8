#!/usr/bin/env python3
"""Round trip through the broker with kafka-python (pure-Python client).

Usage: kafka_python_roundtrip.py BOOTSTRAP TOPIC

Creates TOPIC with 3 partitions (KafkaAdminClient), produces 200 keyed messages with headers
and timestamps (acks=all), then reads them back with a group-less consumer assigned to all
partitions from the beginning, checking keys, values, headers, timestamps, partitions, offsets
and per-partition order. Prints "OK <n>" and exits 0 on success, exits 1 with a message otherwise.
"""

import sys
import time
import traceback

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

N = 200
PARTITIONS = 3
TIMEOUT_S = 60


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def main():
    if len(sys.argv) != 3:
        fail(f"usage: {sys.argv[0]} BOOTSTRAP TOPIC")
    bootstrap, topic = sys.argv[1], sys.argv[2]
    common = dict(bootstrap_servers=[bootstrap], client_id="kafka-python-roundtrip",
                  request_timeout_ms=30000)

    # --- create the topic ------------------------------------------------------------------
    admin = KafkaAdminClient(**common)
    try:
        # Dict form is the kafka-python >= 3 API (a list of NewTopic is deprecated there).
        admin.create_topics({topic: {"num_partitions": PARTITIONS, "replication_factor": 1}})
    finally:
        admin.close()

    # Client defaults otherwise (kafka-python >= 3 enables idempotence by default).
    producer = KafkaProducer(acks="all", linger_ms=5, **common)
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        parts = producer.partitions_for(topic)
        if parts == set(range(PARTITIONS)):
            break
        if time.monotonic() > deadline:
            fail(f"metadata for {topic} shows partitions {parts}, want {set(range(PARTITIONS))}")
        time.sleep(0.2)

    # --- produce -----------------------------------------------------------------------------
    base_ts = int(time.time() * 1000) - 10_000
    sent = []
    for i in range(N):
        key = f"key-{i}".encode()
        value = f"value-{i}-".encode() + bytes([i % 256]) * (i % 17)
        headers = [("seq", str(i).encode()), ("origin", b"kafka-python")]
        ts = base_ts + i
        future = producer.send(topic, key=key, value=value, headers=headers, timestamp_ms=ts)
        sent.append((key, value, headers, ts, future))
    producer.flush(timeout=TIMEOUT_S)

    expected = {}  # (partition, offset) -> (key, value, headers, ts)
    for i, (key, value, headers, ts, future) in enumerate(sent):
        md = future.get(timeout=TIMEOUT_S)
        if md.topic != topic or not 0 <= md.partition < PARTITIONS or md.offset < 0:
            fail(f"message {i}: bad RecordMetadata {md}")
        if (md.partition, md.offset) in expected:
            fail(f"message {i}: offset {md.partition}/{md.offset} acknowledged twice")
        expected[(md.partition, md.offset)] = (key, value, headers, ts)
    producer.close()

    # Same-key messages go to one partition, so a partition's offsets must follow send order.
    for p in range(PARTITIONS):
        offsets = sorted(o for (pp, o) in expected if pp == p)
        seqs = [int(expected[(p, o)][2][0][1]) for o in offsets]
        if seqs != sorted(seqs):
            fail(f"partition {p}: offsets not in send order: {seqs}")

    # --- consume -----------------------------------------------------------------------------
    consumer = KafkaConsumer(group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", **common)
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)

    received = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(received) < N:
        if time.monotonic() > deadline:
            fail(f"received only {len(received)}/{N} messages within {TIMEOUT_S}s")
        for _tp, records in consumer.poll(timeout_ms=1000).items():
            received.extend(records)
    consumer.close()

    if len(received) != N:
        fail(f"received {len(received)} messages, want {N}")
    last_offset = {}
    for r in received:
        k = (r.partition, r.offset)
        if k not in expected:
            fail(f"unexpected record at {k}: {r}")
        key, value, headers, ts = expected.pop(k)
        if r.key != key or r.value != value:
            fail(f"record at {k}: got key={r.key!r} value={r.value!r}, want key={key!r} value={value!r}")
        if list(r.headers) != headers:
            fail(f"record at {k}: got headers {r.headers!r}, want {headers!r}")
        if r.timestamp != ts:
            fail(f"record at {k}: got timestamp {r.timestamp}, want {ts}")
        if r.offset <= last_offset.get(r.partition, -1):
            fail(f"partition {r.partition}: offset {r.offset} delivered after {last_offset[r.partition]}")
        last_offset[r.partition] = r.offset
    if expected:
        fail(f"never received: {sorted(expected)}")

    print(f"OK {N}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        sys.exit(1)
