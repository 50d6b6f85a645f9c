#!/usr/bin/env bash
# Installs the system packages StacyVM and its tests need on Debian 12 (idempotent).
set -euo pipefail
need=()
command -v cc >/dev/null || need+=(gcc)
command -v python3 >/dev/null || need+=(python3)
python3 -m venv --help >/dev/null 2>&1 || need+=(python3-venv)
command -v curl >/dev/null || need+=(curl)
# OCI runtimes and a static busybox for the sandbox tests (crun is the default runtime).
for pkg in crun runc runsc; do command -v "$pkg" >/dev/null || [[ -x /usr/sbin/$pkg ]] || need+=("$pkg"); done
[[ -x /bin/busybox ]] && ldd /bin/busybox 2>&1 | grep -q "not a dynamic" || need+=(busybox-static)
# Image fixtures of stacyvm-testkit: a local registry, image build/copy tools, Debian rootfs builds.
for pkg in docker-registry skopeo umoci mmdebstrap; do command -v "$pkg" >/dev/null || need+=("$pkg"); done
# Bridge networking of oci sandboxes (ip, nft) and its Docker-coexistence test (dockerd, iptables).
for tool in ip:iproute2 nft:nftables iptables:iptables dockerd:docker.io; do
  command -v "${tool%%:*}" >/dev/null || [[ -x /usr/sbin/${tool%%:*} ]] || need+=("${tool#*:}")
done
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then echo "setup: please install: ${need[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo is required (https://rustup.rs)" >&2; exit 1; }
