#!/usr/bin/env bash
# Broker benchmark: ./scripts/bench.sh
#
# Builds the broker and broker-bench in release mode, measures the disk's sequential fdatasync'd
# write speed with dd (as a ceiling for acks=all throughput), starts a fresh broker on
# 127.0.0.1:$BENCH_PORT with a temporary data dir, and runs:
#   1. throughput: BENCH_RECORDS records of BENCH_RECORD_SIZE B, acks=all, linger 5 ms, no rate limit
#   2. the same with an idempotent producer (enable.idempotence=true)
#   3. latency:    BENCH_LAT_RECORDS records of BENCH_RECORD_SIZE B, acks=all, linger 1 ms,
#                  paced at BENCH_LAT_RATE records/s
#   4. rebalance:  three consumers join a group on a 6-partition topic, ten rounds
# The produce runs consume the records back and sample the broker's RSS. The output's markdown blocks can be
# pasted into docs/benchmarks.md. The broker and temp dirs are removed on exit.
#
# Environment overrides (defaults in brackets):
#   BENCH_RECORDS [1000000]  BENCH_RECORD_SIZE [1024]  BENCH_PARTITIONS [1]
#   BENCH_LAT_RECORDS [50000]  BENCH_LAT_RATE [5000]  BENCH_PORT [19092]
#   BENCH_TMPDIR [$TMPDIR or /tmp]: where the broker's data dir and the dd file go
#   BENCH_DD_MB [1024]: size of the dd test file; 0 skips dd
#   BENCH_BROKER_ARGS []: extra broker flags, e.g. "--flush-policy os"
#   BENCH_SKIP_BUILD [0]: 1 uses the existing target/release binaries
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

records="${BENCH_RECORDS:-1000000}"
record_size="${BENCH_RECORD_SIZE:-1024}"
partitions="${BENCH_PARTITIONS:-1}"
lat_records="${BENCH_LAT_RECORDS:-50000}"
lat_rate="${BENCH_LAT_RATE:-5000}"
port="${BENCH_PORT:-19092}"
tmp_base="${BENCH_TMPDIR:-${TMPDIR:-/tmp}}"
dd_mb="${BENCH_DD_MB:-1024}"
broker_args="${BENCH_BROKER_ARGS:-}"

if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
    echo "==> cargo build --release -p broker -p bench" >&2
    cargo build --release -p broker -p bench
fi
broker_bin=target/release/broker
bench_bin=target/release/broker-bench

work="$(mktemp -d "$tmp_base/datasync-bench.XXXXXX")"
broker_pid=""
cleanup() {
    if [[ -n "$broker_pid" ]] && kill -0 "$broker_pid" 2>/dev/null; then
        kill "$broker_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$broker_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$broker_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

data_dir="$work/data"
mkdir -p "$data_dir"
broker_log="$work/broker.log"

echo "## Broker benchmark ($(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown))"
echo
echo "- Host: $(nproc) CPU(s), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r)"
echo "- Data dir filesystem: $(df -hT "$data_dir" | awk 'NR==2 {print $1" ("$2"), "$3" total"}')"

if [[ "$dd_mb" != 0 ]]; then
    dd_line="$(dd if=/dev/zero of="$work/dd.tmp" bs=1M count="$dd_mb" conv=fdatasync 2>&1 | tail -n1)"
    rm -f "$work/dd.tmp"
    echo "- Disk: \`dd if=/dev/zero bs=1M count=$dd_mb conv=fdatasync\` → $dd_line"
fi
echo "- Broker: \`$broker_bin --listen 127.0.0.1:$port --data-dir <tmp>${broker_args:+ $broker_args}\`"
echo

# shellcheck disable=SC2086 # broker_args is a list of flags
"$broker_bin" --listen "127.0.0.1:$port" --data-dir "$data_dir" $broker_args >"$broker_log" 2>&1 &
broker_pid=$!
for _ in $(seq 300); do
    if grep -q "listening on" "$broker_log"; then
        break
    fi
    if ! kill -0 "$broker_pid" 2>/dev/null; then
        echo "error: broker exited before listening:" >&2
        cat "$broker_log" >&2
        exit 1
    fi
    sleep 0.1
done
if ! grep -q "listening on" "$broker_log"; then
    echo "error: broker did not log 'listening on' within 30 s:" >&2
    cat "$broker_log" >&2
    exit 1
fi

status=0
run_bench() {
    local label="$1"
    shift
    echo "==> $label: $bench_bin $*" >&2
    # Write back dirty pages of earlier runs so they do not compete with this run's fsyncs.
    sync
    if ! "$bench_bin" --bootstrap-servers "127.0.0.1:$port" --broker-pid "$broker_pid" \
        --label "$label" "$@"; then
        status=1
        echo "**$label bench FAILED** (see stderr); broker log tail:"
        tail -n 20 "$broker_log"
    fi
    echo
}

run_bench throughput --topic bench-throughput --num-records "$records" \
    --record-size "$record_size" --partitions "$partitions" --acks all --linger-ms 5 \
    --throughput -1

run_bench throughput-idempotent --topic bench-idempotent --num-records "$records" \
    --record-size "$record_size" --partitions "$partitions" --acks all --linger-ms 5 \
    --throughput -1 --idempotence true

run_bench latency --topic bench-latency --num-records "$lat_records" \
    --record-size "$record_size" --partitions "$partitions" --acks all --linger-ms 1 \
    --throughput "$lat_rate"

echo "==> rebalance: target/release/rebalance-bench" >&2
if ! target/release/rebalance-bench --bootstrap-servers "127.0.0.1:$port" --rounds 10 \
    --heartbeat-interval-ms 100 | tail -n 1; then
    status=1
    echo "**rebalance bench FAILED**"
fi
echo

if ! kill -0 "$broker_pid" 2>/dev/null; then
    echo "error: the broker died during the benchmark; log tail:" >&2
    tail -n 50 "$broker_log" >&2
    status=1
fi
# Level names are case-sensitive; the log may carry ANSI colour codes around them.
problems="$(grep -E "(ERROR|WARN)|panicked" "$broker_log" || true)"
if [[ -n "$problems" ]]; then
    echo "Broker logged $(wc -l <<<"$problems") WARN/ERROR line(s), first ones:"
    sed 's/\x1b\[[0-9;]*m//g' <<<"$problems" | head -n 10
fi
exit "$status"
