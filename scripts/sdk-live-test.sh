#!/usr/bin/env bash
# Run the live Python SDK suite (tests/sdk) against an already running StacyVM server.
#
#   STACYVM_URL=http://127.0.0.1:7423 scripts/sdk-live-test.sh [extra pytest args...]
#
# The server must already be running (this script never starts one); scripts/with-server.sh
# starts a throwaway one (mock, or oci with STACYVM_TEST_SERVER_PROVIDER=oci). A virtualenv with the pinned published SDK (stacyvm==0.1.1) is
# created under ${TMPDIR:-/tmp} and reused while tests/sdk/requirements.txt is unchanged.
#
# Environment:
#   STACYVM_URL            required, base URL of the server
#   STACYVM_TEST_PROVIDER  optional, provider name sent on every spawn
#   STACYVM_TEST_IMAGE     optional, image of spawns that name none (default: the SDK's alpine:latest)
#   PYTHON                 optional, interpreter used to create the venv (default: python3, >= 3.10)
#   SDK_TEST_VENV          optional, venv location (default: ${TMPDIR:-/tmp}/stacyvm-sdk-live-venv)
set -euo pipefail

if [[ -z "${STACYVM_URL:-}" ]]; then
    echo "error: STACYVM_URL is not set." >&2
    echo "Start the server first, then run e.g.:" >&2
    echo "  STACYVM_URL=http://127.0.0.1:7423 $0" >&2
    exit 2
fi

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sdk_dir="$repo_root/tests/sdk"
requirements="$sdk_dir/requirements.txt"
python="${PYTHON:-python3}"
venv="${SDK_TEST_VENV:-${TMPDIR:-/tmp}/stacyvm-sdk-live-venv}"

if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
    echo "error: $python is missing or older than Python 3.10 (needed by the pinned pytest)." >&2
    exit 2
fi

if [[ ! -x "$venv/bin/python" ]]; then
    echo "==> creating venv $venv"
    "$python" -m venv "$venv"
fi

# Reinstall only when the requirements changed since the last successful install.
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
    echo "==> installing $requirements"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" >"$stamp"
fi

echo "==> stacyvm SDK $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("stacyvm"))') against $STACYVM_URL"
cd "$repo_root"
export STACYVM_URL
exec "$venv/bin/python" -m pytest "$sdk_dir" -p no:cacheprovider -ra "$@"
