package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

func TestValidatePodResize(t *testing.T) {
	burstable := func(s *corev1.PodSpec) {
		s.Containers[0].Resources = corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: q("20m"), corev1.ResourceMemory: q("35Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: q("30m")},
		}
	}
	withSidecar := func(s *corev1.PodSpec) {
		burstable(s)
		sc := container("sidecar")
		sc.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
		sc.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: q("10m")}
		s.InitContainers = []corev1.Container{sc, container("init")}
	}
	cases := []struct {
		name   string
		old    func(*corev1.PodSpec)
		mutate func(*corev1.PodSpec)
		meta   func(*corev1.Pod)
		want   []string
		detail string
	}{
		{"unchanged", burstable, nil, nil, nil, ""},
		{"requests and limits up and down, limits added", burstable, func(s *corev1.PodSpec) {
			s.Containers[0].Resources.Requests[corev1.ResourceCPU] = q("25m")
			s.Containers[0].Resources.Requests[corev1.ResourceMemory] = q("30Mi")
			s.Containers[0].Resources.Limits[corev1.ResourceCPU] = q("25m")
			s.Containers[0].Resources.Limits[corev1.ResourceMemory] = q("50Mi")
		}, nil, nil, ""},
		{"memory request added", burstable, func(s *corev1.PodSpec) {
			s.Containers[0].Resources.Limits[corev1.ResourceMemory] = q("1Gi")
		}, nil, nil, ""},
		{"resize policy (immutable, as upstream)", burstable, func(s *corev1.PodSpec) {
			s.Containers[0].ResizePolicy = []corev1.ContainerResizePolicy{{ResourceName: corev1.ResourceMemory, RestartPolicy: corev1.RestartContainer}}
		}, nil, []string{"Forbidden spec"}, "only cpu and memory resources are mutable"},
		{"sidecar resized", withSidecar, func(s *corev1.PodSpec) {
			s.InitContainers[0].Resources.Requests[corev1.ResourceCPU] = q("15m")
		}, nil, nil, ""},
		{"init container resized", withSidecar, func(s *corev1.PodSpec) {
			s.InitContainers[1].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: q("15m")}
		}, nil, []string{"Forbidden spec"}, "only cpu and memory resources are mutable"},
		{"QoS to Guaranteed", burstable, func(s *corev1.PodSpec) {
			s.Containers[0].Resources.Requests[corev1.ResourceCPU] = q("30m")
			s.Containers[0].Resources.Limits[corev1.ResourceMemory] = q("35Mi")
		}, nil, []string{"Invalid spec"}, "Pod QOS Class may not change as a result of resizing"},
		{"QoS from BestEffort", nil, func(s *corev1.PodSpec) {
			s.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: q("35Mi")}
		}, nil, []string{"Invalid spec"}, "Pod QOS Class may not change as a result of resizing"},
		{"request removed", burstable, func(s *corev1.PodSpec) { delete(s.Containers[0].Resources.Requests, corev1.ResourceMemory) },
			nil, []string{"Forbidden spec.containers[0].resources.requests"}, "resource requests cannot be removed"},
		{"limit removed", burstable, func(s *corev1.PodSpec) { s.Containers[0].Resources.Limits = nil },
			nil, []string{"Forbidden spec.containers[0].resources.limits"}, "resource limits cannot be removed"},
		{"requests and limits removed", burstable, func(s *corev1.PodSpec) { s.Containers[0].Resources = corev1.ResourceRequirements{} },
			nil, []string{"Forbidden spec.containers[0].resources.requests", "Forbidden spec.containers[0].resources.limits", "Invalid spec"}, ""},
		{"ephemeral storage", burstable, func(s *corev1.PodSpec) {
			s.Containers[0].Resources.Requests[corev1.ResourceEphemeralStorage] = q("1Gi")
		}, nil, []string{"Forbidden spec"}, "only cpu and memory resources are mutable"},
		{"renamed", burstable, func(s *corev1.PodSpec) { s.Containers[0].Name = "d" },
			nil, []string{"Forbidden spec.containers[0].name"}, "containers may not be renamed or reordered on resize"},
		{"added", burstable, func(s *corev1.PodSpec) { s.Containers = append(s.Containers, container("d")) },
			nil, []string{"Forbidden spec.containers"}, "containers may not be added or removed on resize"},
		{"other field", burstable, func(s *corev1.PodSpec) { s.Containers[0].Image = "nginx:2" },
			nil, []string{"Forbidden spec"}, "only cpu and memory resources are mutable"},
		{"invalid resources", burstable, func(s *corev1.PodSpec) { s.Containers[0].Resources.Requests[corev1.ResourceCPU] = q("40m") },
			nil, []string{"Invalid spec.containers[0].resources.requests"}, "must be less than or equal to cpu limit"},
		{"static pod", burstable, nil, func(p *corev1.Pod) { p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"} },
			[]string{"Forbidden []"}, "static pods cannot be resized"},
		{"node without resize support", burstable, nil, func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
		}, []string{"Forbidden spec"}, "Pod running on node without support for resize"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := pod(tc.old)
			p := pod(tc.old)
			if tc.mutate != nil {
				mutate := tc.mutate
				p = pod(func(s *corev1.PodSpec) {
					if tc.old != nil {
						tc.old(s)
					}
					mutate(s)
				})
			}
			if tc.meta != nil {
				tc.meta(old)
			}
			errs := ValidatePodResize(p, old)
			apitesting.ExpectFieldErrors(t, errs, tc.want...)
			if tc.detail != "" {
				apitesting.ExpectErrorDetail(t, errs, tc.detail)
			}
		})
	}
}
