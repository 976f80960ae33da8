#!/usr/bin/env bash
# What transactions cost: ./scripts/bench-transactions.sh
#
# BENCH_TXN_ROUNDS rounds; in each, for every producer count in BENCH_TXN_PRODUCERS, two
# broker-bench runs: idempotent produce and then transactional produce
# (BENCH_TXN_RECORDS_PER_TXN records per transaction, one commit after each), with that many
# producers at once (each its own client and transactional.id, sharing BENCH_RECORDS), every run
# against a FRESH broker (new data dir, `sync` first). 1 partition, 1 KiB records, acks=all.
# Prints one line per run: round, producers, mode, records/s, MB/s, p99 ms.
#
# Environment overrides (defaults in brackets):
#   BENCH_RECORDS [200000]  BENCH_TXN_RECORDS_PER_TXN [100]  BENCH_TXN_ROUNDS [3]
#   BENCH_TXN_PRODUCERS [1] (a list, e.g. "1 4")  BENCH_LINGER_MS [0]  BENCH_PORT [19500]
#   BENCH_BROKER_ARGS []  BENCH_SKIP_BUILD [0]
#   BENCH_TXN_CLIENT [rdkafka]: `confluent` runs bench/scripts/txn_produce.py instead (confluent-
#   kafka with its own librdkafka, one producer, $DATASYNC_PYTHON or python3; no p99)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

records="${BENCH_RECORDS:-200000}"
per_txn="${BENCH_TXN_RECORDS_PER_TXN:-100}"
rounds="${BENCH_TXN_ROUNDS:-3}"
producer_counts="${BENCH_TXN_PRODUCERS:-1}"
linger="${BENCH_LINGER_MS:-0}"
port="${BENCH_PORT:-19500}"
# shellcheck disable=SC2206 # a list of flags
broker_args=(${BENCH_BROKER_ARGS:-})

if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
    cargo build --release -p broker -p bench
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/datasync-bench-txn.XXXXXX")"
broker_pid=""
stop_broker() {
    if [[ -n "$broker_pid" ]] && kill -0 "$broker_pid" 2>/dev/null; then
        kill "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    broker_pid=""
}
trap 'stop_broker; rm -rf "$work"' EXIT

for round in $(seq "$rounds"); do
  for producers in $producer_counts; do
    for mode in idempotent transactional; do
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
        if [[ "${BENCH_TXN_CLIENT:-rdkafka}" == confluent ]]; then
            echo "$round producers 1 $("${DATASYNC_PYTHON:-python3}" bench/scripts/txn_produce.py \
                "127.0.0.1:$port" t "$mode" "$records" "$per_txn")"
            stop_broker
            continue
        fi
        extra=(--idempotence true --producers "$producers")
        if [[ "$mode" == transactional ]]; then
            extra+=(--transaction-records "$per_txn")
        fi
        target/release/broker-bench --bootstrap-servers "127.0.0.1:$port" --topic t \
            --num-records "$records" --record-size 1024 --acks all --linger-ms "$linger" \
            --partitions 1 --consume false "${extra[@]}" --json "$work/run.json" >/dev/null 2>&1
        python3 - "$round" "$producers" "$mode" "$work/run.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[4]))["produce"]
print(f"{sys.argv[1]} producers {sys.argv[2]} {sys.argv[3]} {p['records_per_s']:.0f} records/s {p['mb_per_s']:.1f} MB/s p99 {p['latency_ms']['p99']} ms")
PY
        stop_broker
    done
  done
done
