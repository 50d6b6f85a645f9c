#!/usr/bin/env bash
# Builds (once) and prints the path of a cached test root filesystem. The single implementation
# behind the Rust testkit's `python_rootfs()` (crates/stacyvm-testkit/src/python.rs) and the
# oci run of the live SDK suite (scripts/with-server.sh).
#
#   scripts/build-test-rootfs.sh python [CACHE_DIR]
#
# `python`: Debian bookworm minbase + python3 (`mmdebstrap --variant=minbase --include=python3`),
# plus a `user` (uid/gid 1000, home /workspace) and /workspace owned by 1000:1000. Cached as
# CACHE_DIR/python-rootfs (CACHE_DIR default: $STACYVM_TEST_CACHE, else /var/cache/stacyvm-test).
# The first build takes 20-60 s and needs root, mmdebstrap and the Debian mirror
# ($STACYVM_DEBIAN_MIRROR, default http://deb.debian.org/debian). It runs under an exclusive
# flock on CACHE_DIR/python-rootfs.lock into a temporary sibling that is renamed into place only
# when complete, so concurrent callers and interrupted builds never see a partial tree. Delete the
# directory to force a rebuild. Treat the tree as read-only.
#
# Prints the rootfs path on stdout; on failure prints the reason (with mmdebstrap's stderr) on
# stderr and exits 1.
set -euo pipefail

kind=${1:-}
if [[ $kind != python ]]; then
    echo "usage: $0 python [CACHE_DIR]" >&2
    exit 2
fi
cache=${2:-${STACYVM_TEST_CACHE:-/var/cache/stacyvm-test}}
mirror=${STACYVM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
rootfs=$cache/python-rootfs

is_built() { [[ -e $rootfs/usr/bin/python3 ]]; }

if is_built; then
    echo "$rootfs"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "building the python rootfs with mmdebstrap needs root" >&2
    exit 1
fi
if ! command -v mmdebstrap >/dev/null 2>&1; then
    echo "mmdebstrap is not installed (apt-get install mmdebstrap)" >&2
    exit 1
fi
mkdir -p "$cache"
exec 9>"$cache/python-rootfs.lock"
flock 9
if is_built; then # another process built it while we waited
    echo "$rootfs"
    exit 0
fi
rm -rf "$cache"/python-rootfs.tmp-* # left by interrupted builds (we hold the lock)
staging=$cache/python-rootfs.tmp-$$
log=$(mktemp)
trap 'rm -rf "$staging" "$log"' EXIT
if ! mmdebstrap --variant=minbase --include=python3 bookworm "$staging" "$mirror" >"$log" 2>&1; then
    echo "\`mmdebstrap --variant=minbase --include=python3 bookworm $staging $mirror\` failed:" >&2
    cat "$log" >&2
    exit 1
fi
echo "user:x:1000:1000::/workspace:/bin/sh" >>"$staging/etc/passwd"
echo "user:x:1000:" >>"$staging/etc/group"
mkdir -p "$staging/workspace"
chown 1000:1000 "$staging/workspace"
mv -T "$staging" "$rootfs"
echo "$rootfs"
