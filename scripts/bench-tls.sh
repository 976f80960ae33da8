#!/usr/bin/env bash
# TLS benchmark (issue 19): produce throughput over PLAINTEXT, SSL and SASL_SSL (SCRAM-SHA-512)
# listeners of one release-build broker, same run, same client (confluent-kafka's librdkafka,
# acks=all, linger 5 ms), each listener measured BENCH_ROUNDS times in turn.
#   ./scripts/bench-tls.sh            (BENCH_SKIP_BUILD=1 uses target/release/broker as built)
# Environment: BENCH_RECORDS [200000]  BENCH_RECORD_SIZE [1024]  BENCH_ROUNDS [3]
#              BENCH_BROKER_ARGS []  DATASYNC_PYTHON [python3] (with confluent-kafka)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
records="${BENCH_RECORDS:-200000}"
size="${BENCH_RECORD_SIZE:-1024}"
rounds="${BENCH_ROUNDS:-3}"
py="${DATASYNC_PYTHON:-python3}"
if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
    cargo build --release -p broker --bin broker
fi
tmp=$(mktemp -d)
trap 'kill "${broker_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
scripts/make-certs.sh "$tmp/certs" >/dev/null
echo 'alice=alice-secret' > "$tmp/users.txt"
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
plain=$(free_port); ssl=$(free_port); sasl_ssl=$(free_port)
# shellcheck disable=SC2086
target/release/broker --listen "127.0.0.1:$plain" --http-listen off --data-dir "$tmp/data" \
    --extra-listener "SSL://127.0.0.1:$ssl=localhost:$ssl,SASL_SSL://127.0.0.1:$sasl_ssl=localhost:$sasl_ssl" \
    --ssl-certificate-location "$tmp/certs/broker.pem" --ssl-key-location "$tmp/certs/broker.key" \
    --sasl-users-file "$tmp/users.txt" ${BENCH_BROKER_ARGS:-} > "$tmp/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 100); do grep -q "also listening" "$tmp/broker.log" 2>/dev/null && break; sleep 0.1; done
ca="ssl.ca.location=$tmp/certs/ca.pem"
echo "records=$records size=$size rounds=$rounds $(nproc) cores"
for round in $(seq "$rounds"); do
    echo "PLAINTEXT  round $round: $("$py" scripts/bench_tls_produce.py "127.0.0.1:$plain" "plain-$round" "$records" "$size")"
    echo "SSL        round $round: $("$py" scripts/bench_tls_produce.py "localhost:$ssl" "ssl-$round" "$records" "$size" security.protocol=SSL "$ca")"
    echo "SASL_SSL   round $round: $("$py" scripts/bench_tls_produce.py "localhost:$sasl_ssl" "sasl-$round" "$records" "$size" \
        security.protocol=SASL_SSL "$ca" sasl.mechanism=SCRAM-SHA-512 sasl.username=alice sasl.password=alice-secret)"
done
