#!/usr/bin/env bash
# Services and connect-worker benchmark: ./scripts/bench-services.sh
#
# Builds the broker, order-service, connect-worker and the bench tools in release mode, then runs
# the real binaries as processes on this machine, as users run them:
#   - a throwaway MariaDB in Docker (image $MARIADB_IMAGE, port $BENCH_DB_PORT), database mydb;
#   - a fresh broker on 127.0.0.1:$BENCH_BROKER_PORT;
#   - two order-service instances on $BENCH_ORDER_PORTS (they apply the migrations);
#   - the connect worker on 127.0.0.1:$BENCH_CONNECT_PORT with docker/connectors/orders-sink.json
#     (JDBC URL pointed at the throwaway MariaDB);
# and runs
#   1. order-bench: open-loop POST load at BENCH_RATE orders/s over both instances for
#      BENCH_DURATION s (after BENCH_WARMUP s), then checks that MariaDB holds exactly the 201s;
#   2. sink-bench: plain 1,000-row INSERT transactions vs the JDBC sink over BENCH_SINK_RECORDS
#      order records (exactly-once check), then source → topic → sink latency with
#      poll.interval.ms=100.
# The order-services are stopped before sink-bench so that the two measurements do not overlap.
# Output: markdown for docs/benchmarks.md. Everything started here is stopped on exit.
#
# Environment overrides (defaults in brackets):
#   BENCH_RATE [5000]  BENCH_DURATION [30]  BENCH_WARMUP [5]  BENCH_CLOSED_CONNECTIONS [0: skip;
#   N: also a closed-loop run with N connections]  BENCH_SINK_RECORDS [300000]
#   BENCH_SINK_BATCH [unset: connector default]  BENCH_E2E_RATE [200]  BENCH_E2E_SECS [30]
#   BENCH_BROKER_PORT [19192]  BENCH_CONNECT_PORT [18083]  BENCH_ORDER_PORTS ["18091 18092"]
#   BENCH_DB_PORT [13316]  MARIADB_IMAGE [offline/mariadb:10.11]
#   BENCH_BROKER_ARGS [extra broker flags, e.g. "--flush-policy os"]  BENCH_KEEP_LOGS [unset: logs deleted; DIR: copied there]
#   BENCH_TMPDIR [$TMPDIR or /tmp]  BENCH_SKIP_BUILD [0]  BENCH_ONLY [all | orders | sink]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

rate="${BENCH_RATE:-5000}"
duration="${BENCH_DURATION:-30}"
warmup="${BENCH_WARMUP:-5}"
closed="${BENCH_CLOSED_CONNECTIONS:-0}"
sink_records="${BENCH_SINK_RECORDS:-300000}"
sink_batch="${BENCH_SINK_BATCH:-}"
e2e_rate="${BENCH_E2E_RATE:-200}"
e2e_secs="${BENCH_E2E_SECS:-30}"
broker_port="${BENCH_BROKER_PORT:-19192}"
connect_port="${BENCH_CONNECT_PORT:-18083}"
read -r -a order_ports <<<"${BENCH_ORDER_PORTS:-18091 18092}"
db_port="${BENCH_DB_PORT:-13316}"
image="${MARIADB_IMAGE:-offline/mariadb:10.11}"
tmp_base="${BENCH_TMPDIR:-${TMPDIR:-/tmp}}"
only="${BENCH_ONLY:-all}"

if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
    echo "==> cargo build --release -p broker -p order-service -p connect-worker -p bench" >&2
    cargo build --release -p broker -p order-service -p connect-worker -p bench
fi
bin=target/release

work="$(mktemp -d "$tmp_base/datasync-bench-services.XXXXXX")"
container=""
pids=()
stop_pid() {
    local pid="$1"
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || return 0
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
}
cleanup() {
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        stop_pid "${pids[$i]}"
    done
    if [[ -n "$container" ]]; then
        docker rm -f "$container" >/dev/null 2>&1 || true
    fi
    if [[ -n "${BENCH_KEEP_LOGS:-}" ]]; then
        mkdir -p "$BENCH_KEEP_LOGS" && cp "$work"/*.log "$BENCH_KEEP_LOGS"/ 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_log FILE PATTERN PID WHAT: until FILE contains PATTERN (60 s), or PID died.
wait_log() {
    for _ in $(seq 600); do
        if grep -q "$2" "$1" 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$3" 2>/dev/null; then
            echo "error: $4 exited early:" >&2
            tail -n 30 "$1" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "error: $4 did not log '$2' within 60 s:" >&2
    tail -n 30 "$1" >&2
    exit 1
}

db_url="mysql://root:test1357@127.0.0.1:$db_port/mydb"
jdbc_url="jdbc:mariadb://127.0.0.1:$db_port/mydb"
bootstrap="127.0.0.1:$broker_port"

echo "==> MariaDB: docker run $image on 127.0.0.1:$db_port" >&2
container="datasync-bench-mariadb-$$"
docker run -d --name "$container" -e MARIADB_ROOT_PASSWORD=test1357 -e MARIADB_DATABASE=mydb \
    -p "127.0.0.1:$db_port:3306" "$image" >/dev/null
for _ in $(seq 120); do
    if docker exec "$container" mariadb -uroot -ptest1357 -e 'SELECT 1' mydb >/dev/null 2>&1; then
        break
    fi
    sleep 0.5
done

echo "==> broker on $bootstrap" >&2
mkdir -p "$work/broker"
# shellcheck disable=SC2086 # BENCH_BROKER_ARGS is a list of flags
"$bin/broker" --listen "$bootstrap" --data-dir "$work/broker" ${BENCH_BROKER_ARGS:-} >"$work/broker.log" 2>&1 &
pids+=($!)
broker_pid=$!
wait_log "$work/broker.log" "listening on" "$broker_pid" broker

order_pids=()
targets=()
for p in "${order_ports[@]}"; do
    echo "==> order-service on 127.0.0.1:$p" >&2
    "$bin/order-service" --host 127.0.0.1 --port "$p" --database-url "$db_url" \
        --bootstrap-servers "$bootstrap" >"$work/order-$p.log" 2>&1 &
    pids+=($!)
    order_pids+=($!)
    wait_log "$work/order-$p.log" "listening on" "$!" "order-service :$p"
    targets+=("http://127.0.0.1:$p")
done

echo "==> connect-worker on 127.0.0.1:$connect_port (orders-sink)" >&2
mkdir -p "$work/connectors"
sed "s#jdbc:mariadb://mariadb:3306/mydb#$jdbc_url#" docker/connectors/orders-sink.json \
    >"$work/connectors/orders-sink.json"
# orders-sink.json names the password ${env:MARIADB_ROOT_PASSWORD}, as in the compose stack.
MARIADB_ROOT_PASSWORD=test1357 "$bin/connect-worker" --listen "127.0.0.1:$connect_port" \
    --bootstrap-servers "$bootstrap" --config-providers env \
    --connectors-dir "$work/connectors" >"$work/connect.log" 2>&1 &
pids+=($!)
connect_pid=$!
for _ in $(seq 600); do
    if curl -fs "http://127.0.0.1:$connect_port/connectors/orders-sink/status" 2>/dev/null |
        grep -q '"RUNNING"'; then
        break
    fi
    kill -0 "$connect_pid" 2>/dev/null || {
        tail -n 30 "$work/connect.log" >&2
        exit 1
    }
    sleep 0.1
done

echo "## Services and connect worker benchmark ($(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown))"
echo
echo "- Host: $(nproc) CPU(s), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r)"
echo "- Load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg); other processes using > 5 % CPU: $(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 > 5 {printf "%s(%s%%) ", $2, $1}')"
echo "- MariaDB: \`docker run $image\` (defaults), broker \`$bin/broker --listen $bootstrap\`, order-service ×${#order_ports[@]} \`$bin/order-service --port P --database-url $db_url --bootstrap-servers $bootstrap\` (linger ${PRODUCER_LINGER_MS:-5} ms, the default unless PRODUCER_LINGER_MS says otherwise; orders committed in transactions, acks=all), connect worker \`$bin/connect-worker --connectors-dir <orders-sink.json with $jdbc_url>\`"
echo

status=0
target_list="$(IFS=,; echo "${targets[*]}")"
if [[ "$only" == all || "$only" == orders ]]; then
    echo "==> order-bench" >&2
    "$bin/order-bench" --targets "$target_list" --database-url "$db_url" --rate "$rate" \
        --duration-secs "$duration" --warmup-secs "$warmup" --label "2 instances" || status=1
    echo
    if [[ "$closed" != 0 ]]; then
        "$bin/order-bench" --targets "$target_list" --database-url "$db_url" --rate 0 \
            --connections "$closed" --duration-secs "$duration" --warmup-secs "$warmup" \
            --label "2 instances" || status=1
        echo
    fi
fi
# CPU seconds (user+system) each process used so far: where the cores went.
cpu_secs() {
    awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$1/stat" 2>/dev/null || echo "?"
}
if [[ "$only" == all || "$only" == orders ]]; then
    line="- CPU seconds used since start: broker $(cpu_secs "$broker_pid"), connect-worker $(cpu_secs "$connect_pid")"
    for i in "${!order_pids[@]}"; do
        line+=", order-service :${order_ports[$i]} $(cpu_secs "${order_pids[$i]}")"
    done
    echo "$line; mariadbd (container) $(docker exec "$container" sh -c 'awk -v hz=$(getconf CLK_TCK) "{printf \"%.1f\", (\$14+\$15)/hz}" /proc/1/stat' 2>/dev/null || echo '?')"
    echo
fi
for p in "${order_pids[@]}"; do
    stop_pid "$p"
done

if [[ "$only" == all || "$only" == sink ]]; then
    echo "==> sink-bench" >&2
    sync
    "$bin/sink-bench" --bootstrap-servers "$bootstrap" \
        --connect-url "http://127.0.0.1:$connect_port" --database-url "$db_url" \
        --jdbc-url "$jdbc_url" --records "$sink_records" ${sink_batch:+--sink-batch-size "$sink_batch"} \
        --e2e-rate "$e2e_rate" --e2e-secs "$e2e_secs" --poll-interval-ms 100 || status=1
    echo
fi

for f in "$work"/*.log; do
    problems="$(sed 's/\x1b\[[0-9;]*m//g' "$f" | grep -E " (ERROR|WARN) |panicked" || true)"
    if [[ -n "$problems" ]]; then
        echo "$(basename "$f"): $(wc -l <<<"$problems") WARN/ERROR line(s), first ones:"
        echo '```'
        head -n 5 <<<"$problems" | cut -c1-400
        echo '```'
    fi
done
exit "$status"
