#!/usr/bin/env bash
# Builds CoreDNS v1.15.0 (this tool module: kubeadm's default plugins only)
# for hack/bench --scenarios dns. Output:
#   ${SKIFF_UPSTREAM_CACHE:-$HOME/.cache/skiff/upstream}/coredns-v1.15.0/coredns
# An existing binary is reused unless --force. About a minute on 2 cores
# once the modules are downloaded (from the Go module proxy).
#
# Usage: hack/tools/coredns/build.sh [--force] | --print-path
set -euo pipefail

COREDNS_VERSION=v1.15.0
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${SKIFF_UPSTREAM_CACHE:-$HOME/.cache/skiff/upstream}/coredns-${COREDNS_VERSION}"
bin="$out/coredns"

force=false
for arg in "$@"; do
  case "$arg" in
    --force) force=true ;;
    --print-path) echo "$bin"; exit 0 ;;
    *) echo "usage: $0 [--force] | --print-path" >&2; exit 2 ;;
  esac
done
if ! $force && [[ -x "$bin" ]]; then
  echo "reusing $bin"
  exit 0
fi
mkdir -p "$out"
tmp="$bin.tmp.$$"
trap 'rm -f "$tmp"' EXIT
start=$(date +%s)
echo "building coredns ${COREDNS_VERSION} into $out"
# CoreDNS's own version stamp (coremain.GitCommit) is left empty.
(cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp" .)
mv "$tmp" "$bin"
echo "built $bin in $(( $(date +%s) - start ))s"
