#!/usr/bin/env python3
"""SCRAM login cost and failed-login flood against a running broker (issue 19).

Usage: scram_logins.py BROKER_PID PLAINTEXT_BOOTSTRAP SASL_BOOTSTRAP USER PASSWORD [N]

1. N (default 100) successful SCRAM-SHA-256 and SCRAM-SHA-512 logins (confluent-kafka, each a new
   client that logs in and fetches metadata): the broker's CPU (utime+stime of /proc/PID/stat)
   per login, which includes the connection's ApiVersions and Metadata.
2. A producer on the PLAINTEXT listener sends 1 KiB records one at a time (acks=1, each awaited)
   for 5 s alone, then while 1,000 failed PLAIN logins (raw frames, 50 in parallel) hit the SASL
   listener: records/s and p50/p99 latency before and during, and the broker's RSS before/after.
"""

import os
import socket
import struct
import sys
import threading
import time

from confluent_kafka import Producer

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def login(sasl, mechanism, user, password):
    p = Producer({
        "bootstrap.servers": sasl,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": mechanism,
        "sasl.username": user,
        "sasl.password": password,
    })
    p.list_topics(timeout=10)


def frame(body):
    return struct.pack(">i", len(body)) + body


def failed_login(host, port):
    s = socket.create_connection((host, port), timeout=10)
    try:
        # SaslHandshake v1 PLAIN, then SaslAuthenticate v2 with a wrong password.
        s.sendall(frame(b"\x00\x11\x00\x01\x00\x00\x00\x01\x00\x00" + b"\x00\x05PLAIN"))
        hdr = s.recv(4)
        n = struct.unpack(">i", hdr)[0]
        while n > 0:
            n -= len(s.recv(n))
        token = b"\x00alice\x00wrong-password"
        # flexible: header v2 (client id i16 -1 => \xff\xff, no tags), compact bytes, no tags
        body = b"\x00\x24\x00\x02\x00\x00\x00\x02\xff\xff\x00" + bytes([len(token) + 1]) + token + b"\x00"
        s.sendall(frame(body))
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data
    finally:
        s.close()


def produce_loop(bootstrap, topic, stop, lat):
    p = Producer({"bootstrap.servers": bootstrap, "acks": 1, "linger.ms": 0})
    value = b"x" * 1024
    while not stop.is_set():
        t = time.perf_counter()
        p.produce(topic, value)
        p.flush(10)
        lat.append(time.perf_counter() - t)


def summary(lat, secs):
    lat = sorted(lat)
    if not lat:
        return "no records"
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
    return f"{len(lat) / secs:,.0f} records/s, p50 {p(0.5):.2f} ms, p99 {p(0.99):.2f} ms"


def main():
    pid, plain, sasl, user, password = sys.argv[1:6]
    n = int(sys.argv[6]) if len(sys.argv) > 6 else 100
    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        login(sasl, mechanism, user, password)  # warm
        before = cpu_s(pid)
        t = time.perf_counter()
        for _ in range(n):
            login(sasl, mechanism, user, password)
        cpu = cpu_s(pid) - before
        print(f"{mechanism}: {n} logins in {time.perf_counter() - t:.1f} s, broker CPU "
              f"{cpu * 1000 / n:.2f} ms per login (incl. ApiVersions + Metadata)", flush=True)

    topic = f"scram-bench-{int(time.time())}"
    host, port = sasl.rsplit(":", 1)
    rss0 = rss_kib(pid)
    stop, alone = threading.Event(), []
    th = threading.Thread(target=produce_loop, args=(plain, topic, stop, alone))
    th.start()
    time.sleep(1)
    alone.clear()
    time.sleep(5)
    stop.set()
    th.join()
    print(f"producer alone: {summary(alone, 5)}", flush=True)

    stop, during = threading.Event(), []
    th = threading.Thread(target=produce_loop, args=(plain, topic, stop, during))
    th.start()
    time.sleep(1)
    during.clear()
    answers, lock = [], threading.Lock()
    remaining = [1000]

    def worker():
        while True:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            a = failed_login(host, int(port))
            with lock:
                answers.append(a)

    t = time.perf_counter()
    cpu0 = cpu_s(pid)
    workers = [threading.Thread(target=worker) for _ in range(50)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    flood = time.perf_counter() - t
    cpu = cpu_s(pid) - cpu0
    stop.set()
    th.join()
    refused = sum(1 for a in answers if len(a) > 8 and struct.unpack(">h", a[9:11])[0] == 58)
    print(f"1,000 failed logins (50 parallel) in {flood:.1f} s, {refused} answered "
          f"SASL_AUTHENTICATION_FAILED, broker CPU {cpu:.2f} s", flush=True)
    print(f"producer during the flood: {summary(during, flood)}", flush=True)
    print(f"broker RSS {rss0} KiB before, {rss_kib(pid)} KiB after", flush=True)


if __name__ == "__main__":
    main()
