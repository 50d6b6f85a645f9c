#!/usr/bin/env bash
# Benchmarks StacyVM over real HTTP against a throwaway server, next to the same work done
# without StacyVM (fork+exec, sh -c, crun, docker), and prints a markdown report.
#
#   scripts/bench.sh [stacyvm-bench options]     e.g. scripts/bench.sh -n 1000 -d 10 --json
#   BENCH_PROVIDER=oci scripts/bench.sh --density 1000     (make bench-oci)
#   make bench
#
# BENCH_PROVIDER: mock (default) or oci (real crun containers, the locally built python:3.12
# test image; see scripts/with-server.sh).
# As root on Debian it installs the optional peers (wrk, crun, busybox-static) when missing;
# BENCH_INSTALL=0 turns that off, and missing peers are then reported as skipped.
# BENCH_DOCKER=1 (default when dockerd is installed and no daemon answers) starts a private
# dockerd for the docker peers (temp data root, no iptables, no bridge: the peers use
# --network none), imports a static busybox image into it, and stops it afterwards.
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

# A private Docker daemon for the docker peers, when none is running.
docker_dir=
stop_docker() {
  [[ -n $docker_dir ]] || return 0
  [[ -f $docker_dir/pid ]] && kill "$(cat "$docker_dir/pid")" 2>/dev/null || true
  for _ in $(seq 1 100); do [[ -f $docker_dir/pid ]] && kill -0 "$(cat "$docker_dir/pid")" 2>/dev/null || break; sleep 0.1; done
  umount -R "$docker_dir/root" 2>/dev/null || true
  rm -rf "$docker_dir"
}
trap stop_docker EXIT
if [[ ${BENCH_DOCKER:-1} == 1 && $(id -u) -eq 0 ]] && command -v dockerd >/dev/null \
  && ! docker version >/dev/null 2>&1; then
  docker_dir=$(mktemp -d /tmp/stacyvm-bench-docker.XXXXXX)
  export DOCKER_HOST=unix://$docker_dir/docker.sock
  dockerd --data-root "$docker_dir/root" --exec-root "$docker_dir/exec" --pidfile "$docker_dir/pid" \
    -H "$DOCKER_HOST" --iptables=false --ip6tables=false --bridge=none >"$docker_dir/dockerd.log" 2>&1 &
  for _ in $(seq 1 150); do docker version >/dev/null 2>&1 && break; sleep 0.2; done
  if docker version >/dev/null 2>&1; then
    rootfs=$docker_dir/busybox
    mkdir -p "$rootfs/bin" "$rootfs/tmp"
    cp /bin/busybox "$rootfs/bin/busybox"
    for a in sh true sleep; do ln -sf busybox "$rootfs/bin/$a"; done
    tar -C "$rootfs" -c . | docker import - busybox >/dev/null
  else
    echo "bench: the private dockerd did not start (see $docker_dir/dockerd.log); docker peers skipped" >&2
  fi
fi

cargo build --release --locked -p stacyvm -p stacyvm-bench >&2
if [[ ${BENCH_PROVIDER:-mock} == oci ]]; then
  [[ -x target/agent/x86_64-unknown-linux-gnu/release/stacyvm-agent ]] || scripts/build-agent.sh >&2
fi
STACYVM_TEST_SERVER_PROVIDER=${BENCH_PROVIDER:-mock} STACYVM_BIN=target/release/stacyvm \
  scripts/with-server.sh target/release/stacyvm-bench "$@"
