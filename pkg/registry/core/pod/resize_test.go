package pod_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/test/integration"
)

// TestResize runs pods/resize against a real API server: GET is the pod;
// PUT and the patches change only the containers' cpu and memory and
// resize policies, count the generation up and keep the QoS class; what
// else is asked is refused with upstream's field errors, as are resource
// changes through the pod itself.
func TestResize(t *testing.T) {
	testResize(t, integration.StartAPIServer(t, integration.ServerOptions{}))
}

// TestResizeUpstream holds upstream's kube-apiserver to the same
// expectations, when hack/upstream.sh has built it.
func TestResizeUpstream(t *testing.T) {
	testResize(t, integration.StartUpstreamAPIServer(t))
}

func testResize(t *testing.T, cfg *restclient.Config) {
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	pods := client.CoreV1().Pods("default")
	if _, err := client.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	q := resource.MustParse
	newPod := func(t *testing.T, name string) *corev1.Pod {
		t.Helper()
		p, err := pods.Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
			Spec: corev1.PodSpec{
				Containers: []corev1.Container{
					{Name: "c1", Image: "busybox", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: q("20m")}}},
					{Name: "c2", Image: "busybox", Resources: corev1.ResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceMemory: q("35Mi")}, Limits: corev1.ResourceList{corev1.ResourceMemory: q("45Mi")}}},
				},
			}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("discovery", func(t *testing.T) {
		list, err := client.Discovery().ServerResourcesForGroupVersion("v1")
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == "pods/resize" })
		if i < 0 {
			t.Fatal("/api/v1 lists no pods/resize")
		}
		r := list.APIResources[i]
		if verbs := slices.Sorted(slices.Values(r.Verbs)); r.Kind != "Pod" || !r.Namespaced || !slices.Equal(verbs, []string{"get", "patch", "update"}) {
			t.Errorf("pods/resize: kind %q namespaced %v verbs %v, want Pod, true, [get patch update]", r.Kind, r.Namespaced, verbs)
		}
	})

	t.Run("resize", func(t *testing.T) {
		pod := newPod(t, "resize")
		got, err := client.CoreV1().RESTClient().Get().Namespace("default").Resource("pods").Name("resize").SubResource("resize").Do(ctx).Get()
		if p, ok := got.(*corev1.Pod); err != nil || !ok || p.UID != pod.UID {
			t.Fatalf("GET pods/resize: %T %v, want the pod", got, err)
		}
		// kubectl patch --subresource resize: a strategic merge patch.
		smp := `{"spec":{"containers":[{"name":"c1","resources":{"requests":{"cpu":"25m"},"limits":{"cpu":"35m"}}},{"name":"c2","resources":{"requests":{"memory":"30Mi"},"limits":{"memory":"50Mi"}}}]}}`
		patched, err := pods.Patch(ctx, "resize", types.StrategicMergePatchType, []byte(smp), metav1.PatchOptions{}, "resize")
		if err != nil {
			t.Fatal(err)
		}
		c1, c2 := patched.Spec.Containers[0].Resources, patched.Spec.Containers[1].Resources
		if c1.Requests.Cpu().String() != "25m" || c1.Limits.Cpu().String() != "35m" || c2.Requests.Memory().String() != "30Mi" || c2.Limits.Memory().String() != "50Mi" {
			t.Errorf("resources after the patch: %v, %v", c1, c2)
		}
		if patched.Generation != pod.Generation+1 || patched.Status.QOSClass != corev1.PodQOSBurstable {
			t.Errorf("generation %d (was %d), QoS %s", patched.Generation, pod.Generation, patched.Status.QOSClass)
		}
		// PUT: only the resources come through; the other changes (image,
		// labels, status) are dropped.
		change := patched.DeepCopy()
		change.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory] = q("10Mi")
		change.Spec.Containers[1].Image = "nginx"
		change.Labels = map[string]string{"changed": "yes"}
		change.Status.Phase = corev1.PodSucceeded
		updated, err := pods.UpdateResize(ctx, "resize", change, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if updated.Spec.Containers[0].Resources.Requests.Memory().String() != "10Mi" || updated.Spec.Containers[1].Image != "busybox" {
			t.Errorf("PUT lost the resize: %+v", updated.Spec.Containers[0])
		}
		if updated.Labels["app"] != "resize" || updated.Labels["changed"] != "" || updated.Status.Phase != corev1.PodPending || updated.Generation != patched.Generation+1 {
			t.Errorf("PUT changed more than the resources: labels %v, phase %s, generation %d", updated.Labels, updated.Status.Phase, updated.Generation)
		}
		// Nothing changed: the generation stays.
		same, err := pods.Patch(ctx, "resize", types.JSONPatchType, []byte(`[{"op":"replace","path":"/spec/containers/0/resources/requests/cpu","value":"0.025"}]`), metav1.PatchOptions{}, "resize")
		if err != nil || same.Generation != updated.Generation {
			t.Errorf("a resize to the same value: %v, generation %d, want %d", err, same.Generation, updated.Generation)
		}
		// Server-side apply: its manager owns all it sent (upstream resets
		// no fields), though only the resources change.
		apply := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"resize","labels":{"ignored":"yes"}},"spec":{"containers":[{"name":"c1","resources":{"requests":{"cpu":"30m"}}}]}}`
		applied, err := pods.Patch(ctx, "resize", types.ApplyPatchType, []byte(apply), metav1.PatchOptions{FieldManager: "vpa", Force: ptr.To(true)}, "resize")
		if err != nil {
			t.Fatal(err)
		}
		if applied.Spec.Containers[0].Resources.Requests.Cpu().String() != "30m" || applied.Labels["ignored"] != "" {
			t.Errorf("after server-side apply: %v, labels %v", applied.Spec.Containers[0].Resources, applied.Labels)
		}
		i := slices.IndexFunc(applied.ManagedFields, func(m metav1.ManagedFieldsEntry) bool { return m.Manager == "vpa" })
		if i < 0 {
			t.Errorf("no managed fields of vpa: %+v", applied.ManagedFields)
		} else if m := applied.ManagedFields[i]; m.Subresource != "resize" || !strings.Contains(string(m.FieldsV1.Raw), "resources") {
			t.Errorf("vpa's managed fields: subresource %q, %s", m.Subresource, m.FieldsV1.Raw)
		}
		// A dry run changes nothing.
		if _, err := pods.Patch(ctx, "resize", types.StrategicMergePatchType, []byte(`{"spec":{"containers":[{"name":"c1","resources":{"requests":{"cpu":"32m"}}}]}}`),
			metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}, "resize"); err != nil {
			t.Fatal(err)
		}
		if p, err := pods.Get(ctx, "resize", metav1.GetOptions{}); err != nil || p.Spec.Containers[0].Resources.Requests.Cpu().String() != "30m" {
			t.Errorf("a dry run resized the pod: %v", err)
		}
	})

	t.Run("invalid", func(t *testing.T) {
		newPod(t, "invalid")
		for _, c := range []struct {
			name, patch string
			want        []string
		}{
			{"QoS", `{"spec":{"containers":[{"name":"c1","resources":{"requests":{"cpu":"20m","memory":"1Mi"},"limits":{"cpu":"20m","memory":"1Mi"}}},{"name":"c2","resources":{"requests":{"cpu":"1","memory":"45Mi"},"limits":{"cpu":"1"}}}]}}`,
				[]string{"FieldValueInvalid spec: Invalid value: \"Burstable\": Pod QOS Class may not change as a result of resizing"}},
			{"request removed", `{"spec":{"containers":[{"name":"c1","resources":{"requests":{"cpu":null}}}]}}`,
				[]string{"FieldValueForbidden spec.containers[0].resources.requests: Forbidden: resource requests cannot be removed"}},
			{"limit removed", `{"spec":{"containers":[{"name":"c2","resources":{"limits":{"memory":null}}}]}}`,
				[]string{"FieldValueForbidden spec.containers[1].resources.limits: Forbidden: resource limits cannot be removed"}},
			{"requests and limits removed", `{"spec":{"containers":[{"name":"c2","resources":{"requests":{"memory":null},"limits":{"memory":null}}}]}}`,
				[]string{"FieldValueForbidden spec.containers[1].resources.requests: Forbidden: resource requests cannot be removed",
					"FieldValueForbidden spec.containers[1].resources.limits: Forbidden: resource limits cannot be removed"}},
			{"resize policy", `{"spec":{"containers":[{"name":"c1","resizePolicy":[{"resourceName":"cpu","restartPolicy":"RestartContainer"}]}]}}`,
				[]string{"FieldValueForbidden spec: Forbidden: only cpu and memory resources are mutable"}},
			{"ephemeral storage", `{"spec":{"containers":[{"name":"c1","resources":{"requests":{"ephemeral-storage":"1Gi"}}}]}}`,
				[]string{"FieldValueForbidden spec: Forbidden: only cpu and memory resources are mutable"}},
			{"reordered", `{"spec":{"$setElementOrder/containers":[{"name":"c2"},{"name":"c1"}]}}`,
				[]string{"FieldValueForbidden spec.containers[0].name: Forbidden: containers may not be renamed or reordered on resize",
					"FieldValueForbidden spec.containers[1].name: Forbidden: containers may not be renamed or reordered on resize"}},
			{"request above limit", `{"spec":{"containers":[{"name":"c2","resources":{"requests":{"memory":"50Mi"}}}]}}`,
				[]string{"FieldValueInvalid spec.containers[1].resources.requests: Invalid value: \"50Mi\": must be less than or equal to memory limit"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				_, err := pods.Patch(ctx, "invalid", types.StrategicMergePatchType, []byte(c.patch), metav1.PatchOptions{}, "resize")
				expectCauses(t, err, "invalid", c.want)
			})
		}
		// The pod itself refuses resource changes as upstream.
		_, err := pods.Patch(ctx, "invalid", types.StrategicMergePatchType, []byte(`{"spec":{"containers":[{"name":"c1","resources":{"requests":{"cpu":"30m"}}}]}}`), metav1.PatchOptions{})
		expectCauses(t, err, "invalid", []string{"FieldValueForbidden spec: Forbidden: pod updates may not change fields other than"})
		if p, err := pods.Get(ctx, "invalid", metav1.GetOptions{}); err != nil || p.Generation != 1 {
			t.Errorf("refused resizes changed the pod: %v", err)
		}
	})

	t.Run("codes", func(t *testing.T) {
		if _, err := pods.Patch(ctx, "missing", types.StrategicMergePatchType, []byte(`{}`), metav1.PatchOptions{}, "resize"); !apierrors.IsNotFound(err) {
			t.Errorf("PATCH on a missing pod: %v, want 404", err)
		}
		if _, err := pods.UpdateResize(ctx, "missing", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "missing"}}, metav1.UpdateOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("PUT on a missing pod: %v, want 404", err)
		}
		pod := newPod(t, "conflict")
		stale := pod.DeepCopy()
		pod.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = q("30m")
		if _, err := pods.UpdateResize(ctx, "conflict", pod, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		stale.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = q("40m")
		if _, err := pods.UpdateResize(ctx, "conflict", stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
			t.Errorf("PUT with a stale resourceVersion: %v, want 409", err)
		}
	})
}

// expectCauses: err is a 422 for the pod whose causes start with want's.
func expectCauses(t *testing.T, err error, name string, want []string) {
	t.Helper()
	status, ok := err.(apierrors.APIStatus)
	if !ok || status.Status().Code != 422 || status.Status().Details == nil {
		t.Fatalf("got %v, want 422 Invalid", err)
	}
	details := status.Status().Details
	if details.Kind != "Pod" || details.Name != name {
		t.Errorf("details name %q kind %q, want %q Pod", details.Name, details.Kind, name)
	}
	var got []string
	for _, c := range details.Causes {
		got = append(got, fmt.Sprintf("%s %s: %s", c.Type, c.Field, c.Message))
	}
	if len(got) != len(want) {
		t.Fatalf("causes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
			t.Errorf("no cause %q in:\n%s", w, strings.Join(got, "\n"))
		}
	}
}
