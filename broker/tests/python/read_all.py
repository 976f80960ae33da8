"""Reads every record of one partition from the beginning with a stock Python client and prints
the values as a JSON list.

usage: read_all.py BOOTSTRAP TOPIC COUNT CLIENT
  CLIENT: confluent (confluent-kafka, i.e. librdkafka) or kafka-python

Used by broker/tests/validation.rs (good records around rejected poison batches must all be
readable) and broker/tests/compression.rs (every compression.type round-trips). Exits non-zero
if COUNT records do not arrive within 60 s, or if a client error is reported.
"""

import json
import sys
import time

bootstrap, topic, count, client = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
deadline = time.time() + 60
values = []

if client == "confluent":
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "read-all",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    while len(values) < count and time.time() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        values.append(msg.value().decode() if msg.value() is not None else None)
    consumer.close()
elif client == "kafka-python":
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=1000,
    )
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek(tp, 0)
    while len(values) < count and time.time() < deadline:
        for msg in consumer:
            values.append(msg.value.decode() if msg.value is not None else None)
            if len(values) >= count:
                break
    consumer.close()
else:
    sys.exit(f"unknown client {client}")

print(json.dumps(values))
if len(values) < count:
    sys.exit(f"only {len(values)} of {count} records arrived")
