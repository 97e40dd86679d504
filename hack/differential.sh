#!/usr/bin/env bash
# Differential tests: the same requests to skiff and to upstream
# kube-apiserver v1.37.2, answers compared (test/differential). Builds
# kube-apiserver with hack/upstream.sh when it is not in the cache yet (cold:
# tens of minutes), runs the test, then prints the per-type summary again.
#
# Usage: hack/differential.sh [go test flags...]   e.g. -run 'TestDifferential/pods'
# Env:   SKIFF_BIN (prebuilt skiff), SKIFF_UPSTREAM_CACHE, DIFF_REPORT, DIFF_TRACE
#        (see test/differential/doc.go)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [[ ! -x "$(hack/upstream.sh --print-dir)/kube-apiserver" ]]; then
  hack/upstream.sh kube-apiserver
fi

log="$(mktemp -t differential.XXXXXX.log)"
set +e
go test -count=1 -v -timeout 30m ./test/differential/ "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

echo
sed -n '/^differential summary/,/^| \*\*total/p' "$log"
sed -n '/^skiff serves types without cases/p' "$log"
if [[ $status -ne 0 ]]; then
  echo "FAIL: differences not in test/differential/KNOWN.md (or a broken case); full log: $log"
  # Each failing op with its differences (the indented lines below it).
  awk '/differential_test.go:[0-9]+: .*(skiff differs|corpus:)/ {p=1; print; next}
       p && /^      +[^ ]/ && !/differential_test.go/ {print; next} {p=0}' "$log"
else
  rm -f "$log"
fi
exit "$status"
