#!/usr/bin/env python3
"""Connection limits benchmark: abandoned long-poll fetches and half-sent frames.

Starts the release broker on a free loopback port with a fresh data directory, creates one
topic, then for each round opens N connections that each send a Fetch waiting as long as a
client may ask (max_wait_ms = 2^31-1) on that empty topic (or, with --half-frames, half of a
1 MiB request and then nothing), waits until the broker holds all of them, and closes every
client socket at once. It reports, from /proc/<broker pid>:

* the broker's open file descriptors before, with all clients parked, and how long after the
  disconnects every fd was back (polled every 5 ms);
* the broker's resident memory (VmRSS) before, with all clients parked, after, and its peak
  (VmHWM).

Targets (issue 16): 2,000 abandoned long polls leave RSS under 100 MB and every fd back within a
second of the disconnects.

With --big-frames it instead opens 8 connections that each announce a 100 MiB request and send
as much of it as the broker reads (for 10 s), and reports the broker's RSS: before
`queued.max.request.bytes` this took the broker from 8 MB to 827 MB.

Usage: scripts/bench-connections.py [--connections 2000] [--rounds 3] [--half-frames | --big-frames]
       (BENCH_SKIP_BUILD=1 uses the existing target/release/broker; extra broker flags after --)
"""

import argparse
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BROKER = os.path.join(TARGET, "release", "broker")


def fetch_v4(topic: str) -> bytes:
    """A Fetch v4 request frame for partition 0 from offset 0, waiting up to 2^31-1 ms."""
    name = topic.encode()
    client = b"bench-connections"
    header = struct.pack(">hhih", 1, 4, 1, len(client)) + client
    body = struct.pack(">iiiib", -1, 2**31 - 1, 1, 1 << 20, 0)
    body += struct.pack(">ih", 1, len(name)) + name
    body += struct.pack(">iiqi", 1, 0, 0, 1 << 20)
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def half_frame() -> bytes:
    """The first 64 KiB of a 1 MiB request that never comes."""
    return struct.pack(">i", 1 << 20) + b"\0" * (64 * 1024)


def proc_status(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])  # KiB
    return out


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def big_frames(pid: int, port: int) -> int:
    """8 clients each announce 100 MiB and send what the broker reads of it, for 10 s."""
    before = proc_status(pid)["VmRSS"]
    print(f"broker pid {pid}; RSS before {before / 1024:.1f} MiB")
    chunk = b"\0" * (1 << 20)
    sent = [0] * 8
    socks = []

    def send(i: int, s: socket.socket) -> None:
        try:
            s.sendall(struct.pack(">i", 100 << 20))
            for _ in range(99):
                s.sendall(chunk)
                sent[i] += len(chunk)
        except OSError:
            pass

    threads = []
    for i in range(8):
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(10)
        socks.append(s)
        t = threading.Thread(target=send, args=(i, s), daemon=True)
        t.start()
        threads.append(t)
    time.sleep(10)
    status = proc_status(pid)
    print(f"sent by the 8 clients: {sum(sent) / (1 << 20):.0f} MiB "
          f"({', '.join(str(n >> 20) for n in sent)} MiB each; the rest waits in the kernel or the client)")
    print(f"RSS with 8 unfinished 100 MiB frames: {status['VmRSS'] / 1024:.1f} MiB "
          f"(peak {status['VmHWM'] / 1024:.1f} MiB)")
    for s in socks:
        s.close()
    time.sleep(1)
    print(f"RSS after the clients left: {proc_status(pid)['VmRSS'] / 1024:.1f} MiB, {open_fds(pid)} fds")
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connections", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--half-frames", action="store_true", help="send half a 1 MiB frame instead of a long poll")
    p.add_argument("--big-frames", action="store_true", help="8 clients each sending most of a 100 MiB frame")
    p.add_argument("broker_flags", nargs="*", help="extra broker flags (after --)")
    args = p.parse_args()

    if os.environ.get("BENCH_SKIP_BUILD") != "1":
        print("==> cargo build --release -p broker", file=sys.stderr)
        subprocess.run(["cargo", "build", "--release", "-p", "broker"], cwd=ROOT, check=True)
    data = tempfile.mkdtemp(prefix="bench-connections-")
    port = free_port()
    log = open(os.path.join(data, "broker.log"), "w")
    broker = subprocess.Popen(
        [BROKER, "--listen", f"127.0.0.1:{port}", "--data-dir", os.path.join(data, "d")]
        + args.broker_flags,
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        topic = "bench-long-poll"
        subprocess.run(
            [BROKER, "topics", "create", "--topic", topic, "--partitions", "1",
             "--bootstrap-server", f"127.0.0.1:{port}"],
            check=True, stdout=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        if args.big_frames:
            return big_frames(broker.pid, port)
        request = half_frame() if args.half_frames else fetch_v4(topic)
        kind = "half-sent 1 MiB frames" if args.half_frames else "long-poll fetches (max_wait 2^31-1 ms)"
        pid = broker.pid
        base_fds = open_fds(pid)
        base_rss = proc_status(pid)["VmRSS"]
        print(f"broker pid {pid}, {args.connections} abandoned {kind} per round")
        print(f"before: {base_fds} fds, RSS {base_rss / 1024:.1f} MiB")
        print("round | open all (s) | fds parked | RSS parked (MiB) | fds back after (ms) | RSS after (MiB)")
        worst_back = 0.0
        for r in range(1, args.rounds + 1):
            clients = []
            started = time.time()
            for _ in range(args.connections):
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(request)
                clients.append(s)
            # Wait until the broker holds every connection.
            while open_fds(pid) < base_fds + args.connections and time.time() - started < 60:
                time.sleep(0.01)
            opened = time.time() - started
            time.sleep(0.5)
            parked_fds = open_fds(pid)
            parked_rss = proc_status(pid)["VmRSS"]
            for s in clients:
                s.close()
            closed = time.time()
            while open_fds(pid) > base_fds:
                if time.time() - closed > 30:
                    break
                time.sleep(0.005)
            back_ms = (time.time() - closed) * 1000
            worst_back = max(worst_back, back_ms)
            time.sleep(0.2)
            after_rss = proc_status(pid)["VmRSS"]
            print(f"{r:5} | {opened:12.2f} | {parked_fds:10} | {parked_rss / 1024:16.1f} | "
                  f"{back_ms:19.0f} | {after_rss / 1024:15.1f}")
        status = proc_status(pid)
        print(f"after: {open_fds(pid)} fds, RSS {status['VmRSS'] / 1024:.1f} MiB, "
              f"peak RSS (VmHWM) {status['VmHWM'] / 1024:.1f} MiB")
        ok = status["VmHWM"] < 100 * 1024 and worst_back < 1000
        print(f"targets (peak RSS < 100 MB, every fd back within 1 s): {'met' if ok else 'NOT met'}")
        return 0 if ok else 1
    finally:
        broker.terminate()
        try:
            broker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            broker.kill()
        log.close()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
