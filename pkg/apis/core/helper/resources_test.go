package helper

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestIsExtendedResourceName(t *testing.T) {
	for name, want := range map[corev1.ResourceName]bool{
		"cpu": false, "memory": false, "hugepages-2Mi": false,
		"kubernetes.io/foo": false, "node.kubernetes.io/foo": false,
		"requests.example.com/foo": false,
		"example.com/foo":          true, "scheduling.k8s.io/foo": true,
		"example.com/fakecpu": true, "nvidia.com/gpu": true, "x.kubernetes.io/foo": false,
		corev1.ResourceName("example.com/" + strings.Repeat("a", 64)): false, // over a qualified name's 63
	} {
		if got := IsExtendedResourceName(name); got != want {
			t.Errorf("IsExtendedResourceName(%q) = %v, want %v", name, got, want)
		}
	}
}
