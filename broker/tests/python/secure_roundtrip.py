"""What the security tests' Python scripts share (sasl_clients.py, tls_clients.py): a
confluent-kafka produce-and-read-back with whatever security settings a test gives, and the
one way they report a failure. Not a test of its own."""

import sys
import time

TIMEOUT_S = 30


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def confluent_roundtrip(conf, topic, label):
    """With client settings `conf`: 5 messages produced (acks=all) to `topic` and read back from
    the beginning, the exact values in order; exits through fail() otherwise."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

    errors = []
    p = Producer({**conf, "acks": "all", "error_cb": errors.append})
    values = [f"{label}-{i}".encode() for i in range(5)]
    for v in values:
        p.produce(topic, v)
    if p.flush(TIMEOUT_S) != 0:
        fail(f"confluent {label}: messages not delivered: {errors}")
    c = Consumer({**conf, "group.id": f"g-{topic}", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(got) < len(values) and time.monotonic() < deadline:
        m = c.poll(1.0)
        if m is not None and m.error() is None:
            got.append(m.value())
    c.close()
    if got != values:
        fail(f"confluent {label}: read {got}, want {values}")
