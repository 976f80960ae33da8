#!/usr/bin/env bash
# Makes what docker-compose.secure.yml mounts (issue 19): certificates and fresh random
# passwords, in OUT_DIR (default docker/secure, which git and the image build ignore).
#
#   scripts/make-secure-stack.sh [OUT_DIR]
#   docker compose -f docker-compose.yml -f docker-compose.secure.yml up --build
#
# OUT_DIR then holds
#   ca.pem, broker.pem, broker.key      the CA and the one server certificate the broker's
#                                       SASL_SSL listeners and the Connect workers' HTTPS present
#                                       (SANs: broker, connect-worker, connect-worker-2, localhost)
#   kafka-users.txt                     the broker's SCRAM users (--sasl-users-file): admin (super
#                                       user) and one per service: connect, order-service,
#                                       user-service, console
#   admin.properties                    the admin's client settings inside the containers
#                                       (`broker ... --command-config`), used to create the ACLs
#   connect-rest-users.properties       Connect REST basic auth users: admin, console, prometheus
#   *.env                               each service's secrets (its Kafka password; the console's
#                                       login and Connect credentials), read with env_file
#   admin.password, connect-admin.password, console-admin.password, prometheus-connect.password
#                                       the same secrets as single-line files, for curl and kcat
# An existing OUT_DIR is left as it is (delete it to rotate everything).
#
# This is a development set-up: the files are readable by the containers' user (uid 10001)
# through a bind mount. In production use your CA's certificates and Docker or Kubernetes
# secrets.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-docker/secure}
if [[ -f "$out/kafka-users.txt" ]]; then
    echo "$out already holds a secure stack's files (delete it to make new ones)"
    exit 0
fi
mkdir -p "$out"
scripts/make-certs.sh "$out" connect-worker connect-worker-2 >/dev/null

pw() { openssl rand -hex 16; }
admin=$(pw) connect=$(pw) order=$(pw) user=$(pw) console=$(pw)
rest_admin=$(pw) rest_console=$(pw) rest_prometheus=$(pw) console_login=$(pw)

umask 022
cat >"$out/kafka-users.txt" <<USERS
# SCRAM-SHA-256/512 and PLAIN users of the broker (--sasl-users-file); stored salted in
# __datasync_scram_credentials at first start, then managed with "broker users".
admin=$admin
connect=$connect
order-service=$order
user-service=$user
console=$console
USERS
cat >"$out/admin.properties" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.username=admin
sasl.password=$admin
ssl.ca.location=/etc/datasync/secure/ca.pem
PROPS
cat >"$out/connect-rest-users.properties" <<PROPS
# Kafka Connect's BasicAuthSecurityRestExtension format: user: password
admin: $rest_admin
console: $rest_console
prometheus: $rest_prometheus
PROPS
printf 'KAFKA_SASL_PASSWORD=%s\n' "$connect" >"$out/connect-worker.env"
printf 'KAFKA_SASL_PASSWORD=%s\n' "$order" >"$out/order-service.env"
printf 'KAFKA_SASL_PASSWORD=%s\n' "$user" >"$out/user-service.env"
printf 'KAFKA_SASL_PASSWORD=%s\nCONSOLE_BASIC_AUTH=admin:%s\nCONNECT_BASIC_AUTH=console:%s\n' \
    "$console" "$console_login" "$rest_console" >"$out/console.env"
printf '%s\n' "$admin" >"$out/admin.password"
printf '%s\n' "$rest_admin" >"$out/connect-admin.password"
printf '%s\n' "$console_login" >"$out/console-admin.password"
printf '%s\n' "$rest_prometheus" >"$out/prometheus-connect.password"
chmod 0644 "$out"/*
chmod 0600 "$out/ca.key" # only needed to sign more certificates; no container reads it
echo "secure stack files in $out"
