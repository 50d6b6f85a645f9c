#!/usr/bin/env bash
# Benchmarks StacyVM over real HTTP against a throwaway server on the mock provider, next to the
# same work done without StacyVM (fork+exec, sh -c, crun, docker), and prints a markdown report.
#
#   scripts/bench.sh [stacyvm-bench options]     e.g. scripts/bench.sh -n 1000 -d 10 --json
#   make bench
#
# As root on Debian it installs the optional peers (wrk, crun, busybox-static) when missing;
# BENCH_INSTALL=0 turns that off, and missing peers are then reported as skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ${BENCH_INSTALL:-1} != 0 && $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  need=()
  command -v wrk >/dev/null || need+=(wrk)
  command -v crun >/dev/null || need+=(crun)
  [[ -x /bin/busybox ]] || need+=(busybox-static)
  if ((${#need[@]})); then
    echo "bench: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "${need[@]}" >/dev/null 2>&1; } \
      || echo "bench: could not install ${need[*]}; those peers will be skipped" >&2
  fi
fi

# crun 1.8 refuses cgroup v1/v2 hybrid hosts while hugetlb sits on the cgroup2 mount
# (HOST-NOTES); mounting hugetlb as a v1 hierarchy is the idempotent fix.
if command -v crun >/dev/null && [[ $(id -u) -eq 0 && -d /sys/fs/cgroup ]] \
  && [[ $(stat -f -c %T /sys/fs/cgroup) != cgroup2fs ]]; then
  mountpoint -q /sys/fs/cgroup/hugetlb || {
    mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
  } || echo "bench: could not mount the hugetlb cgroup; crun may be skipped" >&2
fi

cargo build --release --locked -p stacyvm -p stacyvm-bench >&2
STACYVM_BIN=target/release/stacyvm scripts/with-server.sh target/release/stacyvm-bench "$@"
