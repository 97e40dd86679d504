#!/usr/bin/env bash
# Builds skiff into bin/skiff (or $1) with /version's gitCommit,
# gitTreeState and buildDate stamped from git and the clock, as upstream's
# hack/lib/version.sh stamps them (SOURCE_DATE_EPOCH fixes the date).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-bin/skiff}"
pkg=github.com/skiff-dev/skiff/pkg/version
ldflags=()
if commit=$(git rev-parse HEAD 2>/dev/null); then
  tree=clean
  [[ -n "$(git status --porcelain 2>/dev/null)" ]] && tree=dirty
  ldflags+=(-X "${pkg}.GitCommit=${commit}" -X "${pkg}.GitTreeState=${tree}")
fi
ldflags+=(-X "${pkg}.BuildDate=$(date ${SOURCE_DATE_EPOCH:+--date=@${SOURCE_DATE_EPOCH}} -u +%Y-%m-%dT%H:%M:%SZ)")
go build -ldflags "${ldflags[*]}" -o "${out}" ./cmd/skiff
# The sandbox image's pause, next to skiff: a node whose runtime lacks the
# image builds it from this binary (no registry needed).
CGO_ENABLED=0 go build -ldflags "-s -w" -o "$(dirname "${out}")/pause" ./cmd/pause
