package garbagecollector_test

// Against a real skiff API server (apiserver.Run on its embedded etcd),
// the garbage collector alone as skiff runs it (controllers.Run, as its
// ServiceAccount generic-garbage-collector, so its RBAC role is exercised).

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/controllers"
	"github.com/skiff-dev/skiff/test/integration"
)

type env struct {
	cfg *restclient.Config
	cs  kubernetes.Interface
	dyn dynamic.Interface
}

func TestGarbageCollector(t *testing.T) {
	cfg := integration.StartAPIServer(t, integration.ServerOptions{
		LogFilter: func(l string) bool {
			return strings.Contains(strings.ToLower(l), "garbage") || strings.Contains(l, "item")
		},
		LogLines:  120,
		Verbosity: 2,
	})
	integration.RunControllers(t, cfg, controllers.Options{Controllers: []string{"garbage-collector-controller"},
		UseServiceAccountCredentials: true})
	e := &env{cfg: cfg, cs: kubernetes.NewForConfigOrDie(cfg), dyn: dynamic.NewForConfigOrDie(cfg)}
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *env, string)
	}{
		{"background", testBackground},
		{"foreground", testForeground},
		{"orphan", testOrphan},
		{"dangling", testDangling},
		{"cross-namespace", testCrossNamespace},
		{"cluster-scoped-dependent", testClusterScopedDependent},
		{"replicationcontroller-default-policy", testRCDefaultPolicy},
		{"custom-resource", testCustomResource},
		{"dependency-circle", testDependencyCircle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := "gc-" + tc.name
			if _, err := e.cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			tc.fn(t, e, ns)
		})
	}
}

func ref(kind, apiVersion string, m metav1.Object, block bool) metav1.OwnerReference {
	r := metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: m.GetName(), UID: m.GetUID()}
	if block {
		r.BlockOwnerDeletion = ptr.To(true)
	}
	return r
}

func cmRef(cm *corev1.ConfigMap, block bool) metav1.OwnerReference {
	return ref("ConfigMap", "v1", cm, block)
}

func createCM(t *testing.T, e *env, ns, name string, finalizers []string, owners ...metav1.OwnerReference) *corev1.ConfigMap {
	t.Helper()
	cm, err := e.cs.CoreV1().ConfigMaps(ns).Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: name, OwnerReferences: owners, Finalizers: finalizers}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

func deleteWith(t *testing.T, e *env, ns, name string, policy *metav1.DeletionPropagation) {
	t.Helper()
	if err := e.cs.CoreV1().ConfigMaps(ns).Delete(context.Background(), name, metav1.DeleteOptions{PropagationPolicy: policy}); err != nil {
		t.Fatal(err)
	}
}

// gone: the ConfigMaps are not found.
func gone(e *env, ns string, names ...string) string {
	for _, n := range names {
		if _, err := e.cs.CoreV1().ConfigMaps(ns).Get(context.Background(), n, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Sprintf("configmap %s still there (%v)", n, err)
		}
	}
	return ""
}

func getCM(t *testing.T, e *env, ns, name string) *corev1.ConfigMap {
	t.Helper()
	cm, err := e.cs.CoreV1().ConfigMaps(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

// stays: f keeps returning "" for d.
func stays(t *testing.T, d time.Duration, f func() string) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if msg := f(); msg != "" {
			t.Fatal(msg)
		}
	}
}

func exists(e *env, ns string, names ...string) func() string {
	return func() string {
		for _, n := range names {
			if _, err := e.cs.CoreV1().ConfigMaps(ns).Get(context.Background(), n, metav1.GetOptions{}); err != nil {
				return fmt.Sprintf("configmap %s: %v", n, err)
			}
		}
		return ""
	}
}

// Background: the owner goes at once, then its dependents (blocking or
// not) and theirs; a dependent with another owner left stays and loses
// only its reference to the deleted one.
func testBackground(t *testing.T, e *env, ns string) {
	owner := createCM(t, e, ns, "owner", nil)
	other := createCM(t, e, ns, "other-owner", nil)
	a := createCM(t, e, ns, "dep-a", nil, cmRef(owner, true))
	createCM(t, e, ns, "dep-b", nil, cmRef(owner, false))
	createCM(t, e, ns, "grandchild", nil, cmRef(a, false))
	createCM(t, e, ns, "shared", nil, cmRef(owner, false), cmRef(other, false))
	deleteWith(t, e, ns, "owner", ptr.To(metav1.DeletePropagationBackground))
	integration.Eventually(t, 30*time.Second, func() string { return gone(e, ns, "owner", "dep-a", "dep-b", "grandchild") })
	integration.Eventually(t, 10*time.Second, func() string {
		s, err := e.cs.CoreV1().ConfigMaps(ns).Get(context.Background(), "shared", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != other.UID {
			return fmt.Sprintf("shared's ownerReferences %+v, want only other-owner's", s.OwnerReferences)
		}
		return ""
	})
}

// Foreground: the owner stays (deletionTimestamp, foregroundDeletion)
// until its blocking dependents are gone; non-blocking ones are deleted
// too but not waited for.
func testForeground(t *testing.T, e *env, ns string) {
	owner := createCM(t, e, ns, "owner", nil)
	createCM(t, e, ns, "blocking", []string{"example.com/hold"}, cmRef(owner, true))
	createCM(t, e, ns, "non-blocking", nil, cmRef(owner, false))
	deleteWith(t, e, ns, "owner", ptr.To(metav1.DeletePropagationForeground))
	integration.Eventually(t, 30*time.Second, func() string {
		b := getCM(t, e, ns, "blocking")
		if b.DeletionTimestamp == nil {
			return "blocking dependent not being deleted"
		}
		return gone(e, ns, "non-blocking")
	})
	o := getCM(t, e, ns, "owner")
	if o.DeletionTimestamp == nil || !slices.Contains(o.Finalizers, metav1.FinalizerDeleteDependents) {
		t.Fatalf("owner: deletionTimestamp %v finalizers %v, want it being deleted with %s", o.DeletionTimestamp, o.Finalizers, metav1.FinalizerDeleteDependents)
	}
	stays(t, 2*time.Second, exists(e, ns, "owner"))
	if _, err := e.cs.CoreV1().ConfigMaps(ns).Patch(context.Background(), "blocking", types.MergePatchType,
		[]byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	integration.Eventually(t, 30*time.Second, func() string { return gone(e, ns, "blocking", "owner") })
}

// Orphan: the dependents lose their reference to the owner (others kept),
// the owner loses the orphan finalizer and goes; the dependents stay.
func testOrphan(t *testing.T, e *env, ns string) {
	owner := createCM(t, e, ns, "owner", nil)
	other := createCM(t, e, ns, "other-owner", nil)
	createCM(t, e, ns, "dep-a", nil, cmRef(owner, true))
	createCM(t, e, ns, "dep-b", nil, cmRef(owner, false), cmRef(other, false))
	deleteWith(t, e, ns, "owner", ptr.To(metav1.DeletePropagationOrphan))
	integration.Eventually(t, 30*time.Second, func() string { return gone(e, ns, "owner") })
	if refs := getCM(t, e, ns, "dep-a").OwnerReferences; len(refs) != 0 {
		t.Errorf("dep-a's ownerReferences %+v, want none", refs)
	}
	if refs := getCM(t, e, ns, "dep-b").OwnerReferences; len(refs) != 1 || refs[0].UID != other.UID {
		t.Errorf("dep-b's ownerReferences %+v, want other-owner's only", refs)
	}
	stays(t, 2*time.Second, exists(e, ns, "dep-a", "dep-b"))
}

// Dangling: an owner that does not exist, or exists with another uid, is
// absent; its dependent goes. An owner of an unknown kind keeps it.
func testDangling(t *testing.T, e *env, ns string) {
	real := createCM(t, e, ns, "real", nil)
	createCM(t, e, ns, "missing-owner", nil, metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "nobody", UID: "no-such-uid"})
	createCM(t, e, ns, "wrong-uid", nil, metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: real.Name, UID: "not-" + real.UID})
	createCM(t, e, ns, "unknown-kind", nil, metav1.OwnerReference{APIVersion: "unknown.example.com/v1", Kind: "Nothing", Name: "x", UID: "unknown-uid"})
	createCM(t, e, ns, "kept", nil, cmRef(real, false))
	integration.Eventually(t, 30*time.Second, func() string { return gone(e, ns, "missing-owner", "wrong-uid") })
	stays(t, 2*time.Second, exists(e, ns, "real", "kept", "unknown-kind"))
}

// Cross-namespace: a reference to an owner in another namespace is
// dangling (owners are looked for in the dependent's namespace), with
// upstream's OwnerRefInvalidNamespace event on the dependent; the owner
// and its own dependents are untouched.
func testCrossNamespace(t *testing.T, e *env, ns string) {
	other := ns + "-owner"
	if _, err := e.cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	owner := createCM(t, e, other, "owner", nil)
	createCM(t, e, other, "valid-child", nil, cmRef(owner, false))
	stays(t, time.Second, exists(e, other, "valid-child"))
	bad := createCM(t, e, ns, "bad-child", nil, cmRef(owner, false))
	integration.Eventually(t, 30*time.Second, func() string { return gone(e, ns, "bad-child") })
	want := fmt.Sprintf(`ownerRef [v1/ConfigMap, namespace: %s, name: owner, uid: %s] does not exist in namespace %q`, ns, owner.UID, ns)
	integration.Eventually(t, 10*time.Second, func() string {
		evs, err := e.cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return err.Error()
		}
		for _, ev := range evs.Items {
			if ev.Reason == "OwnerRefInvalidNamespace" && ev.Type == corev1.EventTypeWarning && ev.Message == want &&
				ev.InvolvedObject.UID == bad.UID && ev.Source.Component == "garbage-collector-controller" {
				return ""
			}
		}
		return fmt.Sprintf("no OwnerRefInvalidNamespace event %q in %+v", want, evs.Items)
	})
	stays(t, 2*time.Second, exists(e, other, "owner", "valid-child"))
}

// A cluster-scoped dependent naming a namespaced owner: upstream neither
// deletes it nor retries it.
func testClusterScopedDependent(t *testing.T, e *env, ns string) {
	owner := createCM(t, e, ns, "owner", nil)
	name := ns + "-role"
	if _, err := e.cs.RbacV1().ClusterRoles().Create(context.Background(), &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{
		Name: name, OwnerReferences: []metav1.OwnerReference{cmRef(owner, false)}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.cs.RbacV1().ClusterRoles().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	stays(t, 3*time.Second, func() string {
		_, err := e.cs.RbacV1().ClusterRoles().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		return ""
	})
}

// An RC deleted without a propagation policy gets the orphan finalizer
// from the API server (its strategy's default); the collector orphans its
// pods and removes it, and the RC goes while the pods stay.
func testRCDefaultPolicy(t *testing.T, e *env, ns string) {
	ctx := context.Background()
	labels := map[string]string{"app": "rc"}
	// Pods need their ServiceAccount (no serviceaccount controller here).
	if _, err := e.cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rc, err := e.cs.CoreV1().ReplicationControllers(ns).Create(ctx, &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "rc"},
		Spec: corev1.ReplicationControllerSpec{Replicas: ptr.To[int32](2), Selector: labels, Template: &corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := e.cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("rc-%d", i), Labels: labels, OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1",
				Kind: "ReplicationController", Name: rc.Name, UID: rc.UID, Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.cs.CoreV1().ReplicationControllers(ns).Delete(ctx, rc.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	integration.Eventually(t, 30*time.Second, func() string {
		got, err := e.cs.CoreV1().ReplicationControllers(ns).Get(ctx, rc.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return ""
		}
		if err != nil {
			return err.Error()
		}
		return fmt.Sprintf("rc still there, finalizers %v", got.Finalizers)
	})
	pods, err := e.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 2 {
		t.Fatalf("%d pods left, want 2", len(pods.Items))
	}
	for _, p := range pods.Items {
		if len(p.OwnerReferences) != 0 || p.DeletionTimestamp != nil {
			t.Errorf("pod %s: ownerReferences %+v deletionTimestamp %v, want orphaned", p.Name, p.OwnerReferences, p.DeletionTimestamp)
		}
	}
}

// A custom resource (CRD created after the collector started) owning a
// ConfigMap: deleting the CR deletes it. A CR owned by a ConfigMap is
// orphaned through a JSON merge patch (custom resources have no strategic
// merge patch) and collected in the background.
func testCustomResource(t *testing.T, e *env, ns string) {
	ctx := context.Background()
	ext := apiextensionsclient.NewForConfigOrDie(e.cfg)
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "gadgets.gc.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "gc.example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "gadgets", Singular: "gadget", Kind: "Gadget", ListKind: "GadgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr.To(true)}}}},
		},
	}
	started := time.Now()
	if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	gadgets := e.dyn.Resource(schema.GroupVersionResource{Group: "gc.example.com", Version: "v1", Resource: "gadgets"}).Namespace(ns)
	newGadget := func(name string, owners ...metav1.OwnerReference) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("gc.example.com/v1")
		u.SetKind("Gadget")
		u.SetName(name)
		u.SetOwnerReferences(owners)
		var got *unstructured.Unstructured
		integration.Eventually(t, 30*time.Second, func() string {
			var err error
			if got, err = gadgets.Create(ctx, u, metav1.CreateOptions{}); err != nil {
				return err.Error()
			}
			return ""
		})
		return got
	}
	g := newGadget("owner")
	createCM(t, e, ns, "owned-by-gadget", nil, ref("Gadget", "gc.example.com/v1", g, true))
	if err := gadgets.Delete(ctx, "owner", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	integration.Eventually(t, 30*time.Second, func() string { return gone(e, ns, "owned-by-gadget") })
	// Discovery is read again soon after a CRD changes, not only every 30s.
	if d := time.Since(started); d > 20*time.Second {
		t.Errorf("CR's dependent collected %s after the CRD was created, want within 20s", d.Round(100*time.Millisecond))
	} else {
		t.Logf("CR's dependent collected %s after the CRD was created", d.Round(100*time.Millisecond))
	}

	owner := createCM(t, e, ns, "owns-gadgets", nil)
	newGadget("orphaned", cmRef(owner, true))
	newGadget("orphaned-too", cmRef(owner, false))
	deleteWith(t, e, ns, "owns-gadgets", ptr.To(metav1.DeletePropagationOrphan))
	integration.Eventually(t, 30*time.Second, func() string {
		if msg := gone(e, ns, "owns-gadgets"); msg != "" {
			return msg
		}
		for _, n := range []string{"orphaned", "orphaned-too"} {
			o, err := gadgets.Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			if len(o.GetOwnerReferences()) != 0 {
				return fmt.Sprintf("gadget %s still has ownerReferences %v", n, o.GetOwnerReferences())
			}
		}
		return ""
	})
	// A dangling reference from a CR: it goes.
	newGadget("dangling", metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "gone", UID: "gone-uid"})
	integration.Eventually(t, 30*time.Second, func() string {
		if _, err := gadgets.Get(ctx, "dangling", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Sprintf("gadget dangling still there (%v)", err)
		}
		return ""
	})
}

// Three pods owning each other in a circle (blockOwnerDeletion), one
// deleted in the foreground: all go (upstream's conformance spec "should
// not be blocked by dependency circle").
func testDependencyCircle(t *testing.T, e *env, ns string) {
	ctx := context.Background()
	if _, err := e.cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := e.cs.CoreV1().Pods(ns)
	var uids []types.UID
	for i := range 3 {
		p, err := pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod%d", i+1)},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		uids = append(uids, p.UID)
	}
	// pod1 → pod3, pod2 → pod1, pod3 → pod2.
	for i, owner := range []int{2, 0, 1} {
		patch := fmt.Sprintf(`{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"Pod","name":"pod%d","uid":"%s","controller":true,"blockOwnerDeletion":true}]}}`, owner+1, uids[owner])
		if _, err := pods.Patch(ctx, fmt.Sprintf("pod%d", i+1), types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := pods.Delete(ctx, "pod1", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground),
		Preconditions: metav1.NewUIDPreconditions(string(uids[0]))}); err != nil {
		t.Fatal(err)
	}
	integration.Eventually(t, 30*time.Second, func() string {
		l, err := pods.List(ctx, metav1.ListOptions{})
		if err != nil {
			return err.Error()
		}
		var left []string
		for _, p := range l.Items {
			left = append(left, fmt.Sprintf("%s (deletionTimestamp %v, finalizers %v, owners %+v)", p.Name, p.DeletionTimestamp, p.Finalizers, p.OwnerReferences))
		}
		if len(left) > 0 {
			return "pods left: " + strings.Join(left, "; ")
		}
		return ""
	})
}
