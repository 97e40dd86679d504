#!/usr/bin/env bash
# Builds the upstream Kubernetes v1.37.2 binaries skiff is measured against:
# e2e.test (the conformance suite), kube-apiserver, kube-scheduler,
# kube-controller-manager, kubelet and kube-proxy, from the tool module hack/tools/upstream (the Go
# module proxy serves k8s.io/kubernetes; staging modules are replaced by their
# v0.37.2 releases). Output:
#   ${SKIFF_UPSTREAM_CACHE:-$HOME/.cache/skiff/upstream}/v1.37.2/<binary>
# Binaries already there are reused. Cold, e2e.test takes ~30 minutes and
# ~3.5 GB of memory on 2 cores; with its build cache warm the others take
# about a minute each.
#
# kubelet and kube-proxy are built only when asked for (hack/bench
# --scenarios kubelet, --scenarios proxy).
#
# Usage: hack/upstream.sh [--force] [binary...]   (default: all but kubelet and kube-proxy)
#        hack/upstream.sh --print-dir
set -euo pipefail

KUBE_VERSION=v1.37.2
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${SKIFF_UPSTREAM_CACHE:-$HOME/.cache/skiff/upstream}/${KUBE_VERSION}"

force=false
wanted=()
for arg in "$@"; do
  case "$arg" in
    --force) force=true ;;
    --print-dir) echo "$out"; exit 0 ;;
    e2e.test|kube-apiserver|kube-scheduler|kube-controller-manager|kubelet|kube-proxy) wanted+=("$arg") ;;
    *) echo "usage: $0 [--force] [e2e.test|kube-apiserver|kube-scheduler|kube-controller-manager|kubelet|kube-proxy]..." >&2; exit 2 ;;
  esac
done
[[ ${#wanted[@]} -gt 0 ]] || wanted=(kube-apiserver kube-scheduler kube-controller-manager e2e.test)

mkdir -p "$out"
# One build at a time per cache: a second run waits, then reuses what the
# first built.
exec 9>"$out/.lock"
if ! flock -n 9; then
  echo "waiting for another hack/upstream.sh building into $out"
  flock 9
fi
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${KUBE_VERSION}
 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37
 -X k8s.io/component-base/version.gitTreeState=clean
 -X k8s.io/client-go/pkg/version.gitVersion=${KUBE_VERSION}
 -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=37"

# progress prints a line a minute while a build runs; it sleeps in short
# steps so that, once killed, no stray sleep holds the output open.
progress() {
  local what=$1 start=$2 n=0
  while sleep 1; do
    (( ++n % 60 == 0 )) && echo "  ... still building ${what}: $(( ($(date +%s) - start) / 60 )) min so far"
  done
}
# A failed build ends the script (set -e): stop the progress loop too.
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT

build() {
  local bin=$1
  if ! $force && [[ -x "$out/$bin" ]]; then
    echo "reusing $out/$bin"
    return
  fi
  local start pid tmp
  start=$(date +%s)
  tmp="$out/$bin.tmp.$$"
  echo "building $bin ${KUBE_VERSION} into $out (cold: tens of minutes on 2 cores)"
  progress "$bin" "$start" &
  pid=$!
  trap 'kill $pid 2>/dev/null; rm -f "$tmp"' RETURN
  (
    cd "$root/hack/tools/upstream"
    if [[ $bin == e2e.test ]]; then
      # -vet=off: otherwise go test vets every dependency.
      go test -c -vet=off -ldflags "$ldflags" -o "$tmp" k8s.io/kubernetes/test/e2e
    else
      go build -ldflags "$ldflags" -o "$tmp" "k8s.io/kubernetes/cmd/$bin"
    fi
  )
  mv "$tmp" "$out/$bin"
  echo "built $out/$bin in $(( $(date +%s) - start ))s"
}

for bin in "${wanted[@]}"; do
  build "$bin"
done
