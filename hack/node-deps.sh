#!/usr/bin/env bash
# Installs what a real node (and its tests) needs on Debian, when missing:
# containerd, runc, the CNI plugins and iptables; for the tests also
# busybox-static, bash-static, skopeo, docker-registry, conntrack, nftables and ipset. Prints
# one line.
# Never fails the caller: without root (or on another distribution) it says
# what is missing and exits 0, and the tests needing it skip.
set -uo pipefail

packages=(containerd runc containernetworking-plugins iptables busybox-static bash-static skopeo docker-registry conntrack nftables ipset)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "node-deps: not Debian (no dpkg-query); a node needs: ${packages[*]}"
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "node-deps: all present (${packages[*]})"
  exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
  echo "node-deps: missing ${missing[*]} (not root: not installing; tests that need them skip)"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
install() { apt-get install -y --no-install-recommends "${missing[@]}" >>"$log" 2>&1; }
# The package lists may be stale or absent: update only when needed.
if install || { apt-get update >>"$log" 2>&1 && install; }; then
  echo "node-deps: installed ${missing[*]}"
else
  echo "node-deps: could not install ${missing[*]} (tests that need them skip): $(tail -n 1 "$log")"
fi
exit 0
