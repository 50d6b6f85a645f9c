#!/usr/bin/env bash
# Starts a throwaway server (temp database, free port), runs the given command with STACYVM_URL
# pointing at it, then stops the server and removes its files.
#
#   [STACYVM_TEST_SERVER_PROVIDER=mock|oci] scripts/with-server.sh COMMAND [ARGS...]
#
# mock (default): sandboxes are host directories under the temp dir.
# oci: real containers (crun) with the static agent; needs root, crun and the agent
#   ($STACYVM_AGENT_BIN, default target/agent/x86_64-unknown-linux-gnu/release/stacyvm-agent, built by
#   scripts/build-agent.sh). Nothing is pulled (pull policy `never`): before the server starts,
#   the cached Debian+python3 test rootfs (scripts/build-test-rootfs.sh) is imported into the
#   server's own image store as `python:3.12`, which is also the server's default image and
#   is exported to the command as STACYVM_TEST_IMAGE. On exit any sandbox still alive is destroyed
#   through the API, the server gets SIGTERM, and the script checks that no container, mount or
#   cgroup of this server remains (a leak is removed and fails the run).
#
# Environment: STACYVM_BIN (default target/debug/stacyvm), STACYVM_TEST_SERVER_PROVIDER,
# STACYVM_AGENT_BIN, STACYVM_TEST_CACHE / STACYVM_DEBIAN_MIRROR (rootfs cache and mirror).
# The cleanup functions run from the EXIT trap, which shellcheck does not follow.
# shellcheck disable=SC2317
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${STACYVM_BIN:-target/debug/stacyvm}
provider=${STACYVM_TEST_SERVER_PROVIDER:-mock}
test_image=python:3.12

case $provider in
mock | oci) ;;
*)
  echo "with-server: STACYVM_TEST_SERVER_PROVIDER must be mock or oci, not '$provider'" >&2
  exit 2
  ;;
esac

if [[ $provider == oci ]]; then
  agent=${STACYVM_AGENT_BIN:-target/agent/x86_64-unknown-linux-gnu/release/stacyvm-agent}
  [[ $(id -u) -eq 0 ]] || { echo "with-server: the oci provider needs root" >&2; exit 2; }
  command -v crun >/dev/null || { echo "with-server: crun is not installed" >&2; exit 2; }
  [[ -x $agent ]] || { echo "with-server: no agent at $agent (run scripts/build-agent.sh)" >&2; exit 2; }
  agent=$(realpath "$agent")
  # crun 1.8 refuses cgroup v1/v2 hybrid hosts while hugetlb sits on the cgroup2 mount
  # (HOST-NOTES); mounting hugetlb as a v1 hierarchy is the idempotent fix.
  if [[ -d /sys/fs/cgroup && $(stat -f -c %T /sys/fs/cgroup) != cgroup2fs ]]; then
    mountpoint -q /sys/fs/cgroup/hugetlb || {
      mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
    }
  fi
fi

work=$(mktemp -d /tmp/stacyvm-test.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# The server's configuration (kept out of the command's environment).
server_env=(STACYVM_SERVER_HOST=127.0.0.1 "STACYVM_SERVER_PORT=$port" "STACYVM_DATABASE_PATH=$work/stacyvm.db")
pid=

# Every live sandbox of this server, destroyed through the API (the suite destroys its own; this
# is the safety net for a crashed or interrupted run).
destroy_all_sandboxes() {
  local list ids id
  list=$(curl -fsS --max-time 30 "http://127.0.0.1:$port/api/v1/sandboxes" 2>/dev/null) || return 0
  ids=$(python3 -c 'import json, sys; print("\n".join(s["id"] for s in json.loads(sys.argv[1])))' "$list")
  for id in $ids; do
    echo "with-server: destroying leftover sandbox $id" >&2
    curl -fsS --max-time 60 -X DELETE "http://127.0.0.1:$port/api/v1/sandboxes/$id" >/dev/null || true
  done
}

stop_server() {
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "with-server: server did not stop within 30 s of SIGTERM; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  pid=
}

# Containers, mounts and cgroups of this oci server left on the host: printed, removed, and
# reported through the exit status.
oci_leaks() {
  local leaks=0 c m cg
  for c in $(crun --root "$work/oci/state" list -q 2>/dev/null || true); do
    echo "with-server: LEAK container $c" >&2
    crun --root "$work/oci/state" delete -f "$c" >/dev/null 2>&1 || true
    leaks=1
  done
  # Innermost first (the sandbox rootfs overlays sit on nothing else of ours, but be safe).
  while read -r m; do
    [[ -n $m ]] || continue
    echo "with-server: LEAK mount $m" >&2
    umount -l "$m" 2>/dev/null || true
    leaks=1
  done < <(awk -v w="$work" 'index($2, w) == 1 {print $2}' /proc/self/mounts | sort -r)
  for cg in /sys/fs/cgroup/stacyvm/"$instance" /sys/fs/cgroup/*/stacyvm/"$instance"; do
    [[ -d $cg ]] || continue
    # Sandbox cgroups below the instance parent are leaks; the empty parent itself is ours to drop.
    while read -r c; do
      echo "with-server: LEAK cgroup $c" >&2
      while read -r p; do kill -KILL "$p" 2>/dev/null || true; done <"$c/cgroup.procs"
      rmdir "$c" 2>/dev/null || true
      leaks=1
    done < <(find "$cg" -mindepth 1 -maxdepth 1 -type d)
    rmdir "$cg" 2>/dev/null || true
  done
  return "$leaks"
}

cleanup() {
  local rc=$? leak=0
  if [[ $provider == oci ]]; then destroy_all_sandboxes; fi
  stop_server
  if [[ $provider == oci ]]; then oci_leaks || leak=1; fi
  rm -rf "$work"
  if ((leak && rc == 0)); then
    echo "with-server: the oci server left containers, mounts or cgroups behind" >&2
    rc=1
  fi
  exit "$rc"
}
trap cleanup EXIT

if [[ $provider == oci ]]; then
  mkdir -p "$work/oci"
  server_env+=(STACYVM_PROVIDERS_DEFAULT=oci "STACYVM_PROVIDERS_OCI_DATA_DIR=$work/oci"
    "STACYVM_PROVIDERS_OCI_AGENT_PATH=$agent" STACYVM_PROVIDERS_OCI_PULL_POLICY=never
    "STACYVM_DEFAULTS_IMAGE=$test_image")
  # The provider's cgroup parent is /stacyvm/<instance>: 12 hex digits of the 64-bit FNV-1a hash
  # of the canonical data dir, shifted right by 16 (stacyvm-provider-oci/src/instance.rs).
  instance=$(python3 -c 'import os, sys
h = 0xcbf29ce484222325
for b in os.fsencode(os.path.realpath(sys.argv[1])):
    h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
print(f"{h >> 16:012x}")' "$work/oci")
  rootfs=$(scripts/build-test-rootfs.sh python)
  echo "with-server: importing $rootfs as $test_image" >&2
  tar -C "$rootfs" -cf "$work/python.tar" .
  env "${server_env[@]}" "$bin" build-image "$test_image" --from "$work/python.tar" >&2
  rm -f "$work/python.tar"
  export STACYVM_TEST_IMAGE=$test_image
else
  server_env+=(STACYVM_PROVIDERS_DEFAULT=mock "STACYVM_PROVIDERS_MOCK_ROOT_DIR=$work/mock")
fi

env "${server_env[@]}" "$bin" serve >"$work/server.log" 2>&1 &
pid=$!
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
