package admission

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

func portsPod(ports ...corev1.ContainerPort) *corev1.Pod {
	return &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Ports: ports}}}}
}

func TestFitPorts(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	held := framework.HostPortInfo{}
	for _, p := range []*corev1.Pod{
		portsPod(corev1.ContainerPort{ContainerPort: 80, HostPort: 21017}),
		portsPod(corev1.ContainerPort{ContainerPort: 53, HostPort: 54321, HostIP: "10.0.0.1", Protocol: corev1.ProtocolUDP}),
	} {
		for _, hp := range framework.GetHostPorts(p) {
			held.Add(hp.HostIP, string(hp.Protocol), hp.HostPort)
		}
	}
	for _, c := range []struct {
		name string
		pod  *corev1.Pod
		fits bool
	}{
		{"no host port", portsPod(corev1.ContainerPort{ContainerPort: 21017}), true},
		{"same port, both any address", portsPod(corev1.ContainerPort{ContainerPort: 1, HostPort: 21017}), false},
		{"same port, a specific address against any", portsPod(corev1.ContainerPort{ContainerPort: 1, HostPort: 21017, HostIP: "10.0.0.2"}), false},
		{"same port, other protocol", portsPod(corev1.ContainerPort{ContainerPort: 1, HostPort: 21017, Protocol: corev1.ProtocolUDP}), true},
		{"any address against a specific one", portsPod(corev1.ContainerPort{ContainerPort: 1, HostPort: 54321, Protocol: corev1.ProtocolUDP}), false},
		{"other specific address", portsPod(corev1.ContainerPort{ContainerPort: 1, HostPort: 54321, HostIP: "10.0.0.2", Protocol: corev1.ProtocolUDP}), true},
		{"same specific address, other protocol", portsPod(corev1.ContainerPort{ContainerPort: 1, HostPort: 54321, HostIP: "10.0.0.1"}), true},
		{"a sidecar's port counts", &corev1.Pod{Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "s", RestartPolicy: &always,
			Ports: []corev1.ContainerPort{{ContainerPort: 1, HostPort: 21017}}}}}}, false},
		{"an init container's does not", &corev1.Pod{Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "i",
			Ports: []corev1.ContainerPort{{ContainerPort: 1, HostPort: 21017}}}}}}, true},
	} {
		r := FitPorts(c.pod, held)
		if (r == nil) != c.fits {
			t.Errorf("%s: rejection %v, want fits %v", c.name, r, c.fits)
		}
		if r != nil && (r.Reason() != "NodePorts" || r.Error() != "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports") {
			t.Errorf("%s: %s %q", c.name, r.Reason(), r.Error())
		}
	}
}
