#!/usr/bin/env bash
# Starts a throwaway server (mock provider, temp database, free port), runs the given command
# with STACYVM_URL pointing at it, then stops the server and removes its files.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${STACYVM_BIN:-target/debug/stacyvm}
work=$(mktemp -d /tmp/stacyvm-test.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
STACYVM_PROVIDERS_DEFAULT=mock STACYVM_SERVER_HOST=127.0.0.1 STACYVM_SERVER_PORT=$port \
STACYVM_DATABASE_PATH=$work/stacyvm.db STACYVM_PROVIDERS_MOCK_ROOT_DIR=$work/mock \
  "$bin" serve >"$work/server.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/api/v1/health" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done
export STACYVM_URL=http://127.0.0.1:$port
status=0
"$@" || status=$?
if [[ $status -ne 0 ]]; then echo "--- server log" >&2; tail -n 50 "$work/server.log" >&2; fi
exit $status
