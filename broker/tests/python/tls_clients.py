#!/usr/bin/env python3
"""SSL and SASL_SSL listeners with confluent-kafka (librdkafka) and kafka-python.

Usage: tls_clients.py MODE BOOTSTRAP CERT_DIR TOPIC_PREFIX
  MODE server-auth: BOOTSTRAP is an SSL listener (no client certificate asked for);
  MODE sasl-ssl:    BOOTSTRAP is a SASL_SSL listener, users file alice=alice-secret;
  MODE client-cert: BOOTSTRAP is an SSL listener with --ssl-client-auth required.
CERT_DIR is what scripts/make-certs.sh wrote (ca.pem, other-ca.pem, client-writer.pem/.key).

Each client produces 5 messages (acks=all) and reads them back from the beginning: the exact
values, in order. Then the failures: a client trusting another CA fails the handshake
(server-auth), a client without a certificate is refused (client-cert).
Prints "OK N" (roundtrips passed) and exits 0, or exits 1 with a message.
"""

import sys
import time

from secure_roundtrip import TIMEOUT_S, confluent_roundtrip, fail


def confluent_refused(conf, label):
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(conf)
    try:
        md = admin.list_topics(timeout=5)
    except Exception:
        return
    fail(f"confluent {label}: got metadata {md.topics}")


def kafka_python_roundtrip(kw, bootstrap, topic, label):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    values = [f"{label}-{i}".encode() for i in range(5)]
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", **kw)
    for v in values:
        p.send(topic, v).get(timeout=TIMEOUT_S)
    p.close()
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **kw)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    got = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(got) < len(values) and time.monotonic() < deadline:
        for recs in c.poll(timeout_ms=1000).values():
            got.extend(r.value for r in recs)
    c.close()
    if got != values:
        fail(f"kafka-python {label}: read {got}, want {values}")


def main():
    mode, bootstrap, certs, prefix = sys.argv[1:5]
    ca, other_ca = f"{certs}/ca.pem", f"{certs}/other-ca.pem"
    cert, key = f"{certs}/client-writer.pem", f"{certs}/client-writer.key"
    ok = 0
    if mode == "server-auth":
        conf = {"bootstrap.servers": bootstrap, "security.protocol": "SSL", "ssl.ca.location": ca}
        confluent_roundtrip(conf, f"{prefix}-confluent", "ssl")
        ok += 1
        kafka_python_roundtrip(
            {"security_protocol": "SSL", "ssl_cafile": ca}, bootstrap, f"{prefix}-kp", "ssl"
        )
        ok += 1
        confluent_refused({**conf, "ssl.ca.location": other_ca}, "wrong CA")
    elif mode == "sasl-ssl":
        for mech in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]:
            conf = {
                "bootstrap.servers": bootstrap,
                "security.protocol": "SASL_SSL",
                "ssl.ca.location": ca,
                "sasl.mechanisms": mech,
                "sasl.username": "alice",
                "sasl.password": "alice-secret",
            }
            confluent_roundtrip(conf, f"{prefix}-confluent-{mech}", mech)
            ok += 1
            kw = {
                "security_protocol": "SASL_SSL",
                "ssl_cafile": ca,
                "sasl_mechanism": mech,
                "sasl_plain_username": "alice",
                "sasl_plain_password": "alice-secret",
            }
            kafka_python_roundtrip(kw, bootstrap, f"{prefix}-kp-{mech}", mech)
            ok += 1
        confluent_refused(
            {
                "bootstrap.servers": bootstrap,
                "security.protocol": "SASL_SSL",
                "ssl.ca.location": ca,
                "sasl.mechanisms": "PLAIN",
                "sasl.username": "alice",
                "sasl.password": "wrong",
            },
            "wrong password over SASL_SSL",
        )
    elif mode == "client-cert":
        conf = {
            "bootstrap.servers": bootstrap,
            "security.protocol": "SSL",
            "ssl.ca.location": ca,
            "ssl.certificate.location": cert,
            "ssl.key.location": key,
        }
        confluent_roundtrip(conf, f"{prefix}-confluent", "mtls")
        ok += 1
        kw = {
            "security_protocol": "SSL",
            "ssl_cafile": ca,
            "ssl_certfile": cert,
            "ssl_keyfile": key,
        }
        kafka_python_roundtrip(kw, bootstrap, f"{prefix}-kp", "mtls")
        ok += 1
        no_cert = {k: v for k, v in conf.items() if not k.startswith("ssl.certificate") and k != "ssl.key.location"}
        confluent_refused(no_cert, "no client certificate")
    else:
        fail(f"unknown mode {mode}")
    print(f"OK {ok}", flush=True)


if __name__ == "__main__":
    main()
