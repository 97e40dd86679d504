package pod

import (
	corev1 "k8s.io/api/core/v1"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"

	corevalidation "github.com/skiff-dev/skiff/pkg/apis/core/validation"
)

// NewEphemeralContainersREST serves pods/ephemeralcontainers (kubectl
// debug) from the pods' store: only spec.ephemeralContainers changes, and
// only by additions.
func NewEphemeralContainersREST(pods *genericregistry.Store) *SpecSubresourceREST {
	return newSpecSubresourceREST(pods, specPart{
		take: func(spec *corev1.PodSpec, req *corev1.Pod) {
			spec.EphemeralContainers = req.Spec.EphemeralContainers
		},
		validate: corevalidation.ValidatePodEphemeralContainersUpdate,
	})
}
