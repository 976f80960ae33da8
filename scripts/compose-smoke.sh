#!/usr/bin/env bash
# Compose smoke test: builds the image, brings the whole docker-compose.yml stack up under a
# unique project name on free host ports, then checks the tutorial's flow end to end:
#   a user on the user-service; orders posted alternately to BOTH order-service instances, each
#   read back on the OTHER instance with its X-Consistency-Token (read-your-writes); both
#   instances, the user-service and MariaDB (docker exec ... mariadb) agree on the orders; the
#   tutorial's users source/sink connectors copied the user into `my_topic_users`.
# Then Connect failover in containers (COMPOSE_FAILOVER=0 skips it): the worker running the
# orders sink is cut off the stack's network, then the other worker is killed, with orders and
# users written during each outage; every task must move to the survivor and MariaDB must end
# with every acknowledged row exactly once.
# With COMPOSE_SECURE=1 the same flow runs on the secure stack (docker-compose.secure.yml over
# docker-compose.yml, with fresh certificates and passwords from scripts/make-secure-stack.sh):
# the host's kcat over SASL_SSL as admin, Connect REST over HTTPS with basic auth, the console
# behind its login; and what must be refused is: a PLAINTEXT client, a wrong password, a user
# without the ACL (console producing to orders), Connect REST and the console without
# credentials. (The failover part runs on the plain stack only.)
# The stack is always torn down (down -v), also when a step fails; on failure the service logs
# are printed first.
#
#   ./scripts/compose-smoke.sh          # KEEP_STACK=1 leaves the stack running for debugging
#   COMPOSE_SECURE=1 ./scripts/compose-smoke.sh
#
# Where the public base images cannot be pulled and RUST_IMAGE/BASE_IMAGE/MARIADB_IMAGE are not
# set, the local stand-ins of ../shared/ci/offline-images.sh are used.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '==> compose-smoke: %s\n' "$*"; }
fail() { printf '==> compose-smoke: FAILED: %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null || fail "docker not found"
docker info >/dev/null 2>&1 || fail "no Docker engine answers"
command -v curl >/dev/null || fail "curl not found"
command -v python3 >/dev/null || fail "python3 not found (used to parse JSON)"
command -v kcat >/dev/null || fail "kcat not found (used to reach the broker from the host)"
if docker compose version >/dev/null 2>&1; then
    compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null; then
    compose_cmd=(docker-compose)
else
    fail "neither 'docker compose' nor 'docker-compose' is available"
fi

# Base images: the public ones when present or pullable, else the offline stand-ins.
have_or_pull() { docker image inspect "$1" >/dev/null 2>&1 || timeout 120 docker pull -q "$1" >/dev/null 2>&1; }
if [[ -z "${RUST_IMAGE:-}" || -z "${BASE_IMAGE:-}" || -z "${MARIADB_IMAGE:-}" || -z "${PROMETHEUS_IMAGE:-}" ]]; then
    if ! { have_or_pull "${RUST_IMAGE:-rust:1-bookworm}" && have_or_pull "${BASE_IMAGE:-debian:bookworm-slim}" \
           && have_or_pull "${MARIADB_IMAGE:-mariadb:11.4}" \
           && have_or_pull "${PROMETHEUS_IMAGE:-prom/prometheus:v2.53.0}"; }; then
        offline=../shared/ci/offline-images.sh
        [[ -f "$offline" ]] || fail "public images cannot be pulled and $offline is missing"
        log "public images unavailable; using the stand-ins of $offline"
        eval "$(bash "$offline")"
    fi
fi
export RUST_IMAGE=${RUST_IMAGE:-rust:1-bookworm} BASE_IMAGE=${BASE_IMAGE:-debian:bookworm-slim} \
    MARIADB_IMAGE=${MARIADB_IMAGE:-mariadb:11.4} PROMETHEUS_IMAGE=${PROMETHEUS_IMAGE:-prom/prometheus:v2.53.0}
export MARIADB_ROOT_PASSWORD=${MARIADB_ROOT_PASSWORD:-test1357}
# A lost worker's tasks move after 3 s instead of Kafka's 5 min, for the failover part.
export CONNECT_SCHEDULED_REBALANCE_MAX_DELAY_MS=${CONNECT_SCHEDULED_REBALANCE_MAX_DELAY_MS:-3000}

# Free host ports, so that a stack already running on the default ports does not interfere.
read -r MARIADB_PORT BROKER_PORT CONNECT_PORT USER_SERVICE_PORT ORDER_SERVICE_1_PORT ORDER_SERVICE_2_PORT \
    BROKER_HTTP_PORT PROMETHEUS_PORT CONSOLE_PORT CONNECT_2_PORT < <(
    python3 -c 'import socket
ss=[socket.socket() for _ in range(10)]
[s.bind(("127.0.0.1",0)) for s in ss]
print(*[s.getsockname()[1] for s in ss])')
export MARIADB_PORT BROKER_PORT CONNECT_PORT USER_SERVICE_PORT ORDER_SERVICE_1_PORT ORDER_SERVICE_2_PORT \
    BROKER_HTTP_PORT PROMETHEUS_PORT CONSOLE_PORT CONNECT_2_PORT

project="datasync-smoke-$$"
secure=${COMPOSE_SECURE:-0}
files=(-f docker-compose.yml)
secure_dir=
if [[ $secure == 1 ]]; then
    project="datasync-secure-smoke-$$"
    secure_dir=$(mktemp -d)
    chmod 0755 "$secure_dir"
    scripts/make-secure-stack.sh "$secure_dir" >/dev/null || fail "scripts/make-secure-stack.sh"
    export DATASYNC_SECURE_DIR=$secure_dir
    files+=(-f docker-compose.secure.yml)
fi
compose() { "${compose_cmd[@]}" -p "$project" "${files[@]}" "$@"; }
services=(mariadb broker connect-worker connect-worker-2 user-service order-service-1 order-service-2 console)

ok=0
hdr=$(mktemp); body=$(mktemp)
cleanup() {
    local rc=$?
    rm -f "$hdr" "$body"
    if [[ $ok != 1 ]]; then
        log "service logs (last 60 lines each):"
        compose logs --no-color --tail=60 >&2 || true
    fi
    if [[ "${KEEP_STACK:-}" == 1 ]]; then
        log "KEEP_STACK=1: leaving project $project running (remove: ${compose_cmd[*]} -p $project down -v)"
    else
        log "tearing down project $project"
        compose down -v --remove-orphans >/dev/null 2>&1 || compose down -v --remove-orphans || true
    fi
    [[ -z "$secure_dir" ]] || rm -rf "$secure_dir"
    if [[ $ok == 1 ]]; then log "PASSED"; else log "FAILED (exit $rc)"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "using ${compose_cmd[*]} ($("${compose_cmd[@]}" version --short 2>/dev/null || echo '?')), project $project, files ${files[*]}"
log "images: RUST_IMAGE=$RUST_IMAGE BASE_IMAGE=$BASE_IMAGE MARIADB_IMAGE=$MARIADB_IMAGE PROMETHEUS_IMAGE=$PROMETHEUS_IMAGE"
log "host ports: mariadb $MARIADB_PORT, broker $BROKER_PORT, connect $CONNECT_PORT, user-service $USER_SERVICE_PORT, order-service $ORDER_SERVICE_1_PORT and $ORDER_SERVICE_2_PORT"

t0=$SECONDS
log "building the image datasync:local"
compose build >/tmp/compose-smoke-build.$$.log 2>&1 || { tail -n 80 /tmp/compose-smoke-build.$$.log >&2; rm -f /tmp/compose-smoke-build.$$.log; fail "image build"; }
rm -f /tmp/compose-smoke-build.$$.log
log "image built in $((SECONDS - t0)) s"

t0=$SECONDS
log "starting the stack"
compose up -d >&2 || fail "compose up"
health() { docker inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$1" 2>/dev/null || echo missing; }
cid() { compose ps -q "$1"; }
deadline=$((SECONDS + 180))
while :; do
    pending=()
    for s in "${services[@]}"; do
        id=$(cid "$s")
        st=$([[ -n "$id" ]] && health "$id" || echo missing)
        [[ "$st" == healthy ]] || pending+=("$s:$st")
    done
    ((${#pending[@]} == 0)) && break
    ((SECONDS < deadline)) || fail "not healthy within 180 s: ${pending[*]}"
    sleep 1
done
log "all ${#services[@]} services healthy $((SECONDS - t0)) s after 'up'"
if [[ $secure == 1 ]]; then
    acl_exit=$(docker inspect --format '{{.State.ExitCode}}' "$(compose ps -q kafka-acls)" 2>/dev/null || echo missing)
    [[ "$acl_exit" == 0 ]] || fail "the kafka-acls service exited with $acl_exit"
    log "kafka-acls created the stack's ACLs as admin"
fi

# --- helpers -------------------------------------------------------------------------------
json() { python3 -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1:]: v=v[int(k)] if isinstance(v,list) else v[k]
print(v if not isinstance(v,(dict,list)) else json.dumps(v, sort_keys=True))' "$@"; }
order_ids() { python3 -c 'import json,sys; print(" ".join(sorted(o["orderId"] for o in json.load(sys.stdin))))'; }
sql() { docker exec -e MYSQL_PWD="$MARIADB_ROOT_PASSWORD" "$(cid mariadb)" mariadb -uroot mydb -N -B -e "$1"; }
users="http://127.0.0.1:$USER_SERVICE_PORT"
orders=("http://127.0.0.1:$ORDER_SERVICE_1_PORT" "http://127.0.0.1:$ORDER_SERVICE_2_PORT")
if [[ $secure == 1 ]]; then
    ca="$secure_dir/ca.pem"
    connect="https://127.0.0.1:$CONNECT_PORT"
    connect2="https://127.0.0.1:$CONNECT_2_PORT"
    # Connect REST as admin; the console as its admin login; kcat as the broker's admin.
    ccurl() { curl --cacert "$ca" -u "admin:$(cat "$secure_dir/connect-admin.password")" "$@"; }
    console_auth=(-u "admin:$(cat "$secure_dir/console-admin.password")")
    kc=(-X security.protocol=SASL_SSL -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=admin
        -X "sasl.password=$(cat "$secure_dir/admin.password")" -X "ssl.ca.location=$ca")
else
    connect="http://127.0.0.1:$CONNECT_PORT"
    connect2="http://127.0.0.1:$CONNECT_2_PORT"
    ccurl() { curl "$@"; }
    console_auth=()
    kc=()
fi

# --- the broker from the host: its host-facing listener advertises localhost:$BROKER_PORT ---------
meta=$(kcat -b "localhost:$BROKER_PORT" "${kc[@]}" -L -m 10 2>&1) || fail "kcat -L: $meta"
grep -q "at localhost:$BROKER_PORT" <<<"$meta" || fail "the broker does not advertise localhost:$BROKER_PORT to the host: $meta"
printf 'smoke-%s\n' "$$" | kcat -b "localhost:$BROKER_PORT" "${kc[@]}" -P -t compose-smoke -m 10 || fail "kcat could not produce from the host"
got=$(kcat -b "localhost:$BROKER_PORT" "${kc[@]}" -C -t compose-smoke -o beginning -e -c 1 -m 10 2>/dev/null) || true
[[ "$got" == "smoke-$$" ]] || fail "consumed [$got] from the host, want [smoke-$$]"
log "host Kafka client (kcat) produced and consumed through localhost:$BROKER_PORT"
if [[ $secure == 1 ]]; then
    # Refused: PLAINTEXT against the SASL_SSL port, a wrong password, a user without the ACL.
    if out=$(kcat -b "localhost:$BROKER_PORT" -L -m 8 2>&1) && grep -q "topic \"" <<<"$out"; then
        fail "a PLAINTEXT client read metadata from the SASL_SSL port: $out"
    fi
    bad=(-X security.protocol=SASL_SSL -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=admin
         -X sasl.password=not-the-password -X "ssl.ca.location=$ca")
    out=$(kcat -b "localhost:$BROKER_PORT" "${bad[@]}" -L -m 8 2>&1) && fail "a wrong password was accepted: $out"
    grep -qi "authentication" <<<"$out" || fail "a wrong password did not fail with an authentication error: $out"
    console_pw=$(sed -n 's/^KAFKA_SASL_PASSWORD=//p' "$secure_dir/console.env")
    as_console=(-X security.protocol=SASL_SSL -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=console
                -X "sasl.password=$console_pw" -X "ssl.ca.location=$ca")
    out=$(printf 'forged\n' | kcat -b "localhost:$BROKER_PORT" "${as_console[@]}" -P -t orders -m 10 2>&1) \
        && fail "console (no WRITE ACL) produced to orders: $out"
    grep -qi "authoriz" <<<"$out" || fail "console producing to orders did not fail with an authorization error: $out"
    log "refused: PLAINTEXT on the SASL_SSL port, a wrong password, console writing to orders (no ACL)"
    code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$ca" "$connect/connectors")
    [[ "$code" == 401 ]] || fail "Connect REST without credentials answered $code, want 401"
    code=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$CONSOLE_PORT/topics")
    [[ "$code" == 401 ]] || fail "the console without credentials answered $code, want 401"
    log "refused: Connect REST (HTTPS) and the console without credentials (401)"
fi

# --- connectors ------------------------------------------------------------------------------
# Two workers of one group: once the second has joined, every task runs on one of them and both
# answer the same.
tasks_running() { python3 -c 'import json,sys; s=json.load(sys.stdin)
print("yes" if s["connector"]["state"]=="RUNNING" and s["tasks"] and all(t["state"]=="RUNNING" for t in s["tasks"]) else "no")'; }
deadline=$((SECONDS + 90))
for c in orders-sink my-source-connect my-sink-connect; do
    until [[ "$(ccurl -fsS "$connect2/connectors/$c/status" 2>/dev/null | tasks_running)" == yes ]]; do
        ((SECONDS < deadline)) || fail "connector $c not RUNNING with all tasks on the group within 90 s: $(ccurl -sS "$connect2/connectors/$c/status")"
        sleep 1
    done
    a=$(ccurl -fsS "$connect/connectors/$c/status" | json tasks) || fail "connector $c missing on connect-worker"
    b=$(ccurl -fsS "$connect2/connectors/$c/status" | json tasks) || fail "connector $c missing on connect-worker-2"
    [[ "$a" == "$b" ]] || fail "the workers disagree on $c: [$a] vs [$b]"
done
log "connectors orders-sink, my-source-connect, my-sink-connect: RUNNING, the same seen from both workers"
# They reached MariaDB with the password from ${env:MARIADB_ROOT_PASSWORD}; the worker shows and
# stores the placeholder, never the password.
for path in config tasks; do
    shown=$(ccurl -fsS "$connect/connectors/orders-sink/$path") || fail "GET orders-sink/$path"
    grep -qF '${env:MARIADB_ROOT_PASSWORD}' <<<"$shown" || fail "orders-sink/$path lost the placeholder: $shown"
    ! grep -qF "$MARIADB_ROOT_PASSWORD" <<<"$shown" || fail "orders-sink/$path shows the password"
done
log "connector configs keep \${env:MARIADB_ROOT_PASSWORD}; the password is resolved, not stored"
# The stack allows no file access: the issue's own attack (/etc/passwd into a topic) is a 400.
code=$(ccurl -sS -o "$body" -w '%{http_code}' -XPOST "$connect/connectors" -H 'content-type: application/json' \
    -d '{"name":"leak","config":{"connector.class":"FileStreamSource","file":"/etc/passwd","topic":"leak","tasks.max":"1"}}')
[[ "$code" == 400 ]] && grep -qF -- '--allowed-paths' "$body" || fail "FileStreamSource on /etc/passwd: HTTP $code $(cat "$body")"
ccurl -fsS "$connect/connectors/leak" >/dev/null 2>&1 && fail "connector leak was created"
log "a FileStreamSource on /etc/passwd is refused (400, no allowed paths)"

# --- a user ----------------------------------------------------------------------------------
email="smoke-$$-$RANDOM@example.com"
code=$(curl -sS -o "$body" -w '%{http_code}' -XPOST "$users/users" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"name\":\"Smoke\",\"pwd\":\"s3cret-pass\"}")
[[ "$code" == 201 ]] || fail "POST /users answered $code: $(cat "$body")"
uid=$(json userId <"$body")
log "user created: $uid ($email)"

# --- orders through both instances, read back on the other one ---------------------------------
expected=()
token=
for i in 0 1 2 3 4 5; do
    w=${orders[$((i % 2))]} r=${orders[$(((i + 1) % 2))]}
    code=$(curl -sS -D "$hdr" -o "$body" -w '%{http_code}' -XPOST "$w/order-service/$uid/orders" \
        -H 'content-type: application/json' -d "{\"productId\":\"CATALOG-00$i\",\"qty\":$((i + 1)),\"unitPrice\":1500}")
    [[ "$code" == 201 ]] || fail "POST $w answered $code: $(cat "$body")"
    oid=$(json orderId <"$body")
    expected+=("$oid")
    token=$(sed -n 's/^[Xx]-[Cc]onsistency-[Tt]oken: *\([^[:space:]]*\).*/\1/p' "$hdr")
    [[ -n "$token" ]] || fail "201 from $w without X-Consistency-Token"
    code=$(curl -sS -o "$body" -w '%{http_code}' -H "X-Consistency-Token: $token" "$r/order-service/$uid/orders")
    [[ "$code" == 200 ]] || fail "GET $r with token $token answered $code: $(cat "$body")"
    grep -q "\"$oid\"" "$body" || fail "order $oid (posted to $w, token $token) missing on $r: $(cat "$body")"
    log "order $((i + 1))/6 $oid posted to $w, read back on $r with $token"
done
want=$(printf '%s\n' "${expected[@]}" | sort | tr '\n' ' ' | sed 's/ $//')

a=$(curl -fsS -H "X-Consistency-Token: $token" "${orders[0]}/order-service/$uid/orders")
b=$(curl -fsS -H "X-Consistency-Token: $token" "${orders[1]}/order-service/$uid/orders")
[[ "$(order_ids <<<"$a")" == "$want" ]] || fail "instance 1 lists $(order_ids <<<"$a"), want $want"
[[ "$(order_ids <<<"$b")" == "$want" ]] || fail "instance 2 lists $(order_ids <<<"$b"), want $want"
[[ "$(json <<<"$a")" == "$(json <<<"$b")" ]] || fail "the two instances answer differently: $a / $b"
log "both order-service instances list the same 6 orders"

db=$(sql "SELECT order_id FROM orders WHERE user_id = '$uid' ORDER BY order_id" | tr '\n' ' ' | sed 's/ $//')
[[ "$db" == "$want" ]] || fail "MariaDB has [$db], want [$want]"
counts=$(sql "SELECT COUNT(*), COUNT(DISTINCT order_id) FROM orders WHERE user_id = '$uid'" | tr '\t' ' ')
[[ "$counts" == "6 6" ]] || fail "MariaDB counts (rows, distinct ids) = $counts, want 6 6"
log "MariaDB (docker exec mariadb) holds exactly these 6 orders, once each"

u=$(curl -fsS "$users/users/$uid")
[[ "$(json orders <<<"$u" | order_ids)" == "$want" ]] || fail "user-service GET /users/$uid: $u"
log "user-service GET /users/$uid shows the 6 orders (found the instances through the broker)"

# --- the tutorial's users source -> my_topic_users -> sink ---------------------------------------
deadline=$((SECONDS + 60))
until [[ "$(sql "SELECT COUNT(*) FROM my_topic_users WHERE user_id = '$uid'" 2>/dev/null)" == 1 ]]; do
    ((SECONDS < deadline)) || fail "user $uid not copied to my_topic_users within 60 s"
    sleep 1
done
log "the users source/sink connectors copied the user into my_topic_users"

# --- metrics: the broker's /metrics, scraped by the stack's Prometheus ----------------------------
# Whole pages are fetched first: `curl | grep -q` fails under pipefail when grep stops reading
# early and curl cannot write the rest (curl: (23)).
page() { curl -fsS "$@" 2>&1 || true; }
grep -q '^kafka_server_brokertopicmetrics_messagesin_total{topic="orders"}' <<<"$(page "http://127.0.0.1:$BROKER_HTTP_PORT/metrics")" \
    || fail "the broker's /metrics has no messages-in count for orders"
prom="http://127.0.0.1:$PROMETHEUS_PORT"
promql() { curl -fsS -G "$prom/api/v1/query" --data-urlencode "query=$1" \
    | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")'; }
deadline=$((SECONDS + 60))
until [[ "$(promql 'kafka_server_brokertopicmetrics_messagesin_total{topic="orders"}' 2>/dev/null)" == 6 ]]; do
    ((SECONDS < deadline)) || fail "Prometheus ($prom) does not show the 6 orders produced within 60 s"
    sleep 1
done
log "Prometheus scrapes the broker: 6 records in on orders"
if [[ $secure == 1 ]]; then
    deadline=$((SECONDS + 60))
    until [[ "$(promql 'up{job="connect-worker"}' 2>/dev/null)" == 1 ]]; do
        ((SECONDS < deadline)) || fail "Prometheus does not scrape the Connect worker over HTTPS with basic auth within 60 s"
        sleep 1
    done
    log "Prometheus scrapes the Connect worker over HTTPS with basic auth"
fi

# --- the web console: the orders topic, its group and the connectors, as pages --------------------
console="http://127.0.0.1:$CONSOLE_PORT"
grep -q 'href="/topics/orders"' <<<"$(page "${console_auth[@]}" "$console/topics")" || fail "the console ($console) does not list the orders topic"
grep -q 'href="/connectors/orders-sink"' <<<"$(page "${console_auth[@]}" "$console/connectors")" || fail "the console does not list orders-sink"
log "the console lists the orders topic and the connectors"

# --- Connect failover in containers: one worker cut off from the network, then the other killed --
# The orders sink and the tutorial's users source/sink keep every row exactly once while the
# worker running them is unreachable (docker network disconnect: its process lives on, its
# heartbeats, broker and database connections all stall) and while the other one is killed
# (SIGKILL). Orders and users are written during each outage; the survivor must take over every
# task and MariaDB must end with each row once. COMPOSE_FAILOVER=0 leaves this part out.
if [[ "${COMPOSE_FAILOVER:-1}" != 0 && $secure != 1 ]]; then
    network=$(docker inspect --format '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$(cid connect-worker)" | awk '{print $1}')
    [[ -n "$network" ]] || fail "cannot tell the stack's network"
    declare -A rest_port=([connect-worker]=8083 [connect-worker-2]=8084)
    connectors=(orders-sink my-source-connect my-sink-connect)
    # Where each task runs, as `service` names, seen from worker $1 ("?" where it does not
    # answer). Asked inside its container: a reconnected container's host port may lag behind.
    owners() { for c in "${connectors[@]}"; do docker exec "$(cid "$1")" \
        curl -fsS -m 5 "http://127.0.0.1:${rest_port[$1]}/connectors/$c/status" 2>/dev/null \
        | python3 -c 'import json,sys; s=json.load(sys.stdin)
print(" ".join(t["worker_id"].split(":")[0] + ("" if t["state"]=="RUNNING" else "!" + t["state"]) for t in s["tasks"]) or "none")' \
        || echo "?"; done | tr '\n' ' ' | sed 's/ $//'; }
    # Every task of every connector RUNNING on service $1, as seen from $1.
    wait_all_on() {
        local want t0=$SECONDS deadline=$((SECONDS + 150))
        want=$(printf "$1 %.0s" "${connectors[@]}" | sed 's/ $//')
        until [[ "$(owners "$1")" == "$want" ]]; do
            ((SECONDS < deadline)) || fail "$2: tasks not all RUNNING on $1 within 150 s: [$(owners "$1")]"
            sleep 1
        done
        log "$2: every task RUNNING on $1 $((SECONDS - t0)) s later"
    }
    posted=("${expected[@]}")
    users_made=("$uid")
    write_during() { # $1: label; 10 orders over both instances and 3 users, all while a worker is out
        local i code
        for i in $(seq 10); do
            code=$(curl -sS -o "$body" -w '%{http_code}' -XPOST "${orders[$((i % 2))]}/order-service/$uid/orders" \
                -H 'content-type: application/json' -d "{\"productId\":\"FAILOVER-$1-$i\",\"qty\":1,\"unitPrice\":10}")
            [[ "$code" == 201 ]] || fail "$1: POST order $i answered $code: $(cat "$body")"
            posted+=("$(json orderId <"$body")")
        done
        for i in 1 2 3; do
            code=$(curl -sS -o "$body" -w '%{http_code}' -XPOST "$users/users" -H 'content-type: application/json' \
                -d "{\"email\":\"fo-$1-$i-$$-$RANDOM@example.com\",\"name\":\"Failover\",\"pwd\":\"s3cret-pass\"}")
            [[ "$code" == 201 ]] || fail "$1: POST /users answered $code: $(cat "$body")"
            users_made+=("$(json userId <"$body")")
        done
        log "$1: posted 10 orders and 3 users while the worker was out"
    }
    # MariaDB holds every posted order and every user's copy exactly once (waits for the sinks).
    exactly_once() {
        local n=${#posted[@]} u want_u=${#users_made[@]} deadline=$((SECONDS + 90)) counts copies
        local in_users; in_users=$(printf "'%s'," "${users_made[@]}" | sed 's/,$//')
        while :; do
            counts=$(sql "SELECT COUNT(*), COUNT(DISTINCT order_id) FROM orders WHERE user_id = '$uid'" | tr '\t' ' ')
            copies=$(sql "SELECT COUNT(*), COUNT(DISTINCT user_id) FROM my_topic_users WHERE user_id IN ($in_users)" | tr '\t' ' ')
            [[ "$counts" == "$n $n" && "$copies" == "$want_u $want_u" ]] && break
            ((SECONDS < deadline)) || fail "$1: MariaDB has orders (rows, distinct) = $counts, want $n $n; my_topic_users copies = $copies, want $want_u $want_u"
            sleep 1
        done
        u=$(sql "SELECT order_id FROM orders WHERE user_id = '$uid' ORDER BY order_id" | tr '\n' ' ' | sed 's/ $//')
        [[ "$u" == "$(printf '%s\n' "${posted[@]}" | sort | tr '\n' ' ' | sed 's/ $//')" ]] \
            || fail "$1: MariaDB holds other orders than the ones acknowledged"
        log "$1: MariaDB holds all $n acknowledged orders and $want_u user copies, each exactly once"
    }

    read -r first _ <<<"$(owners connect-worker-2)"
    [[ "$first" == connect-worker || "$first" == connect-worker-2 ]] || fail "orders-sink runs on [$first]"
    other=$([[ "$first" == connect-worker ]] && echo connect-worker-2 || echo connect-worker)
    log "failover: orders-sink runs on $first; cutting it off the network ($network)"
    docker network disconnect "$network" "$(cid "$first")" || fail "docker network disconnect"
    write_during cut-off
    wait_all_on "$other" "$first cut off"
    exactly_once "$first cut off"
    docker network connect --alias "$first" "$network" "$(cid "$first")" || fail "docker network connect"
    log "failover: $first back on the network; killing $other (SIGKILL)"
    docker kill -s KILL "$(cid "$other")" >/dev/null || fail "docker kill"
    write_during killed
    # The reconnected worker answers REST again once it is back in the group.
    wait_all_on "$first" "$other killed"
    exactly_once "$other killed"
    compose start "$other" >/dev/null 2>&1 || fail "compose start $other"
    deadline=$((SECONDS + 90))
    until [[ "$(health "$(cid "$other")")" == healthy ]]; do
        ((SECONDS < deadline)) || fail "$other not healthy again within 90 s"
        sleep 1
    done
    write_during rejoined
    exactly_once "$other rejoined"
fi

ok=1
