package qos

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func res(pairs ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i+1 < len(pairs); i += 2 {
		l[corev1.ResourceName(pairs[i])] = resource.MustParse(pairs[i+1])
	}
	return l
}

func container(req, lim corev1.ResourceList) corev1.Container {
	return corev1.Container{Name: "c", Resources: corev1.ResourceRequirements{Requests: req, Limits: lim}}
}

func TestComputePodQOS(t *testing.T) {
	guaranteed := container(res("cpu", "1", "memory", "1Gi"), res("cpu", "1", "memory", "1Gi"))
	for _, c := range []struct {
		name       string
		init, main []corev1.Container
		pod        *corev1.ResourceRequirements
		want       corev1.PodQOSClass
	}{
		{"nothing", nil, []corev1.Container{container(nil, nil)}, nil, corev1.PodQOSBestEffort},
		{"only ephemeral-storage", nil, []corev1.Container{container(res("ephemeral-storage", "1Gi"), nil)}, nil, corev1.PodQOSBestEffort},
		{"limits equal requests", nil, []corev1.Container{guaranteed}, nil, corev1.PodQOSGuaranteed},
		// Limits alone: the API server defaults the requests to them.
		{"limits only, not defaulted", nil, []corev1.Container{container(nil, res("cpu", "1", "memory", "1Gi"))}, nil, corev1.PodQOSBurstable},
		{"cpu only", nil, []corev1.Container{container(res("cpu", "1"), res("cpu", "1"))}, nil, corev1.PodQOSBurstable},
		{"request below limit", nil, []corev1.Container{container(res("cpu", "500m", "memory", "1Gi"), res("cpu", "1", "memory", "1Gi"))}, nil, corev1.PodQOSBurstable},
		{"guaranteed and best effort", nil, []corev1.Container{guaranteed, container(nil, nil)}, nil, corev1.PodQOSBurstable},
		{"best effort init container", []corev1.Container{container(nil, nil)}, []corev1.Container{guaranteed}, nil, corev1.PodQOSBurstable},
		{"pod-level resources decide", nil, []corev1.Container{container(nil, nil)},
			&corev1.ResourceRequirements{Requests: res("cpu", "1", "memory", "1Gi"), Limits: res("cpu", "1", "memory", "1Gi")}, corev1.PodQOSGuaranteed},
	} {
		pod := &corev1.Pod{Spec: corev1.PodSpec{InitContainers: c.init, Containers: c.main, Resources: c.pod}}
		if got := ComputePodQOS(pod); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{guaranteed}}, Status: corev1.PodStatus{QOSClass: corev1.PodQOSBurstable}}
	if got := PodQOS(pod); got != corev1.PodQOSBurstable {
		t.Errorf("PodQOS ignored the stored class: %s", got)
	}
}
