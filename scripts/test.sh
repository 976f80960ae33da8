#!/usr/bin/env bash
# The project's test command: ./scripts/test.sh
#
# Prepares the Python venv used by the broker's client-compatibility tests, runs the whole
# workspace test suite with a single `cargo test` invocation, then the compose smoke tests of the
# plain and the secure stack (scripts/compose-smoke.sh; COMPOSE_SMOKE=0 leaves them out). Exits
# non-zero if any fails.
# Extra arguments are passed to the test binaries, e.g. `./scripts/test.sh kcat` to filter.
# System prerequisites (cmake, g++, kcat, docker-compose, ...) are installed by .ci/run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=.venv
requirements=broker/tests/python/requirements.txt
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"

if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "==> creating Python venv in $venv" >&2
    python3 -m venv --clear "$venv"
fi
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]] \
    || ! "$venv/bin/python" -c 'import kafka, confluent_kafka' >/dev/null 2>&1; then
    echo "==> installing Python test clients from $requirements" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" >"$stamp"
fi
export DATASYNC_PYTHON="$PWD/$venv/bin/python"

if ! command -v kcat >/dev/null 2>&1; then
    echo "error: kcat not found on PATH (install it, or run .ci/run which does)" >&2
    exit 1
fi

# Debug profile: on a 2-core machine compiling the workspace (and librdkafka) in release costs
# more than the tests save.
# --no-fail-fast: run every test binary even when an earlier one fails (still exits non-zero).
cargo_status=0
cargo_log="$(mktemp)"
trap 'rm -f "$cargo_log"' EXIT
cargo test --workspace --no-fail-fast -- --test-threads=2 "$@" 2>&1 | tee "$cargo_log" || cargo_status=$?
# Totals over every test binary (cargo prints one "test result:" line per binary).
read -r passed failed < <(awk '/^test result:/ {
        for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i }
    } END { print p + 0, f + 0 }' "$cargo_log")

# Then the compose smoke tests (build the image, bring docker-compose.yml up, check the
# tutorial's flow across both order-service instances and MariaDB and Connect failover, tear it
# down; then the same flow on the secure stack, docker-compose.secure.yml: SASL_SSL, ACLs,
# Connect REST over HTTPS with basic auth). They run even when cargo test failed, so every
# result is reported. COMPOSE_SMOKE=0 leaves both out.
smoke_passed=0
smoke_failed=0
smoke_result="not run (COMPOSE_SMOKE=0)"
smoke_status=0
if [[ "${COMPOSE_SMOKE:-1}" != 0 ]]; then
    smoke_result=
    for mode in plain secure; do
        echo "==> compose smoke test, $mode stack (scripts/compose-smoke.sh)" >&2
        status=0
        if [[ $mode == secure ]]; then
            COMPOSE_SECURE=1 ./scripts/compose-smoke.sh || status=$?
        else
            ./scripts/compose-smoke.sh || status=$?
        fi
        if ((status == 0)); then
            smoke_passed=$((smoke_passed + 1))
            smoke_result+="$mode ok; "
        else
            smoke_failed=$((smoke_failed + 1))
            smoke_status=$status
            smoke_result+="$mode FAILED (exit $status); "
        fi
    done
    smoke_result=${smoke_result%; }
fi

echo "==> cargo test: $([[ $cargo_status == 0 ]] && echo ok || echo "FAILED (exit $cargo_status)"); compose smoke: $smoke_result" >&2
# The closing line: every cargo test plus each compose smoke test as one more.
echo "tests: $((passed + smoke_passed)) passed, $((failed + smoke_failed)) failed"
if ((cargo_status != 0)); then exit "$cargo_status"; fi
exit "$smoke_status"
