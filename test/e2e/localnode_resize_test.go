package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilversion "k8s.io/apimachinery/pkg/util/version"

	"github.com/skiff-dev/skiff/test/nodeimages"
)

// testResize: in-place pod resize as upstream's conformance specs check
// it. kubectl patch --subresource resize changes a running burstable
// pod's containers (requests and limits up and down, limits and requests
// added) without restarts; the status reports the new resources, the
// resize conditions go, and the containers' cgroups have them. The
// replace endpoint works too, GET pods/resize is the pod, and what a
// resize may not do is refused with upstream's messages.
func (ln *localNode) testResize(t *testing.T) {
	k := ln.k
	for _, b := range ln.kubectls {
		if strings.HasPrefix(b.version, "v1.33.") {
			k = ln.kubectlFor(t, b)
		}
	}
	ctx := context.Background()
	node, err := ln.admin.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(node.Items) == 0 {
		t.Fatalf("nodes: %v", err)
	}
	if v := utilversion.MustParseGeneric(node.Items[0].Status.NodeInfo.KubeletVersion); v.LessThan(utilversion.MustParseGeneric("1.34")) {
		t.Errorf("kubeletVersion %s, want >= 1.34 (the resize specs' MinimumKubeletVersion)", v)
	}

	k.okStdin(t, fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: resized}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 0
  restartPolicy: OnFailure
  containers:
  - {name: c1, image: %[1]s, command: [sh, -c, 'sleep 1d'], resources: {requests: {cpu: 20m}}}
  - {name: c2, image: %[1]s, command: [sh, -c, 'sleep 1d'], resources: {requests: {memory: 35Mi}}}
  - {name: c3, image: %[1]s, command: [sh, -c, 'sleep 1d'], resources: {requests: {cpu: 2m}, limits: {cpu: 10m}}}
`, nodeimages.BusyboxImage), "apply", "-f", "-")
	t.Cleanup(func() { k.run("delete", "pod", "resized", "--wait=false") })
	pod := ln.waitPod(t, "resized", 90*time.Second, podAllReady)
	if pod.Generation != 1 {
		t.Errorf("generation %d, want 1", pod.Generation)
	}
	ln.checkResized(t, k, pod)

	out := k.ok(t, "patch", "pod", "resized", "--subresource", "resize", "-p",
		`{"spec":{"containers":[{"name":"c1","resources":{"requests":{"cpu":"25m"},"limits":{"cpu":"35m"}}},`+
			`{"name":"c2","resources":{"requests":{"memory":"30Mi"},"limits":{"memory":"50Mi"}}},`+
			`{"name":"c3","resources":{"requests":{"cpu":"1m"},"limits":{"cpu":"5m"}}}]}}`)
	assertContains(t, out, "pod/resized patched")
	pod = ln.waitResized(t, "resized", 2)
	ln.checkResized(t, k, pod)
	if r := pod.Spec.Containers[2].Resources; r.Requests.Cpu().String() != "1m" || r.Limits.Cpu().String() != "5m" {
		t.Errorf("c3's resources %v", r)
	}

	// The replace endpoint, and GET pods/resize.
	pod.Spec.Containers[2].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2m")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")},
	}
	if _, err := ln.admin.CoreV1().Pods(k.ns).UpdateResize(ctx, "resized", pod, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("PUT pods/resize: %v", err)
	}
	pod = ln.waitResized(t, "resized", 3)
	ln.checkResized(t, k, pod)
	raw, err := ln.admin.CoreV1().RESTClient().Get().Namespace(k.ns).Resource("pods").Name("resized").SubResource("resize").DoRaw(ctx)
	if err != nil {
		t.Fatalf("GET pods/resize: %v", err)
	}
	var fromResize corev1.Pod
	if err := json.Unmarshal(raw, &fromResize); err != nil {
		t.Fatal(err)
	}
	fromResize.Kind, fromResize.APIVersion = "", ""
	if !apiequality.Semantic.DeepEqual(pod.Spec, fromResize.Spec) || fromResize.Generation != pod.Generation || fromResize.Name != pod.Name {
		t.Errorf("GET pods/resize differs from the pod: %s", raw)
	}
	for _, c := range pod.Status.ContainerStatuses {
		if c.RestartCount != 0 {
			t.Errorf("container %s restarted on an in-place resize: %s", c.Name, containerStates(pod))
		}
	}

	// Refused: a QoS change, a removal, other resources, a reorder, and a
	// resource change through the pod itself.
	for _, tc := range []struct{ patch, want string }{
		{`{"spec":{"containers":[{"name":"c1","resources":{"requests":{"cpu":"35m","memory":"50Mi"},"limits":{"cpu":"35m","memory":"50Mi"}}},{"name":"c2","resources":{"requests":{"cpu":"1","memory":"50Mi"},"limits":{"cpu":"1","memory":"50Mi"}}},{"name":"c3","resources":{"requests":{"cpu":"10m","memory":"50Mi"},"limits":{"cpu":"10m","memory":"50Mi"}}}]}}`,
			"Pod QOS Class may not change as a result of resizing"},
		{`{"spec":{"containers":[{"name":"c1","resources":{"limits":{"cpu":null}}}]}}`, "spec.containers[0].resources.limits: Forbidden: resource limits cannot be removed"},
		{`{"spec":{"containers":[{"name":"c2","resources":{"requests":{"memory":null},"limits":{"memory":null}}}]}}`, "spec.containers[1].resources.requests: Forbidden: resource requests cannot be removed"},
		{`{"spec":{"containers":[{"name":"c1","resources":{"requests":{"ephemeral-storage":"1Gi"}}}]}}`, "only cpu and memory resources are mutable"},
		{`{"spec":{"$setElementOrder/containers":[{"name":"c2"},{"name":"c1"},{"name":"c3"}]}}`, "containers may not be renamed or reordered on resize"},
	} {
		out := k.fail(t, "patch", "pod", "resized", "--subresource", "resize", "-p", tc.patch)
		assertContains(t, out, tc.want)
	}
	out = k.fail(t, "patch", "pod", "resized", "-p", `{"spec":{"containers":[{"name":"c1","resources":{"requests":{"cpu":"30m"}}}]}}`)
	assertContains(t, out, "pod updates may not change fields other than")
	if p, err := ln.admin.CoreV1().Pods(k.ns).Get(ctx, "resized", metav1.GetOptions{}); err != nil || p.Generation != 3 {
		t.Errorf("refused resizes changed the pod: %v, generation %d", err, p.Generation)
	}
}

// waitResized waits until the pod's status has its spec's resources for
// generation, without resize conditions, and ready.
func (ln *localNode) waitResized(t *testing.T, name string, generation int64) *corev1.Pod {
	t.Helper()
	return ln.waitPod(t, name, 60*time.Second, func(p *corev1.Pod) string {
		if p.Generation != generation || p.Status.ObservedGeneration != generation {
			return fmt.Sprintf("generation %d, observed %d, want %d", p.Generation, p.Status.ObservedGeneration, generation)
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodResizePending || c.Type == corev1.PodResizeInProgress {
				return fmt.Sprintf("condition %s %s: %s", c.Type, c.Reason, c.Message)
			}
		}
		for i, c := range p.Spec.Containers {
			if i >= len(p.Status.ContainerStatuses) {
				return "no status of " + c.Name
			}
			cs := p.Status.ContainerStatuses[i]
			if cs.Resources == nil || !apiequality.Semantic.DeepEqual(*cs.Resources, c.Resources) {
				return fmt.Sprintf("%s's status resources %v, want %v", c.Name, cs.Resources, c.Resources)
			}
			if !apiequality.Semantic.DeepEqual(cs.AllocatedResources, c.Resources.Requests) {
				return fmt.Sprintf("%s's allocated resources %v, want %v", c.Name, cs.AllocatedResources, c.Resources.Requests)
			}
		}
		return podAllReady(p)
	})
}

// checkResized reads each container's cgroup (v1 or v2) in it, as
// upstream's e2e does, against its spec's resources.
func (ln *localNode) checkResized(t *testing.T, k *kctl, pod *corev1.Pod) {
	t.Helper()
	v2 := k.run("exec", pod.Name, "-c", pod.Spec.Containers[0].Name, "--", "test", "-e", "/sys/fs/cgroup/cgroup.controllers").err == nil
	for _, c := range pod.Spec.Containers {
		req, lim := c.Resources.Requests.Cpu().MilliValue(), c.Resources.Limits.Cpu().MilliValue()
		if req == 0 {
			req = lim
		}
		shares := max(req*1024/1000, 2)
		quota := int64(-1)
		if lim > 0 {
			quota = max(lim*100, 1000)
		}
		mem := c.Resources.Limits.Memory().Value()
		want := map[string]string{}
		if v2 {
			want["/sys/fs/cgroup/cpu.weight"] = fmt.Sprint(1 + ((shares-2)*9999)/262142)
			want["/sys/fs/cgroup/cpu.max"] = fmt.Sprintf("%d 100000", quota)
			if quota < 0 {
				want["/sys/fs/cgroup/cpu.max"] = "max 100000"
			}
			if mem > 0 {
				want["/sys/fs/cgroup/memory.max"] = fmt.Sprint(mem)
			}
		} else {
			want["/sys/fs/cgroup/cpu/cpu.shares"] = fmt.Sprint(shares)
			want["/sys/fs/cgroup/cpu/cpu.cfs_quota_us"] = fmt.Sprint(quota)
			if mem > 0 {
				want["/sys/fs/cgroup/memory/memory.limit_in_bytes"] = fmt.Sprint(mem)
			}
		}
		for file, value := range want {
			got := strings.TrimSpace(k.ok(t, "exec", pod.Name, "-c", c.Name, "--", "head", "-n", "1", file))
			if got != value {
				t.Errorf("%s of %s: %s, want %s", file, c.Name, got, value)
			}
		}
	}
}
