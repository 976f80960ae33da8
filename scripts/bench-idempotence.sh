#!/usr/bin/env bash
# What enabling idempotence costs: ./scripts/bench-idempotence.sh
#
# For each workload in BENCH_IDEM_WORKLOADS and each of BENCH_IDEM_ROUNDS rounds, runs
# broker-bench twice, without and with enable.idempotence, each time against a FRESH broker
# (new data dir, `sync` first) so that neither run pays for the other's writeback. Prints one
# markdown row per run and, per workload, the median MB/s of each mode and the cost.
#
# A workload is PARTITIONS:KEY_SIZE. Key size 0 sends records without a key (librdkafka's sticky
# partitioner: one partition at a time); keyed records (distinct keys, like the order-service's
# order ids) spread over every partition at once. Why it matters: librdkafka's idempotent
# producer keeps one ProduceRequest in flight per partition (it counts in-flight *messages*
# against its 5-request window), so on one partition every batch waits for the previous one's
# acknowledgement, while the plain producer pipelines; across partitions both pipeline.
#
# Environment overrides (defaults in brackets):
#   BENCH_IDEM_WORKLOADS ["1:0 4:0 4:16 8:16"]  BENCH_IDEM_ROUNDS [3]  BENCH_RECORDS [1000000]
#   BENCH_RECORD_SIZE [1024]  BENCH_PORT [19400]  BENCH_TMPDIR [$TMPDIR or /tmp]
#   BENCH_BROKER_ARGS []: extra broker flags, e.g. "--flush-policy os"
#   BENCH_SKIP_BUILD [0]: 1 uses the existing target/release binaries
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

read -r -a workloads <<<"${BENCH_IDEM_WORKLOADS:-1:0 4:0 4:16 8:16}"
rounds="${BENCH_IDEM_ROUNDS:-3}"
records="${BENCH_RECORDS:-1000000}"
record_size="${BENCH_RECORD_SIZE:-1024}"
port="${BENCH_PORT:-19400}"
tmp_base="${BENCH_TMPDIR:-${TMPDIR:-/tmp}}"
# shellcheck disable=SC2206 # a list of flags
broker_args=(${BENCH_BROKER_ARGS:-})

if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
    cargo build --release -p broker -p bench
fi

work="$(mktemp -d "$tmp_base/datasync-bench-idem.XXXXXX")"
broker_pid=""
stop_broker() {
    if [[ -n "$broker_pid" ]] && kill -0 "$broker_pid" 2>/dev/null; then
        kill "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    broker_pid=""
}
trap 'stop_broker; rm -rf "$work"' EXIT

median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

echo "## Idempotence cost ($(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown))"
echo
echo "- Command: \`BENCH_IDEM_WORKLOADS=\"${workloads[*]}\" BENCH_IDEM_ROUNDS=$rounds${BENCH_BROKER_ARGS:+ BENCH_BROKER_ARGS=\"$BENCH_BROKER_ARGS\"} ./scripts/bench-idempotence.sh\`"
echo "- Each run: fresh \`target/release/broker --listen 127.0.0.1:$port --data-dir <new dir>${BENCH_BROKER_ARGS:+ $BENCH_BROKER_ARGS}\`, then \`target/release/broker-bench --num-records $records --record-size $record_size --acks all --linger-ms 5 --partitions P --key-size K --idempotence {false|true} --consume false\`"
echo
echo "| Partitions | Key bytes | Round | Idempotence | MB/s |"
echo "|---:|---:|---:|---|---:|"
summary=()
for workload in "${workloads[@]}"; do
    p="${workload%%:*}"
    k="${workload#*:}"
    if [[ ! "$p" =~ ^[1-9][0-9]*$ || ! "$k" =~ ^[0-9]+$ ]]; then
        echo "error: workload '$workload' is not PARTITIONS:KEY_SIZE" >&2
        exit 2
    fi
    plain=()
    idem=()
    for round in $(seq "$rounds"); do
        for mode in false true; do
            rm -rf "$work/data"
            mkdir -p "$work/data"
            sync
            target/release/broker --listen "127.0.0.1:$port" --data-dir "$work/data" "${broker_args[@]}" \
                >"$work/broker.log" 2>&1 &
            broker_pid=$!
            for _ in $(seq 100); do
                grep -q "listening on" "$work/broker.log" 2>/dev/null && break
                sleep 0.05
            done
            mbs="$(target/release/broker-bench --bootstrap-servers "127.0.0.1:$port" --topic t \
                --num-records "$records" --record-size "$record_size" --acks all --linger-ms 5 \
                --partitions "$p" --key-size "$k" --idempotence "$mode" --consume false 2>/dev/null |
                awk -F'|' '/^\| .*produce/ {gsub(/ /, "", $6); print $6}')"
            stop_broker
            if [[ -z "$mbs" ]]; then
                echo "error: broker-bench produced no result (workload $workload, idempotence $mode)" >&2
                exit 1
            fi
            echo "| $p | $k | $round | $mode | $mbs |"
            if [[ "$mode" == true ]]; then idem+=("$mbs"); else plain+=("$mbs"); fi
        done
    done
    mp="$(printf '%s\n' "${plain[@]}" | median)"
    mi="$(printf '%s\n' "${idem[@]}" | median)"
    cost="$(awk -v a="$mp" -v b="$mi" 'BEGIN {printf "%.0f", (a - b) * 100 / a}')"
    summary+=("| $p | $k | $mp | $mi | $cost % |")
done
echo
echo "| Partitions | Key bytes | median MB/s without | median MB/s idempotent | cost |"
echo "|---:|---:|---:|---:|---:|"
printf '%s\n' "${summary[@]}"
