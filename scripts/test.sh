#!/usr/bin/env bash
# The whole test suite: lint, unit and integration tests, then the live SDK suite against a
# real server. This is what `make test` and CI run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# In CI every runtime test must really run: a missing runtime fails instead of skipping.
if [[ ${CI:-} == true ]]; then export STACYVM_REQUIRE_RUNTIMES=1; fi
echo "== fmt and clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== static agent (bind-mounted into oci sandboxes by the tests)"
STACYVM_AGENT_BIN=$(pwd)/$(scripts/build-agent.sh)
export STACYVM_AGENT_BIN
echo "== cargo tests"
cargo test --workspace --locked
echo "== live SDK suite (published stacyvm==0.1.1 against a real server)"
cargo build --locked -p stacyvm
scripts/with-server.sh scripts/sdk-live-test.sh -q
echo "== live SDK suite against an oci server (real containers, locally built python:3.12)"
# Needs root, crun, the agent and the cached Debian+python3 rootfs; without them it is skipped,
# except in CI (STACYVM_REQUIRE_RUNTIMES=1), where a missing piece fails the run.
why=
if [[ $(id -u) -ne 0 ]]; then why="not root"
elif ! command -v crun >/dev/null; then why="crun is not installed"
elif [[ ! -x $STACYVM_AGENT_BIN ]]; then why="no agent at $STACYVM_AGENT_BIN"
elif ! scripts/build-test-rootfs.sh python >/dev/null; then why="the python test rootfs could not be built"
fi
if [[ -z $why ]]; then
  STACYVM_TEST_SERVER_PROVIDER=oci scripts/with-server.sh scripts/sdk-live-test.sh -q
elif [[ ${STACYVM_REQUIRE_RUNTIMES:-} == 1 ]]; then
  echo "STACYVM_REQUIRE_RUNTIMES=1 but the oci SDK run cannot start: $why" >&2
  exit 1
else
  echo "SKIPPED: live SDK suite on oci: $why"
fi
echo "== all tests passed"
