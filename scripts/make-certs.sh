#!/usr/bin/env bash
# Makes the PEM files for the broker's SSL and SASL_SSL listeners (issue 19) with openssl:
#   OUT_DIR/ca.pem, ca.key                 a CA (clients trust ca.pem; --ssl-truststore-location)
#   OUT_DIR/broker.pem, broker.key         the broker's certificate (SANs: localhost, 127.0.0.1,
#                                          ::1, broker, and every HOSTNAME given)
#   OUT_DIR/client-NAME.pem, .key          client certificates, subject CN=NAME,OU=datasync,O=example,
#                                          for each NAME in $CLIENTS (default: "writer reader")
#   OUT_DIR/other-ca.pem                   an unrelated CA, for testing that it is refused
# Usage: scripts/make-certs.sh OUT_DIR [HOSTNAMES...]
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 OUT_DIR [HOSTNAMES...]" >&2
  exit 2
fi
out=$1
shift
mkdir -p "$out"
cd "$out"
days=${DAYS:-825}
clients=${CLIENTS:-writer reader}

openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days "$days" \
  -subj "/O=example/CN=datasync test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem -days "$days" \
  -subj "/O=elsewhere/CN=unrelated CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

# sign NAME SUBJECT EXTFILE
sign() {
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" \
    -days "$days" -extfile "$3" 2>/dev/null
  rm -f "$1.csr" "$3"
}

sans="DNS:localhost,IP:127.0.0.1,IP:::1,DNS:broker"
for host in "$@"; do
  if [[ $host =~ ^[0-9.]+$ || $host == *:* ]]; then sans="$sans,IP:$host"; else sans="$sans,DNS:$host"; fi
done
cat > broker.ext <<EXT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$sans
EXT
sign broker "/O=example/OU=datasync/CN=broker" broker.ext

for name in $clients; do
  cat > "client-$name.ext" <<EXT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EXT
  sign "client-$name" "/O=example/OU=datasync/CN=$name" "client-$name.ext"
done
rm -f ca.srl other-ca.key
echo "certificates in $out: ca.pem broker.pem broker.key $(for n in $clients; do printf 'client-%s.pem ' "$n"; done)"
