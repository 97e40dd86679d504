package simulated

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/kubelet/qos"
)

func TestSlimPodKeepsWhatTheSimulationReads(t *testing.T) {
	guaranteed := corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resourceQuantity("1"), corev1.ResourceMemory: resourceQuantity("1Gi")}}
	guaranteed.Limits = guaranteed.Requests
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u", Generation: 3,
			Annotations:   map[string]string{AnnotationReady: "false", "kubectl.kubernetes.io/last-applied-configuration": "{...}"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec: corev1.PodSpec{
			NodeName: "sim-0", RestartPolicy: corev1.RestartPolicyNever, HostNetwork: true,
			Volumes:        []corev1.Volume{{Name: "token"}},
			InitContainers: []corev1.Container{{Name: "s", Image: "envoy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways), Resources: guaranteed}},
			Containers:     []corev1.Container{{Name: "c", Image: "nginx", Resources: guaranteed, Env: []corev1.EnvVar{{Name: "X"}}}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1"},
	}
	obj, err := slimPod(pod)
	if err != nil {
		t.Fatal(err)
	}
	slim := obj.(*corev1.Pod)
	if slim.Name != "p" || slim.UID != "u" || slim.Generation != 3 || slim.Spec.NodeName != "sim-0" || !slim.Spec.HostNetwork ||
		slim.Spec.RestartPolicy != corev1.RestartPolicyNever || slim.Status.PodIP != "10.0.0.1" {
		t.Errorf("slim pod lost fields: %+v", slim)
	}
	if len(slim.Annotations) != 1 || Ready(slim, "c") || slim.ManagedFields != nil || slim.Spec.Volumes != nil || slim.Spec.Containers[0].Env != nil {
		t.Errorf("slim pod kept too much or too little: %+v", slim.ObjectMeta)
	}
	if *slim.Spec.InitContainers[0].RestartPolicy != corev1.ContainerRestartPolicyAlways || slim.Spec.Containers[0].Image != "nginx" ||
		qos.ComputePodQOS(slim) != corev1.PodQOSGuaranteed {
		t.Errorf("containers: %+v", slim.Spec)
	}
}
