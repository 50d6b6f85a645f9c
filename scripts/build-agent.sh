#!/usr/bin/env bash
# Builds the in-sandbox agent as a fully static binary (glibc with crt-static; the musl target
# is not available here) and prints its path. `--target` keeps the static flag away from build
# scripts and proc-macros.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
RUSTFLAGS="-C target-feature=+crt-static -C strip=symbols" cargo build --release --locked -p stacyvm-agent \
  --target "$target" --target-dir target/agent >&2
bin=target/agent/$target/release/stacyvm-agent
ldd "$bin" 2>&1 | grep -qE "not a dynamic|statically linked" || { echo "build-agent: $bin is not static" >&2; exit 1; }
echo "$bin"
