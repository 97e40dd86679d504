package pod

import (
	corev1 "k8s.io/api/core/v1"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"

	corevalidation "github.com/skiff-dev/skiff/pkg/apis/core/validation"
)

// NewResizeREST serves pods/resize from the pods' store: writes change
// only the containers' (and sidecars') resources and resize policies, as
// upstream's podResizeStrategy. The names are taken too, by index, so that
// a reorder is caught by validation rather than lost.
func NewResizeREST(pods *genericregistry.Store) *SpecSubresourceREST {
	return newSpecSubresourceREST(pods, specPart{
		take: func(spec *corev1.PodSpec, req *corev1.Pod) {
			spec.Containers = takeResizable(spec.Containers, req.Spec.Containers, false)
			spec.InitContainers = takeResizable(spec.InitContainers, req.Spec.InitContainers, true)
		},
		validate: corevalidation.ValidatePodResize,
	})
}

// takeResizable copies the resizable fields of req into stored (sidecars
// only, for init containers); a request with other containers is taken
// whole, for validation to refuse.
func takeResizable(stored, req []corev1.Container, sidecarsOnly bool) []corev1.Container {
	if len(stored) != len(req) {
		return req
	}
	for i := range stored {
		if sidecarsOnly && (stored[i].RestartPolicy == nil || *stored[i].RestartPolicy != corev1.ContainerRestartPolicyAlways) {
			continue
		}
		stored[i].Name = req[i].Name
		stored[i].Resources = req[i].Resources
		stored[i].ResizePolicy = req[i].ResizePolicy
	}
	return stored
}
