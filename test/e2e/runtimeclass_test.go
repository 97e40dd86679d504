package e2e

import (
	"fmt"
	"testing"
)

// testRuntimeClassAdmission: a pod naming a missing RuntimeClass is
// refused, one naming an existing class gets its overhead and scheduling
// constraints (upstream's RuntimeClass admission).
func testRuntimeClassAdmission(t *testing.T, k *kctl) {
	class := "rc-" + k.ns // cluster-scoped: one per kubectl run
	pod := func(name, runtimeClass string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  runtimeClassName: %s
  nodeSelector:
    zone: z1
  containers:
  - name: c
    image: registry.k8s.io/pause:3.10
`, name, runtimeClass)
	}
	out := k.failStdin(t, pod("no-class", class), "create", "-f", "-")
	assertContains(t, out, "Forbidden", fmt.Sprintf(`pod rejected: RuntimeClass %q not found`, class))
	assertContains(t, k.fail(t, "get", "pod", "no-class"), "NotFound")

	k.okStdin(t, fmt.Sprintf(`apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata:
  name: %s
handler: runc
overhead:
  podFixed:
    cpu: 250m
scheduling:
  nodeSelector:
    sandbox: %s
  tolerations:
  - key: sandbox
    operator: Exists
`, class, class), "create", "-f", "-")
	defer k.run("delete", "runtimeclass", class)
	k.okStdin(t, pod("with-class", class), "create", "-f", "-")
	assertEqual(t, "overhead", k.jsonpath(t, "{.spec.overhead.cpu}", "pod", "with-class"), "250m")
	assertEqual(t, "nodeSelector", k.jsonpath(t, "{.spec.nodeSelector.sandbox}/{.spec.nodeSelector.zone}", "pod", "with-class"), class+"/z1")
	assertContains(t, k.jsonpath(t, "{.spec.tolerations[*].key}", "pod", "with-class"), "sandbox")
	k.ok(t, "delete", "pod", "with-class", "--wait=false")
}
