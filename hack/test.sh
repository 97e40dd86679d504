#!/usr/bin/env bash
# Runs every test of the default suite: unit and integration tests against a
# real embedded etcd, and the end-to-end tests driving stock kubectl against a
# real `skiff server`. Slow suites (conformance, differential, benchmarks)
# live behind their own hack/ scripts.
set -euo pipefail
cd "$(dirname "$0")/.."

# The e2e tests need at least one stock kubectl; build 1.37 if none is found.
have_kubectl=false
[[ -n "${KUBECTL:-}" ]] && have_kubectl=true
for v in 27 28 29 30 31 32 33; do
  [[ -x /usr/lib/google-cloud-sdk/bin/kubectl.1.$v ]] && have_kubectl=true
done
[[ -x "${SKIFF_KUBECTL_CACHE:-$HOME/.cache/skiff/kubectl}/v1.37.2/kubectl" ]] && have_kubectl=true
if ! $have_kubectl; then
  echo "no stock kubectl found: building kubectl v1.37.2 (hack/build-kubectl.sh)"
  bash hack/build-kubectl.sh
fi

bash hack/node-deps.sh  # containerd, runc, CNI plugins, ... for the node tests (skip without them)
go vet ./...
go test -count=1 -timeout 25m "$@" ./...

# A bounded run of the malformed-request fuzzer against a real server
# (its seeds already ran above); SKIFF_FUZZTIME=0 skips it.
fuzztime="${SKIFF_FUZZTIME:-20s}"
if [[ "$fuzztime" != 0 ]]; then
  go test -run '^$' -fuzz '^FuzzMalformedRequests$' -fuzztime "$fuzztime" -parallel 1 ./pkg/apiserver
fi
