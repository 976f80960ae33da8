#!/usr/bin/env python3
"""What one fdatasync costs on this disk: ./scripts/bench-fsync.py [DIR]

Writes N chunks to a file in DIR (default /tmp) and times the fdatasync after each, for three
layouts: appending to a new file (what a log segment does), appending into fallocate()d space,
and overwriting blocks already written and synced (no metadata left to journal). Prints mean,
p50 and p90 per layout and chunk size. The broker's idempotent-producer cost follows from it:
librdkafka keeps one request in flight per partition, so each 1 MB batch waits for one of these.
"""
import os
import sys
import time


def run(path, mode, n, size):
    data = b"x" * size
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        if mode == "fallocate":
            os.posix_fallocate(fd, 0, n * size)
        elif mode == "overwrite":
            zeros = b"\0" * size
            for _ in range(n):
                os.write(fd, zeros)
            os.fsync(fd)
            os.lseek(fd, 0, os.SEEK_SET)
        took = []
        for _ in range(n):
            os.write(fd, data)
            t = time.perf_counter()
            os.fdatasync(fd)
            took.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        os.unlink(path)
    took.sort()
    ms = [x * 1e3 for x in (sum(took) / n, took[n // 2], took[int(n * 0.9)])]
    print(f"| {mode} | {size >> 20} MiB | {n} | {ms[0]:.2f} | {ms[1]:.2f} | {ms[2]:.2f} |")


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "/tmp"
    path = os.path.join(directory, f"bench-fsync-{os.getpid()}")
    print("| Layout | Chunk | Chunks | mean ms | p50 ms | p90 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for size in (1 << 20, 4 << 20):
        for mode in ("append", "fallocate", "overwrite"):
            run(path, mode, 100, size)


if __name__ == "__main__":
    main()
