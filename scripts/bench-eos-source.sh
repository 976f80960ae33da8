#!/usr/bin/env bash
# Exactly-once JDBC source against at-least-once, same run: ./scripts/bench-eos-source.sh
#
# Builds the broker, connect-worker and eos-source-bench in release mode, then runs as processes:
#   - a throwaway MariaDB in Docker (image $MARIADB_IMAGE, port $BENCH_DB_PORT), database mydb;
#   - a fresh broker on 127.0.0.1:$BENCH_BROKER_PORT;
#   - two connect workers: one with exactly.once.source.support=enabled on $BENCH_EOS_PORT (its
#     own group and state topics), one without on $BENCH_ALO_PORT;
# and runs eos-source-bench: per round, a source table of BENCH_EOS_ROWS rows copied by the JDBC
# source (incrementing) to a topic and by the JDBC sink to a second table, at least once then
# exactly once (reversed on even rounds), BENCH_EOS_ROUNDS rounds. Output: markdown.
#
# Environment overrides (defaults in brackets):
#   BENCH_EOS_ROWS [200000]  BENCH_EOS_ROUNDS [3]  BENCH_EOS_ARGS [extra eos-source-bench flags,
#   e.g. "--batch-max-rows 1000" or "--eos-extra transaction.boundary=interval,transaction.boundary.interval.ms=100"]
#   BENCH_BROKER_PORT [19192]  BENCH_ALO_PORT [18083]  BENCH_EOS_PORT [18084]  BENCH_DB_PORT [13316]
#   MARIADB_IMAGE [offline/mariadb:10.11]  BENCH_BROKER_ARGS [broker flags; default
#   "--http-listen 127.0.0.1:19644", away from the default 9644 another broker may hold]
#   BENCH_KEEP_LOGS [unset: logs deleted; DIR: copied there]  BENCH_TMPDIR [$TMPDIR or /tmp]
#   BENCH_SKIP_BUILD [0]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

rows="${BENCH_EOS_ROWS:-200000}"
rounds="${BENCH_EOS_ROUNDS:-3}"
broker_port="${BENCH_BROKER_PORT:-19192}"
alo_port="${BENCH_ALO_PORT:-18083}"
eos_port="${BENCH_EOS_PORT:-18084}"
db_port="${BENCH_DB_PORT:-13316}"
image="${MARIADB_IMAGE:-offline/mariadb:10.11}"
tmp_base="${BENCH_TMPDIR:-${TMPDIR:-/tmp}}"

if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
    echo "==> cargo build --release -p broker -p connect-worker -p bench --bin eos-source-bench" >&2
    cargo build --release -p broker -p connect-worker -p bench --bin broker --bin connect-worker \
        --bin eos-source-bench
fi
bin=target/release

work="$(mktemp -d "$tmp_base/datasync-bench-eos.XXXXXX")"
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
container="datasync-bench-eos-mariadb-$$"
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
"$bin/broker" --listen "$bootstrap" --data-dir "$work/broker" ${BENCH_BROKER_ARGS:---http-listen 127.0.0.1:19644} >"$work/broker.log" 2>&1 &
pids+=($!)
broker_pid=$!
wait_log "$work/broker.log" "listening on" "$broker_pid" broker

echo "==> connect workers: at least once on :$alo_port, exactly once on :$eos_port" >&2
"$bin/connect-worker" --listen "127.0.0.1:$alo_port" --bootstrap-servers "$bootstrap" \
    >"$work/connect-alo.log" 2>&1 &
pids+=($!)
alo_pid=$!
CONNECT_EXACTLY_ONCE_SOURCE_SUPPORT=enabled "$bin/connect-worker" --listen "127.0.0.1:$eos_port" \
    --bootstrap-servers "$bootstrap" --group-id connect-eos --config-topic connect-eos-configs \
    --offset-topic connect-eos-offsets --status-topic connect-eos-status \
    >"$work/connect-eos.log" 2>&1 &
pids+=($!)
eos_pid=$!
for port in "$alo_port" "$eos_port"; do
    for _ in $(seq 600); do
        if curl -fs "http://127.0.0.1:$port/connectors" >/dev/null 2>&1; then
            break
        fi
        kill -0 "$alo_pid" 2>/dev/null && kill -0 "$eos_pid" 2>/dev/null || {
            tail -n 30 "$work"/connect-*.log >&2
            exit 1
        }
        sleep 0.1
    done
done

echo "## Exactly-once source benchmark ($(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown))"
echo
echo "- Host: $(nproc) CPU(s), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, Linux $(uname -r)"
echo "- Load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg); other processes using > 5 % CPU: $(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 > 5 {printf "%s(%s%%) ", $2, $1}')"
echo "- MariaDB: \`docker run $image\` (defaults), broker \`$bin/broker --listen $bootstrap\`, connect workers \`$bin/connect-worker --listen 127.0.0.1:$alo_port\` and \`CONNECT_EXACTLY_ONCE_SOURCE_SUPPORT=enabled $bin/connect-worker --listen 127.0.0.1:$eos_port --group-id connect-eos\` (own state topics)"
echo

status=0
echo "==> eos-source-bench" >&2
# shellcheck disable=SC2086 # BENCH_EOS_ARGS is a list of flags
"$bin/eos-source-bench" --bootstrap-servers "$bootstrap" \
    --alo-connect-url "http://127.0.0.1:$alo_port" --eos-connect-url "http://127.0.0.1:$eos_port" \
    --database-url "$db_url" --jdbc-url "$jdbc_url" --rows "$rows" --rounds "$rounds" \
    ${BENCH_EOS_ARGS:-} || status=1
echo

cpu_secs() {
    awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$1/stat" 2>/dev/null || echo "?"
}
echo "- CPU seconds used since start: broker $(cpu_secs "$broker_pid"), connect-worker (at least once) $(cpu_secs "$alo_pid"), connect-worker (exactly once) $(cpu_secs "$eos_pid"); mariadbd (container) $(docker exec "$container" sh -c 'awk -v hz=$(getconf CLK_TCK) "{printf \"%.1f\", (\$14+\$15)/hz}" /proc/1/stat' 2>/dev/null || echo '?')"
echo

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
