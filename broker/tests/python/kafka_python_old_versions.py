#!/usr/bin/env python3
"""kafka-python pinned to old broker versions, as tools in users' hands still are: the request
versions Kafka 4.0 removed and Kafka 3.9 still answers (Produce v0-2 with message format v0/v1,
Fetch v0-3, ListOffsets v0, OffsetCommit v0-1, OffsetFetch v0, CreateTopics v0-1,
DeleteTopics v0, DescribeConfigs v0).

Usage: kafka_python_old_versions.py BOOTSTRAP TOPIC_PREFIX

For each pinned `api_version` (no ApiVersions request is sent, so the client uses that release's
request versions): produce keyed messages (uncompressed and gzip) with acks=all, read them back
from the beginning with the same pinned version and compare keys, values, offsets and (for
message format v1) timestamps; commit offsets and read them back. Then topics are created,
described and deleted through the admin APIs' old versions. Prints "OK <versions>" and exits 0
on success; exits 1 with a message otherwise.
"""

import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.structs import OffsetAndMetadata

N = 40
TIMEOUT_S = 60
VERSIONS = [(0, 8, 1), (0, 8, 2), (0, 9), (0, 10), (0, 10, 1)]


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def check_version(bootstrap, prefix, version):
    name = ".".join(map(str, version))
    topic = f"{prefix}-{name.replace('.', '_')}"
    common = dict(bootstrap_servers=[bootstrap], api_version=version, request_timeout_ms=30000)
    sent = {}  # (partition, offset) -> (key, value, timestamp or None)
    base_ts = int(time.time() * 1000) - 5_000
    for compression in (None, "gzip"):
        producer = KafkaProducer(acks="all", compression_type=compression,
                                 enable_idempotence=False, linger_ms=20, **common)
        futures = []
        for i in range(N):
            key = f"{compression}-k{i}".encode()
            value = f"{compression}-v{i}".encode() * (1 + i % 5)
            ts = base_ts + i if version >= (0, 10) else None
            futures.append((key, value, ts, producer.send(topic, key=key, value=value,
                                                          timestamp_ms=ts)))
        producer.flush(timeout=TIMEOUT_S)
        for key, value, ts, future in futures:
            md = future.get(timeout=TIMEOUT_S)
            if (md.partition, md.offset) in sent:
                fail(f"{name}: offset {md.partition}/{md.offset} acknowledged twice")
            sent[(md.partition, md.offset)] = (key, value, ts)
        producer.close()

    partitions = sorted({p for p, _ in sent})
    consumer = KafkaConsumer(group_id=f"{topic}-group", enable_auto_commit=False,
                             auto_offset_reset="earliest", **common)
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    got = {}
    deadline = time.monotonic() + TIMEOUT_S
    while len(got) < len(sent):
        if time.monotonic() > deadline:
            fail(f"{name}: read {len(got)} of {len(sent)} messages")
        for tp, records in consumer.poll(timeout_ms=500).items():
            for r in records:
                got[(r.partition, r.offset)] = r
    for at, (key, value, ts) in sent.items():
        r = got.get(at)
        if r is None:
            fail(f"{name}: message at {at} not read")
        if (r.key, r.value) != (key, value):
            fail(f"{name}: at {at} read {(r.key, r.value)}, sent {(key, value)}")
        if ts is not None and r.timestamp != ts:
            fail(f"{name}: at {at} timestamp {r.timestamp}, sent {ts}")
    extra = set(got) - set(sent)
    if extra:
        fail(f"{name}: read messages never sent at {sorted(extra)[:5]}")

    ends = {}
    for (p, o) in sent:
        ends[p] = max(ends.get(p, 0), o + 1)
    offsets = {TopicPartition(topic, p): OffsetAndMetadata(end, "meta", -1)
               for p, end in ends.items()}
    consumer.commit(offsets)
    for tp, om in offsets.items():
        committed = consumer.committed(tp)
        if committed != om.offset:
            fail(f"{name}: committed {committed} for {tp}, want {om.offset}")
    consumer.close()


def check_admin(bootstrap, prefix):
    for version in [(0, 10, 1), (0, 11)]:
        name = f"{prefix}-admin-{version[1]}"
        admin = KafkaAdminClient(bootstrap_servers=[bootstrap], api_version=version)
        try:
            admin.create_topics([NewTopic(name, 2, 1, topic_configs={"retention.ms": "123456"})])
            deadline = time.monotonic() + TIMEOUT_S
            while name not in admin.list_topics():
                if time.monotonic() > deadline:
                    fail(f"admin {version}: {name} not listed after creation")
                time.sleep(0.2)
            if version >= (0, 11):
                results = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
                text = repr(results)
                if "retention.ms" not in text or "123456" not in text:
                    fail(f"admin {version}: describe_configs lacks retention.ms=123456: {text[:500]}")
            admin.delete_topics([name])
            deadline = time.monotonic() + TIMEOUT_S
            while name in admin.list_topics():
                if time.monotonic() > deadline:
                    fail(f"admin {version}: {name} still listed after deletion")
                time.sleep(0.2)
        finally:
            admin.close()


def main():
    if len(sys.argv) != 3:
        fail(f"usage: {sys.argv[0]} BOOTSTRAP TOPIC_PREFIX")
    bootstrap, prefix = sys.argv[1], sys.argv[2]
    for version in VERSIONS:
        check_version(bootstrap, prefix, version)
    check_admin(bootstrap, prefix)
    print("OK " + " ".join(".".join(map(str, v)) for v in VERSIONS), flush=True)


if __name__ == "__main__":
    main()
