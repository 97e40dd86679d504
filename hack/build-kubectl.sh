#!/usr/bin/env bash
# Builds stock kubectl at the Kubernetes version skiff serves, for the e2e
# tests (test/e2e picks it up automatically), into
#   ${SKIFF_KUBECTL_CACHE:-$HOME/.cache/skiff/kubectl}/v1.37.2/kubectl
# An existing binary that reports the right version is reused.
#
# The source is upstream k8s.io/kubectl from the Go module proxy, built from
# the small tool module in hack/tools/kubectl (kept out of skiff's go.mod).
# A cold build takes about 10 minutes on 2 cores.
#
# Usage: hack/build-kubectl.sh [--force]
set -euo pipefail

KUBE_VERSION=v1.37.2
MAJOR=1
MINOR=37

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tool_dir="${root}/hack/tools/kubectl"
out_dir="${SKIFF_KUBECTL_CACHE:-${HOME}/.cache/skiff/kubectl}/${KUBE_VERSION}"
out="${out_dir}/kubectl"

force=false
case "${1:-}" in
  --force) force=true ;;
  "") ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

if ! $force && [[ -x "${out}" ]]; then
  if "${out}" version --client -o json 2>/dev/null | grep -q "\"gitVersion\": \"${KUBE_VERSION}\""; then
    echo "${out} (${KUBE_VERSION}) already built"
    exit 0
  fi
  echo "${out} exists but does not report ${KUBE_VERSION}; rebuilding" >&2
fi

# Stamp the version like upstream's hack/lib/version.sh: component-base's for
# `kubectl version`, client-go's for the User-Agent header.
ldflags=("-s" "-w")
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=(
    "-X ${pkg}.gitVersion=${KUBE_VERSION}"
    "-X ${pkg}.gitMajor=${MAJOR}"
    "-X ${pkg}.gitMinor=${MINOR}"
    "-X ${pkg}.gitTreeState=clean"
    "-X ${pkg}.buildDate=${build_date}"
  )
done

mkdir -p "${out_dir}"
tmp="$(mktemp "${out_dir}/kubectl.XXXXXX")"
trap 'rm -f "${tmp}"' EXIT

echo "building kubectl ${KUBE_VERSION} into ${out} (this takes several minutes)..."
start=$SECONDS
(
  cd "${tool_dir}"
  # -mod=readonly: go.mod and go.sum pin every module; nothing is resolved anew.
  CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "${ldflags[*]}" -o "${tmp}" .
)
"${tmp}" version --client -o json | grep -q "\"gitVersion\": \"${KUBE_VERSION}\"" || {
  echo "built kubectl does not report ${KUBE_VERSION}:" >&2
  "${tmp}" version --client >&2 || true
  exit 1
}
mv -f "${tmp}" "${out}"
trap - EXIT
echo "built ${out} in $((SECONDS - start))s"
