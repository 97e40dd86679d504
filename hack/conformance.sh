#!/usr/bin/env bash
# Runs the upstream v1.37.2 conformance suite (e2e.test, built by
# hack/upstream.sh) against skiff and prints "N passed, M failed, K skipped"
# with counts per SIG. Specs listed in hack/conformance/skip-*.txt are skipped;
# each line there names the capability the spec waits for.
#
# Usage:
#   hack/conformance.sh --list                 print the specs that would run
#   hack/conformance.sh [--kubeconfig FILE] [--focus REGEX] [--report-dir DIR]
# Without --kubeconfig it starts its own `skiff server` in a temporary dir.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

list=false kubeconfig="" focus='\[Conformance\]' report_dir=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --list) list=true ;;
    --kubeconfig) kubeconfig=$2; shift ;;
    --focus) focus=$2; shift ;;
    --report-dir) report_dir=$2; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

bash hack/upstream.sh e2e.test >&2
e2e="$(bash hack/upstream.sh --print-dir)/e2e.test"

# One skip regex from every skip list: each spec name, regex-escaped.
skip_regex=$(grep -hv '^#' hack/conformance/skip-*.txt | sed 's/ | .*$//' |
  sed -e 's/[][\.*^$(){}+?|/]/\\&/g' | paste -sd'|' -)

if $list; then
  "$e2e" --list-conformance-tests >/dev/null 2>&1 || true
  "$e2e" --ginkgo.dry-run --ginkgo.v --ginkgo.no-color --ginkgo.focus="$focus" --ginkgo.skip="$skip_regex" \
      --kubeconfig=/dev/null 2>/dev/null |
    grep -oE '^\[sig-[a-z-]+\].*\[Conformance\]' | sort -u
  echo "skipped by hack/conformance/skip-*.txt: $(grep -hv "^#" hack/conformance/skip-*.txt | wc -l) specs" >&2
  exit 0
fi

work=$(mktemp -d)
report_dir=${report_dir:-$root/_output/conformance}
mkdir -p "$report_dir"
server_pid=""
cleanup() {
  if [[ -n $server_pid ]]; then kill -TERM "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [[ -z $kubeconfig ]]; then
  bash hack/build.sh "$work/skiff"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$work/skiff" server --data-dir "$work/data" --secure-port "$port" --bind-address 127.0.0.1 \
    >"$work/server.out" 2>"$work/server.log" &
  server_pid=$!
  for _ in $(seq 120); do grep -q KUBECONFIG= "$work/server.out" 2>/dev/null && break; sleep 0.5; done
  grep -q KUBECONFIG= "$work/server.out" || { echo "skiff did not become ready:"; tail -20 "$work/server.log"; exit 1; }
  kubeconfig="$work/data/admin.kubeconfig"
fi

echo "running conformance specs against $(grep -m1 server: "$kubeconfig" | awk '{print $2}'); report in $report_dir"
start=$(date +%s)
# skeleton provider and no node checks: skiff runs no kubelet yet.
"$e2e" --kubeconfig="$kubeconfig" --provider=skeleton --num-nodes=1 --allowed-not-ready-nodes=-1 \
  --e2e-verify-service-account=false --report-dir="$report_dir" \
  --ginkgo.focus="$focus" --ginkgo.skip="$skip_regex" --ginkgo.no-color --ginkgo.v --ginkgo.timeout=2h \
  >"$report_dir/e2e.log" 2>&1 || true
echo "e2e.test finished in $(( $(date +%s) - start ))s (log: $report_dir/e2e.log)"
junit=$(ls "$report_dir"/junit*.xml 2>/dev/null | head -1)
[[ -n $junit ]] || { echo "no JUnit report written; see $report_dir/e2e.log"; tail -30 "$report_dir/e2e.log"; exit 1; }
go run ./hack/conformance/summary "$junit"
