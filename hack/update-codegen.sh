#!/usr/bin/env bash
# Regenerates pkg/generated/openapi from the k8s.io/api packages skiff serves.
# openapi-gen is pinned in go.mod (tool line) to the kube-openapi version that
# k8s.io/apiserver v0.37.2 requires; newer ones need Go 1.27.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  k8s.io/apimachinery/pkg/apis/meta/v1
  k8s.io/apimachinery/pkg/runtime
  k8s.io/apimachinery/pkg/version
  k8s.io/apimachinery/pkg/api/resource
  k8s.io/apimachinery/pkg/util/intstr
  k8s.io/api/core/v1
  k8s.io/api/apps/v1
  k8s.io/api/batch/v1
  k8s.io/api/autoscaling/v1
  k8s.io/api/autoscaling/v2
  k8s.io/metrics/pkg/apis/metrics/v1beta1
  k8s.io/api/coordination/v1
  k8s.io/api/discovery/v1
  k8s.io/api/events/v1
  k8s.io/api/policy/v1
  k8s.io/api/rbac/v1
  k8s.io/api/networking/v1
  k8s.io/api/scheduling/v1
  k8s.io/api/scheduling/v1alpha3
  k8s.io/api/storage/v1
  k8s.io/api/node/v1
  k8s.io/api/certificates/v1
  k8s.io/api/authentication/v1
  k8s.io/api/authorization/v1
  k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1
)

echo "openapi-gen over ${#packages[@]} packages..."
go tool openapi-gen \
  --output-dir pkg/generated/openapi \
  --output-pkg github.com/skiff-dev/skiff/pkg/generated/openapi \
  --output-file zz_generated.openapi.go \
  --go-header-file hack/boilerplate.go.txt \
  --report-filename /dev/null \
  "${packages[@]}"
echo "wrote pkg/generated/openapi/zz_generated.openapi.go"
