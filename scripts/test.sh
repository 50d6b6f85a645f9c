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
echo "== all tests passed"
