package pod_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/test/integration"
)

func debugContainer(name string, change func(*corev1.EphemeralContainer)) corev1.EphemeralContainer {
	ec := corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: name, Image: "busybox", Command: []string{"sh"}, Stdin: true, TTY: true,
		ImagePullPolicy: corev1.PullIfNotPresent, TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		TerminationMessagePath: "/dev/termination-log",
	}, TargetContainerName: "app"}
	if change != nil {
		change(&ec)
	}
	return ec
}

// TestEphemeralContainers runs pods/ephemeralcontainers against a real
// API server: GET/PUT/PATCH of the whole pod, additions only, upstream's
// field errors, status codes and RBAC.
func TestEphemeralContainers(t *testing.T) {
	testEphemeralContainers(t, integration.StartAPIServer(t, integration.ServerOptions{}))
}

// TestEphemeralContainersUpstream holds upstream's kube-apiserver to the
// same expectations, when hack/upstream.sh has built it.
func TestEphemeralContainersUpstream(t *testing.T) {
	testEphemeralContainers(t, integration.StartUpstreamAPIServer(t))
}

func testEphemeralContainers(t *testing.T, cfg *restclient.Config) {
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	pods := client.CoreV1().Pods("default")
	// No controllers run: the ServiceAccount admission wants the default one.
	if _, err := client.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	newPod := func(t *testing.T, name string) *corev1.Pod {
		t.Helper()
		p, err := pods.Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
			Spec: corev1.PodSpec{
				InitContainers: []corev1.Container{{Name: "init", Image: "busybox"}},
				Containers:     []corev1.Container{{Name: "app", Image: "busybox"}},
				Volumes:        []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
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
		i := slices.IndexFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == "pods/ephemeralcontainers" })
		if i < 0 {
			t.Fatal("/api/v1 lists no pods/ephemeralcontainers")
		}
		r := list.APIResources[i]
		verbs := slices.Sorted(slices.Values(r.Verbs))
		if r.Kind != "Pod" || !r.Namespaced || !slices.Equal(verbs, []string{"get", "patch", "update"}) {
			t.Errorf("pods/ephemeralcontainers: kind %q namespaced %v verbs %v, want Pod, true, [get patch update]", r.Kind, r.Namespaced, verbs)
		}
		for _, path := range []string{"/openapi/v2", "/openapi/v3/api/v1"} {
			doc, err := client.CoreV1().RESTClient().Get().AbsPath(path).DoRaw(ctx)
			if err != nil || !strings.Contains(string(doc), "/api/v1/namespaces/{namespace}/pods/{name}/ephemeralcontainers") {
				t.Errorf("%s has no path of pods/ephemeralcontainers (%v)", path, err)
			}
		}
	})

	t.Run("add", func(t *testing.T) {
		pod := newPod(t, "add")
		got, err := client.CoreV1().RESTClient().Get().Namespace("default").Resource("pods").Name("add").SubResource("ephemeralcontainers").Do(ctx).Get()
		if p, ok := got.(*corev1.Pod); err != nil || !ok || p.Name != "add" || p.UID != pod.UID {
			t.Fatalf("GET ephemeralcontainers: %T %v, want the pod", got, err)
		}
		// Only the ephemeral containers come through: the other changes
		// (image, labels, status) are dropped.
		change := pod.DeepCopy()
		change.Spec.EphemeralContainers = []corev1.EphemeralContainer{debugContainer("dbg", nil)}
		change.Spec.Containers[0].Image = "nginx"
		change.Labels = map[string]string{"changed": "yes"}
		change.Status.Phase = corev1.PodSucceeded
		updated, err := pods.UpdateEphemeralContainers(ctx, "add", change, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(updated.Spec.EphemeralContainers) != 1 || updated.Spec.EphemeralContainers[0].Name != "dbg" {
			t.Errorf("ephemeral containers after PUT: %+v", updated.Spec.EphemeralContainers)
		}
		if updated.Spec.Containers[0].Image != "busybox" || updated.Labels["app"] != "add" || updated.Labels["changed"] != "" || updated.Status.Phase != corev1.PodPending {
			t.Errorf("PUT changed more than the ephemeral containers: image %q labels %v phase %q", updated.Spec.Containers[0].Image, updated.Labels, updated.Status.Phase)
		}
		// Upstream counts the spec change in metadata.generation.
		if updated.Generation != pod.Generation+1 {
			t.Errorf("generation %d after adding an ephemeral container to a pod of generation %d, want +1", updated.Generation, pod.Generation)
		}

		// kubectl debug sends a strategic merge patch (merge by name).
		smp := `{"spec":{"ephemeralContainers":[{"name":"dbg2","image":"busybox","targetContainerName":"init","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}]}}`
		patched, err := pods.Patch(ctx, "add", types.StrategicMergePatchType, []byte(smp), metav1.PatchOptions{}, "ephemeralcontainers")
		if err != nil {
			t.Fatal(err)
		}
		if names := slices.Sorted(slices.Values(ecNames(patched))); !slices.Equal(names, []string{"dbg", "dbg2"}) {
			t.Errorf("after the strategic merge patch: %v, want [dbg dbg2]", names)
		}
		jsonPatch := `[{"op":"add","path":"/spec/ephemeralContainers/-","value":{"name":"dbg3","image":"busybox","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}}]`
		patched, err = pods.Patch(ctx, "add", types.JSONPatchType, []byte(jsonPatch), metav1.PatchOptions{}, "ephemeralcontainers")
		if err != nil {
			t.Fatal(err)
		}
		if names := ecNames(patched); len(names) != 3 || names[2] != "dbg3" {
			t.Errorf("after the JSON patch: %v, want dbg3 appended", names)
		}
		// Defaults apply to what the subresource adds.
		if ec := patched.Spec.EphemeralContainers[len(patched.Spec.EphemeralContainers)-1]; ec.TerminationMessagePath != "/dev/termination-log" {
			t.Errorf("dbg3's terminationMessagePath %q, want the default /dev/termination-log", ec.TerminationMessagePath)
		}
		// Server-side apply adds only the ephemeral containers, yet, as
		// upstream, attributes all it sent (the label too) to its manager.
		apply := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"add","labels":{"ignored":"yes"}},"spec":{"ephemeralContainers":[{"name":"dbg4","image":"busybox","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}]}}`
		patched, err = pods.Patch(ctx, "add", types.ApplyPatchType, []byte(apply), metav1.PatchOptions{FieldManager: "debugger"}, "ephemeralcontainers")
		if err != nil {
			t.Fatal(err)
		}
		if names := ecNames(patched); len(names) != 4 || !slices.Contains(names, "dbg4") || patched.Labels["ignored"] != "" {
			t.Errorf("after server-side apply: %v, labels %v; want dbg4 added, no label", names, patched.Labels)
		}
		i := slices.IndexFunc(patched.ManagedFields, func(m metav1.ManagedFieldsEntry) bool { return m.Manager == "debugger" })
		if i < 0 {
			t.Errorf("no managed fields of debugger: %+v", patched.ManagedFields)
		} else if m := patched.ManagedFields[i]; m.Subresource != "ephemeralcontainers" || !strings.Contains(string(m.FieldsV1.Raw), "dbg4") || !strings.Contains(string(m.FieldsV1.Raw), "f:ignored") {
			t.Errorf("debugger's managed fields: subresource %q, %s; want ephemeralcontainers, dbg4 and the label", m.Subresource, m.FieldsV1.Raw)
		}
		// The pod's own updates keep working with ephemeral containers.
		image := `{"spec":{"containers":[{"name":"app","image":"busybox:1.36"}]}}`
		if p, err := pods.Patch(ctx, "add", types.StrategicMergePatchType, []byte(image), metav1.PatchOptions{}); err != nil || len(p.Spec.EphemeralContainers) != 4 {
			t.Errorf("image update of a pod with ephemeral containers: %v", err)
		} else {
			patched = p
		}
		// A reordering patch (merge patch replaces the list) is no change.
		reordered := patched.DeepCopy()
		ecs := reordered.Spec.EphemeralContainers
		ecs[0], ecs[2] = ecs[2], ecs[0]
		if _, err := pods.UpdateEphemeralContainers(ctx, "add", reordered, metav1.UpdateOptions{}); err != nil {
			t.Errorf("reordered ephemeral containers: %v", err)
		}
	})

	t.Run("invalid", func(t *testing.T) {
		pod := newPod(t, "invalid")
		pod.Spec.EphemeralContainers = []corev1.EphemeralContainer{debugContainer("dbg", nil)}
		pod, err := pods.UpdateEphemeralContainers(ctx, "invalid", pod, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ec := "spec.ephemeralContainers"
		ec1 := ec + "[1]"
		for _, c := range []struct {
			name   string
			change func(ecs []corev1.EphemeralContainer) []corev1.EphemeralContainer
			// want are the causes' "type field: message" (message may be a prefix).
			want []string
		}{
			{"removed", func([]corev1.EphemeralContainer) []corev1.EphemeralContainer { return nil },
				[]string{`FieldValueForbidden ` + ec + `: Forbidden: existing ephemeral containers "dbg" may not be removed`}},
			{"changed", func(ecs []corev1.EphemeralContainer) []corev1.EphemeralContainer {
				ecs[0].Image = "nginx"
				return ecs
			}, []string{`FieldValueForbidden ` + ec + `: Forbidden: existing ephemeral containers "dbg" may not be changed`}},
			{"ports, probes, lifecycle, resources, restartPolicy", add(func(e *corev1.EphemeralContainer) {
				e.Ports = []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}}
				e.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
				e.LivenessProbe = e.ReadinessProbe
				e.StartupProbe = e.ReadinessProbe
				e.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
				e.Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
				e.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
				e.ResizePolicy = []corev1.ContainerResizePolicy{{ResourceName: corev1.ResourceCPU, RestartPolicy: corev1.NotRequired}}
			}), []string{
				`FieldValueForbidden ` + ec1 + `.resizePolicy: Forbidden: cannot be set for an Ephemeral Container`,
				`FieldValueForbidden ` + ec1 + `.ports: Forbidden: cannot be set for an Ephemeral Container`,
				`FieldValueForbidden ` + ec1 + `.resources: Forbidden: cannot be set for an Ephemeral Container`,
				`FieldValueForbidden ` + ec1 + `.restartPolicy: Forbidden: cannot be set for an Ephemeral Container`,
				`FieldValueForbidden ` + ec1 + `.livenessProbe: Forbidden: cannot be set for an Ephemeral Container`,
				`FieldValueForbidden ` + ec1 + `.readinessProbe: Forbidden: cannot be set for an Ephemeral Container`,
				`FieldValueForbidden ` + ec1 + `.startupProbe: Forbidden: cannot be set for an Ephemeral Container`,
				`FieldValueForbidden ` + ec1 + `.lifecycle: Forbidden: cannot be set for an Ephemeral Container`,
			}},
			{"name of a container", add(func(e *corev1.EphemeralContainer) { e.Name = "app" }),
				[]string{`FieldValueDuplicate ` + ec1 + `.name: Duplicate value: "app"`}},
			{"name of an init container", add(func(e *corev1.EphemeralContainer) { e.Name = "init" }),
				[]string{`FieldValueDuplicate ` + ec1 + `.name: Duplicate value: "init"`}},
			// As upstream, the later of two same-named containers is the
			// one compared with the stored one.
			{"name of an ephemeral container", add(func(e *corev1.EphemeralContainer) { e.Name = "dbg"; e.Image = "nginx" }), []string{
				`FieldValueDuplicate ` + ec1 + `.name: Duplicate value: "dbg"`,
				`FieldValueForbidden ` + ec + `: Forbidden: existing ephemeral containers "dbg" may not be changed`,
			}},
			{"unknown target", add(func(e *corev1.EphemeralContainer) { e.TargetContainerName = "nope" }),
				[]string{`FieldValueNotFound ` + ec1 + `.targetContainerName: Not found: "nope"`}},
			{"ephemeral target", add(func(e *corev1.EphemeralContainer) { e.TargetContainerName = "dbg" }),
				[]string{`FieldValueNotFound ` + ec1 + `.targetContainerName: Not found: "dbg"`}},
			{"subPath", add(func(e *corev1.EphemeralContainer) {
				e.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data", SubPath: "x"}}
			}), []string{`FieldValueForbidden ` + ec1 + `.volumeMounts[0].subPath: Forbidden: cannot be set for an Ephemeral Container`}},
			{"unknown volume", add(func(e *corev1.EphemeralContainer) {
				e.VolumeMounts = []corev1.VolumeMount{{Name: "nope", MountPath: "/data"}}
			}), []string{`FieldValueNotFound ` + ec1 + `.volumeMounts[0].name: Not found: "nope"`}},
			{"no image, bad name", add(func(e *corev1.EphemeralContainer) { e.Image = ""; e.Name = "Bad_Name" }), []string{
				`FieldValueInvalid ` + ec1 + `.name: Invalid value: "Bad_Name": a lowercase RFC 1123 label`,
				`FieldValueRequired ` + ec1 + `.image: Required value`,
			}},
		} {
			t.Run(c.name, func(t *testing.T) {
				change := pod.DeepCopy()
				change.Spec.EphemeralContainers = c.change(change.Spec.EphemeralContainers)
				_, err := pods.UpdateEphemeralContainers(ctx, "invalid", change, metav1.UpdateOptions{})
				checkInvalid(t, err, "invalid", c.want)
			})
		}
		// Nothing was stored.
		got, err := pods.Get(ctx, "invalid", metav1.GetOptions{})
		if err != nil || got.ResourceVersion != pod.ResourceVersion || !slices.Equal(ecNames(got), []string{"dbg"}) {
			t.Errorf("after the refused updates: %v %v rv %s, want [dbg] rv %s", ecNames(got), err, got.ResourceVersion, pod.ResourceVersion)
		}
	})

	t.Run("podUpdate", func(t *testing.T) {
		// Neither create nor an update of the pod may set them (upstream).
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "create"}, Spec: corev1.PodSpec{
			Containers:          []corev1.Container{{Name: "app", Image: "busybox"}},
			EphemeralContainers: []corev1.EphemeralContainer{debugContainer("dbg", nil)}}}
		_, err := pods.Create(ctx, p, metav1.CreateOptions{})
		checkInvalid(t, err, "create", []string{`FieldValueForbidden spec.ephemeralContainers: Forbidden: cannot be set on create`})
		pod := newPod(t, "update")
		pod.Spec.EphemeralContainers = []corev1.EphemeralContainer{debugContainer("dbg", nil)}
		_, err = pods.Update(ctx, pod, metav1.UpdateOptions{})
		checkInvalid(t, err, "update", []string{`FieldValueForbidden spec: Forbidden: pod updates may not change fields other than`})
		patch := `{"spec":{"ephemeralContainers":[{"name":"dbg","image":"busybox","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}]}}`
		_, err = pods.Patch(ctx, "update", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
		checkInvalid(t, err, "update", []string{`FieldValueForbidden spec: Forbidden: pod updates may not change fields other than`})
	})

	t.Run("static", func(t *testing.T) {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "static", Annotations: map[string]string{corev1.MirrorPodAnnotationKey: "x"}},
			Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}}
		pod, err := pods.Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Skipf("creating a mirror pod as the admin: %v", err)
		}
		pod.Spec.EphemeralContainers = []corev1.EphemeralContainer{debugContainer("dbg", nil)}
		_, err = pods.UpdateEphemeralContainers(ctx, "static", pod, metav1.UpdateOptions{})
		checkInvalid(t, err, "static", []string{`FieldValueForbidden []: Forbidden: static pods do not support ephemeral containers`})
	})

	t.Run("codes", func(t *testing.T) {
		missing := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "missing"}}
		if _, err := pods.UpdateEphemeralContainers(ctx, "missing", missing, metav1.UpdateOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("PUT on a missing pod: %v, want 404", err)
		}
		if _, err := pods.Patch(ctx, "missing", types.StrategicMergePatchType, []byte(`{}`), metav1.PatchOptions{}, "ephemeralcontainers"); !apierrors.IsNotFound(err) {
			t.Errorf("PATCH on a missing pod: %v, want 404", err)
		}
		if err := client.CoreV1().RESTClient().Get().Namespace("default").Resource("pods").Name("missing").SubResource("ephemeralcontainers").Do(ctx).Error(); !apierrors.IsNotFound(err) {
			t.Errorf("GET on a missing pod: %v, want 404", err)
		}
		pod := newPod(t, "conflict")
		stale := pod.DeepCopy()
		pod.Spec.EphemeralContainers = []corev1.EphemeralContainer{debugContainer("dbg", nil)}
		if _, err := pods.UpdateEphemeralContainers(ctx, "conflict", pod, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		stale.Spec.EphemeralContainers = []corev1.EphemeralContainer{debugContainer("other", nil)}
		if _, err := pods.UpdateEphemeralContainers(ctx, "conflict", stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
			t.Errorf("PUT with a stale resourceVersion: %v, want 409", err)
		}
	})

	t.Run("rbac", func(t *testing.T) {
		// Upstream's edit role may update pods but not add ephemeral
		// containers: that needs its own grant.
		newPod(t, "rbac")
		bind := func(user, kind, role string) {
			_, err := client.RbacV1().RoleBindings("default").Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: user},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: role},
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
		}
		bind("editor", "ClusterRole", "system:aggregate-to-edit")
		if _, err := client.RbacV1().Roles("default").Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "debugger"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods/ephemeralcontainers"}, Verbs: []string{"patch"}}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		bind("debugger", "Role", "debugger")
		as := func(user string) *kubernetes.Clientset {
			c := restclient.CopyConfig(cfg)
			c.Impersonate = restclient.ImpersonationConfig{UserName: user}
			return kubernetes.NewForConfigOrDie(c)
		}
		patch := []byte(`{"spec":{"ephemeralContainers":[{"name":"dbg","image":"busybox","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}]}}`)
		editor := as("editor").CoreV1().Pods("default")
		integration.Eventually(t, 10*time.Second, func() string {
			if _, err := editor.Patch(ctx, "rbac", types.MergePatchType, []byte(`{"metadata":{"labels":{"edited":"yes"}}}`), metav1.PatchOptions{}); err != nil {
				return fmt.Sprintf("editor's patch of the pod: %v", err)
			}
			return ""
		})
		if _, err := editor.Patch(ctx, "rbac", types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "ephemeralcontainers"); !apierrors.IsForbidden(err) {
			t.Errorf("edit role's patch of pods/ephemeralcontainers: %v, want 403", err)
		}
		debugger := as("debugger").CoreV1().Pods("default")
		integration.Eventually(t, 10*time.Second, func() string {
			if _, err := debugger.Patch(ctx, "rbac", types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "ephemeralcontainers"); err != nil {
				return fmt.Sprintf("patch with a grant of pods/ephemeralcontainers: %v", err)
			}
			return ""
		})
	})
}

// add returns a change appending a debug container changed by f.
func add(f func(*corev1.EphemeralContainer)) func([]corev1.EphemeralContainer) []corev1.EphemeralContainer {
	return func(ecs []corev1.EphemeralContainer) []corev1.EphemeralContainer {
		return append(ecs, debugContainer("dbg2", f))
	}
}

func ecNames(p *corev1.Pod) []string {
	var names []string
	for _, ec := range p.Spec.EphemeralContainers {
		names = append(names, ec.Name)
	}
	return names
}

// checkInvalid wants a 422 on pod name whose causes are exactly want
// ("type field: message prefix"), in any order.
func checkInvalid(t *testing.T, err error, name string, want []string) {
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
