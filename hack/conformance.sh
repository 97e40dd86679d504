#!/usr/bin/env bash
# Runs the upstream v1.37.2 conformance suite (e2e.test, built by
# hack/upstream.sh) against skiff and prints "N passed, M failed, K skipped"
# with counts per SIG and the failed specs with their failure. Specs listed in
# hack/conformance/skip-*.txt are skipped; each line there names the
# capability the spec waits for.
#
# Usage:
#   hack/conformance.sh --list [--skipped-only]   print the specs that would run
#   hack/conformance.sh [options]
# Options:
#   --kubeconfig FILE  test this cluster; without it the script starts its own
#                      `skiff server` in a temporary dir (built by hack/build.sh,
#                      or the binary given with --skiff BIN)
#   --skiff BIN        the skiff binary to start (default: build one)
#   --kubectl PATH     the kubectl the specs call (passed as --kubectl-path);
#                      default $KUBECTL, else hack/build-kubectl.sh's
#                      ~/.cache/skiff/kubectl/v1.37.2/kubectl, else the newest
#                      /usr/lib/google-cloud-sdk/bin/kubectl.1.*, else kubectl on PATH
#   --focus REGEX      only the specs matching REGEX (default '\[Conformance\]')
#   --nodes N          simulated nodes next to the server started here (skiff
#                      agent --simulate N; 0 for none): pods get bound and go
#                      Running, but no container runs. Default: 0 when the
#                      server can run its local node (root, containerd), else 3
#   --local-node       (the default as root with containerd installed) the
#                      server started here runs its local node on containerd:
#                      real pods, with the images of hack/images.sh --all
#                      (_output/images) imported and pushed to a local
#                      registry (hack/images.sh --registry) that the node's
#                      containerd mirrors registry.k8s.io from; the "needs a
#                      kubelet" skip list is not applied
#   --no-local-node    simulated nodes only (the server gets --disable-agent)
#   --skipped-only     run exactly the specs of the skip lists (those matching
#                      --focus, if given), print those that
#                      pass now ("remove from the skip list"); exits 1 if any
#                      passes or did not run (the lists are stale), 0 if every
#                      one failed as the lists say (a spec whose reason starts
#                      "passes vacuously" may pass: it stays listed)
#   --procs N          N parallel processes (the ginkgo CLI v2.32.0, e.g.
#                      `go install github.com/onsi/ginkgo/v2/ginkgo@v2.32.0`, or
#                      $GINKGO); [Serial] specs then run afterwards, one at a time
#   --serial MODE      all (default): every spec; skip: leave out [Serial] specs;
#                      only: run only the [Serial] specs
#   --timeout DUR      ginkgo's suite timeout (default 2h, 8h with --skipped-only)
#   --report-dir DIR   JUnit, e2e and server logs (default _output/conformance)
#
# Exit status: 0 only if every spec that ran passed (with --skipped-only: if
# every spec failed), 1 otherwise; a run cut short by e2e.test or ginkgo
# (timeout, crash, no JUnit report) is never 0. The summary is printed anyway.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

list=false kubeconfig="" focus='\[Conformance\]' report_dir="" skiff_bin="" kubectl=""
skipped_only=false procs=1 serial=all timeout="" nodes="" focus_given=false local_node=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --list) list=true ;;
    --kubeconfig) kubeconfig=$2; shift ;;
    --skiff) skiff_bin=$2; shift ;;
    --kubectl) kubectl=$2; shift ;;
    --focus) focus=$2; focus_given=true; shift ;;
    --nodes) nodes=$2; shift ;;
    --local-node) local_node=true ;;
    --no-local-node) local_node=false ;;
    --skipped-only) skipped_only=true ;;
    --procs) procs=$2; shift ;;
    --serial) serial=$2; shift ;;
    --timeout) timeout=$2; shift ;;
    --report-dir) report_dir=$2; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [[ -z $local_node ]]; then
  local_node=false
  [[ -z $kubeconfig && $(id -u) == 0 ]] && command -v containerd >/dev/null && command -v runc >/dev/null && local_node=true
fi
[[ -n $nodes ]] || { $local_node && nodes=0 || nodes=3; }
[[ $nodes =~ ^[0-9]+$ ]] || { echo "--nodes wants a number, not $nodes" >&2; exit 2; }
[[ $procs =~ ^[1-9][0-9]*$ ]] || { echo "--procs wants a positive number, not $procs" >&2; exit 2; }
case "$serial" in all|skip|only) ;; *) echo "--serial wants all, skip or only, not $serial" >&2; exit 2 ;; esac
timeout=${timeout:-$($skipped_only && echo 8h || echo 2h)}

bash hack/upstream.sh e2e.test >&2
e2e="$(bash hack/upstream.sh --print-dir)/e2e.test"

# The skip-listed spec names, and one regex matching exactly them: ginkgo
# matches "<suite description> <spec text>", so each name is anchored between
# a space and the end.
skip_lists=(hack/conformance/skip-*.txt)
# With real pods, the specs that wait for a kubelet run.
$local_node && skip_lists=($(ls hack/conformance/skip-*.txt | grep -v skip-needs-kubelet.txt))
skipped_names=$(grep -hv '^#' "${skip_lists[@]}" | sed 's/ | .*$//' | sed '/^$/d')
# --skipped-only --focus R: the skip-listed specs matching R.
if $skipped_only && $focus_given; then
  skipped_names=$(grep -E -- "$focus" <<<"$skipped_names" || true)
  [[ -n $skipped_names ]] || { echo "no skip-listed spec matches --focus $focus" >&2; exit 2; }
fi
# shellcheck disable=SC2016 # a sed script, not a shell expansion
skip_regex=" ($(sed -e 's/[][\.*^$(){}+?|/]/\\&/g' <<<"$skipped_names" | paste -sd'|' -))\$"
if $skipped_only; then
  focus_regex=$skip_regex skip_args=()
else
  focus_regex=$focus skip_args=(--skip="$skip_regex")
fi

if $list; then
  # Dry-run lines are "<spec text> [<labels>]".
  "$e2e" --ginkgo.dry-run --ginkgo.v --ginkgo.no-color --ginkgo.focus="$focus_regex" \
      ${skip_args[@]+"${skip_args[@]/#--/--ginkgo.}"} --kubeconfig=/dev/null 2>/dev/null |
    grep -E '^\[sig-[a-z-]+\].*\[Conformance\]' | sed -E 's/ \[[^]]*, [^]]*\]$//' | sort -u
  echo "skipped by hack/conformance/skip-*.txt: $(wc -l <<<"$skipped_names") specs" >&2
  exit 0
fi

# kubectl, found as skiff's own e2e tests find it.
if [[ -z $kubectl ]]; then
  kubectl=${KUBECTL:-}; kubectl=${kubectl%%,*}
fi
if [[ -z $kubectl ]]; then
  for k in "${SKIFF_KUBECTL_CACHE:-$HOME/.cache/skiff/kubectl}/v1.37.2/kubectl" \
      /usr/lib/google-cloud-sdk/bin/kubectl.1.{39,38,37,36,35,34,33,32,31,30,29,28,27}; do
    [[ -x $k ]] && { kubectl=$k; break; }
  done
fi
kubectl=${kubectl:-$(command -v kubectl || true)}
[[ -n $kubectl && -x $kubectl ]] || { echo "no kubectl found (--kubectl, \$KUBECTL, or run hack/build-kubectl.sh)" >&2; exit 1; }
kubectl=$(cd "$(dirname "$kubectl")" && pwd)/$(basename "$kubectl")

ginkgo_cli=""
if ((procs > 1)); then
  ginkgo_cli=${GINKGO:-$(command -v ginkgo || true)}
  [[ -z $ginkgo_cli && -x $(go env GOPATH)/bin/ginkgo ]] && ginkgo_cli=$(go env GOPATH)/bin/ginkgo
  [[ -n $ginkgo_cli ]] || { echo "--procs needs the ginkgo CLI: go install github.com/onsi/ginkgo/v2/ginkgo@v2.32.0" >&2; exit 1; }
fi

work=$(mktemp -d)
report_dir=${report_dir:-$root/_output/conformance}
mkdir -p "$report_dir"
rm -f "$report_dir"/junit_*.xml "$report_dir"/e2e*.log "$report_dir"/results.tsv
server_pid="" agent_pid=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  if [[ -n $agent_pid ]]; then kill -TERM "$agent_pid" 2>/dev/null; wait "$agent_pid" 2>/dev/null || true; fi
  if [[ -n $server_pid ]]; then kill -TERM "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; fi
  # What the local node leaves by design (its containers outlive skiff):
  # the shims of its containerd, their mounts, the pod bridge.
  if $local_node; then
    pkill -9 -f "containerd-shim-runc-v2 .*-address $work/" 2>/dev/null || true
    grep -F " $work/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r umount -l 2>/dev/null || true
    ip link del cnf0 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

if [[ -z $kubeconfig ]]; then
  if [[ -z $skiff_bin ]]; then
    bash hack/build.sh "$work/skiff"
    skiff_bin=$work/skiff
  fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  server_args=()
  if $local_node; then
    # The node's images, imported by the node at start.
    [[ -n $(ls _output/images/*.tar 2>/dev/null) ]] || bash hack/images.sh --all
    mkdir -p "$work/data/agent/images"
    cp _output/images/*.tar "$work/data/agent/images/"
    # And from a local registry mirroring registry.k8s.io, for the specs
    # that pull with imagePullPolicy Always (a registry already running on
    # 127.0.0.1:5000 is reused and left running).
    bash hack/images.sh --registry >&2
    server_args+=(--registry-mirror registry.k8s.io=http://127.0.0.1:5000)
    # Its own bridge and pod range: the default suite's local node (cni0,
    # 10.244.0.0/16, :10250) may run on this machine meanwhile. The kubelet
    # port stays upstream's 10250 when free: specs name it explicitly
    # (nodes/NODE:10250/proxy, the e2e framework's node dumps).
    server_args+=(--cni-bridge cnf0 --cluster-cidr 10.248.0.0/16)
    if python3 -c 'import socket; socket.socket().bind(("0.0.0.0", 10250))' 2>/dev/null; then
      server_args+=(--kubelet-port 10250)
    else
      echo "port 10250 is in use: the local node's kubelet listens on 10260 (specs naming :10250 will fail)" >&2
      server_args+=(--kubelet-port 10260)
    fi
    # Pods reach the API server (the kubernetes Service) and the cluster
    # DNS (kube-dns, served by the server on its advertise address's port
    # 53) through the node's service proxy: both on this machine's address.
    host_ip=$(ip -4 route get 192.0.2.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
    [[ -n $host_ip ]] || { echo "no IPv4 default route: pods could not reach the API server" >&2; exit 1; }
    bind_address=0.0.0.0
    server_args+=(--advertise-address "$host_ip")
  else
    server_args+=(--disable-agent --disable-dns)
  fi
  "$skiff_bin" server --data-dir "$work/data" --secure-port "$port" --bind-address "${bind_address:-127.0.0.1}" \
    ${server_args[@]+"${server_args[@]}"} >"$work/server.out" 2>"$report_dir/server.log" &
  server_pid=$!
  for _ in $(seq 120); do grep -q KUBECONFIG= "$work/server.out" 2>/dev/null && break; sleep 0.5; done
  grep -q KUBECONFIG= "$work/server.out" || { echo "skiff did not become ready:"; tail -20 "$report_dir/server.log"; exit 1; }
  kubeconfig="$work/data/admin.kubeconfig"
  if ((nodes > 0)); then
    "$skiff_bin" agent --kubeconfig "$kubeconfig" --simulate "$nodes" --simulate-prefix conformance- \
      --simulate-pod-cidr-from-node --secure-port 0 >"$report_dir/agent.log" 2>&1 &
    agent_pid=$!
    ready=0
    for _ in $(seq 120); do
      ready=$("$kubectl" --kubeconfig "$kubeconfig" get nodes --no-headers 2>/dev/null | grep -c ' Ready ' || true)
      ((ready >= nodes)) && break
      sleep 0.5
    done
    ((ready >= nodes)) || { echo "$ready of $nodes simulated nodes Ready:"; tail -20 "$report_dir/agent.log"; exit 1; }
  fi
else
  nodes=$("$kubectl" --kubeconfig "$kubeconfig" get nodes --no-headers 2>/dev/null | wc -l)
fi

echo "running conformance specs against $(grep -m1 server: "$kubeconfig" | awk '{print $2}') with $kubectl; report in $report_dir"
# skeleton provider and no node checks: skiff's nodes are simulated (or
# there are none).
e2e_args=(--kubeconfig="$kubeconfig" --kubectl-path="$kubectl" --provider=skeleton --num-nodes="$((nodes > 0 ? nodes : 1))"
  --e2e-verify-service-account=false --report-dir="$report_dir")
$local_node || e2e_args+=(--allowed-not-ready-nodes=-1)
ginkgo_args=(--focus="$focus_regex" ${skip_args[@]+"${skip_args[@]}"} --no-color --v --timeout="$timeout")

# run NAME PROCS [ginkgo flags]: one pass, its JUnit report junit_NAME_01.xml.
rc=0
run() {
  local name=$1 n=$2 start=$SECONDS status=0
  shift 2
  echo "$name pass ($n process(es)); log: $report_dir/e2e-$name.log"
  if ((n > 1)); then
    nice -n 5 "$ginkgo_cli" -p --procs="$n" "${ginkgo_args[@]}" "$@" "$e2e" -- \
      "${e2e_args[@]}" --report-prefix="${name}_" >"$report_dir/e2e-$name.log" 2>&1 || status=$?
  else
    "$e2e" "${ginkgo_args[@]/#--/--ginkgo.}" "${@/#--/--ginkgo.}" "${e2e_args[@]}" \
      --report-prefix="${name}_" >"$report_dir/e2e-$name.log" 2>&1 || status=$?
  fi
  echo "$name pass finished in $((SECONDS - start))s, exit status $status"
  [[ -s $report_dir/junit_${name}_01.xml ]] || { echo "no JUnit report written; see $report_dir/e2e-$name.log"; tail -30 "$report_dir/e2e-$name.log"; rc=1; }
  # e2e.test and ginkgo fail on a failed spec and on a run cut short; with
  # --skipped-only failed specs are the expectation, judged from the report.
  if ! $skipped_only && ((status != 0)); then rc=1; fi
}
if ((procs == 1)) || [[ $serial == only ]]; then
  case "$serial" in
    all) run all 1 ;;
    skip) run parallel 1 --label-filter='!Serial' ;;
    only) run serial 1 --label-filter='Serial' ;;
  esac
else
  run parallel "$procs" --label-filter='!Serial'
  [[ $serial == all ]] && run serial 1 --label-filter='Serial'
fi

shopt -s nullglob
junits=("$report_dir"/junit_*.xml)
((${#junits[@]} > 0)) || exit 1
go run ./hack/conformance/summary -results "$report_dir/results.tsv" "${junits[@]}" || rc=1
failed=$(awk -F'\t' '$1 == "failed"' "$report_dir/results.tsv" | wc -l)
indent() { sed 's/^/  /'; }
if $skipped_only; then
  # Every skip-listed spec this run was meant to run should have failed.
  case "$serial" in
    all) want=$skipped_names ;;
    skip) want=$(grep -Fv '[Serial]' <<<"$skipped_names" || true) ;;
    only) want=$(grep -F '[Serial]' <<<"$skipped_names" || true) ;;
  esac
  # A spec whose skip reason says it "passes vacuously" stays listed: it
  # passes without exercising what it is about.
  vacuous=$(grep -hv '^#' "${skip_lists[@]}" | grep -F ' | passes vacuously' | sed 's/ | .*$//' || true)
  now_passing=$(awk -F'\t' '$1 == "passed" {print $2}' "$report_dir/results.tsv" | grep -Fvxf <(printf '%s\n' "$vacuous") || true)
  not_run=$(awk -F'\t' '$1 == "skipped" {print $2}' "$report_dir/results.tsv" | grep -Fxf <(printf '%s\n' "$want") || true)
  unknown=$(grep -Fvxf <(cut -f2 "$report_dir/results.tsv") <<<"$skipped_names" || true)
  echo
  if [[ -n $now_passing ]]; then
    echo "now passing: remove from the skip list ($(wc -l <<<"$now_passing")):"
    indent <<<"$now_passing"
    rc=1
  else
    echo "now passing: none; every skip-listed spec that ran failed ($failed)"
  fi
  if [[ -n $not_run ]]; then
    echo "did not run (skipped at run time or the run was cut short) ($(wc -l <<<"$not_run")):"
    indent <<<"$not_run"
    rc=1
  fi
  if [[ -n $unknown ]]; then
    echo "not a spec of this e2e.test (stale skip-list lines):"
    indent <<<"$unknown"
    rc=1
  fi
elif ((failed > 0)); then
  rc=1
fi
exit "$rc"
