package apiserver_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/version"
)

// TestSystemNamespaces: the post-start hook created the four namespaces
// before the server announced readiness.
func TestSystemNamespaces(t *testing.T) {
	ctx := testCtx(t)
	for _, name := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		ns, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("namespace %s: %v", name, err)
			continue
		}
		if ns.Status.Phase != "Active" {
			t.Errorf("namespace %s has phase %q, want Active", name, ns.Status.Phase)
		}
	}
}

func TestVersion(t *testing.T) {
	info, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(info.GitVersion, "v1.37.2-skiff") {
		t.Errorf("gitVersion %q does not start with v1.37.2-skiff", info.GitVersion)
	}
	if info.Major != "1" || info.Minor != "37" {
		t.Errorf("major.minor = %s.%s, want 1.37", info.Major, info.Minor)
	}
}

// TestHealthAndMetricsEndpoints: the admin reaches every health endpoint and
// /metrics; /readyz checks etcd and the namespace hook.
func TestHealthAndMetricsEndpoints(t *testing.T) {
	for _, tc := range []struct {
		path string
		want []string // substrings of the body
	}{
		{"/healthz", []string{"ok"}},
		{"/livez", []string{"ok"}},
		{"/readyz", []string{"ok"}},
		{"/readyz?verbose", []string{"[+]etcd ok", "[+]poststarthook/skiff-system-namespaces ok", "readyz check passed"}},
		{"/livez?verbose", []string{"[+]etcd ok", "livez check passed"}},
		{"/healthz/etcd", []string{"ok"}},
		{"/metrics", []string{"apiserver_request_total", "etcd_request_duration_seconds"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := do(t, nil, http.MethodGet, tc.path, nil, nil)
			if r.code != http.StatusOK {
				t.Fatalf("GET %s = %d, want 200:\n%s", tc.path, r.code, r.body)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(r.body), w) {
					t.Errorf("GET %s body lacks %q:\n%.2000s", tc.path, w, r.body)
				}
			}
		})
	}
}

// TestAnonymous: without a client certificate the public info paths answer
// and the API refuses.
func TestAnonymous(t *testing.T) {
	caPEM, err := os.ReadFile(filepath.Join(srvOpts.PKIDir(), "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA certificate in ca.crt")
	}
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	r := do(t, anon, http.MethodGet, "/version", nil, nil)
	if r.code != http.StatusOK {
		t.Fatalf("anonymous GET /version = %d, want 200:\n%s", r.code, r.body)
	}
	var info version.Info
	if err := json.Unmarshal(r.body, &info); err != nil || !strings.HasPrefix(info.GitVersion, "v1.37.2-skiff") {
		t.Errorf("anonymous /version body %s (err %v)", r.body, err)
	}
	for _, p := range []string{"/healthz", "/livez", "/readyz"} {
		if r := do(t, anon, http.MethodGet, p, nil, nil); r.code != http.StatusOK || string(r.body) != "ok" {
			t.Errorf("anonymous GET %s = %d %q, want 200 ok", p, r.code, r.body)
		}
	}
	for _, p := range []string{"/api/v1/namespaces", "/api/v1/namespaces/default/configmaps", "/metrics", "/apis/apps/v1/deployments"} {
		r := do(t, anon, http.MethodGet, p, nil, nil)
		if r.code != http.StatusUnauthorized && r.code != http.StatusForbidden {
			t.Errorf("anonymous GET %s = %d, want 401 or 403:\n%s", p, r.code, r.body)
			continue
		}
		if r.header.Get("Content-Type") == "application/json" {
			if s := r.status(t); !apierrors.IsForbidden(apierrors.FromObject(&s)) && !apierrors.IsUnauthorized(apierrors.FromObject(&s)) {
				t.Errorf("anonymous GET %s: status reason %q", p, s.Reason)
			}
		}
	}
	// An anonymous write is refused as well.
	r = do(t, anon, http.MethodPost, "/api/v1/namespaces/default/configmaps", nil,
		[]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"anon"}}`))
	if r.code != http.StatusUnauthorized && r.code != http.StatusForbidden {
		t.Errorf("anonymous POST configmap = %d, want 401 or 403:\n%s", r.code, r.body)
	}
	if _, err := cs.CoreV1().ConfigMaps("default").Get(testCtx(t), "anon", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the anonymous ConfigMap exists or get failed otherwise: %v", err)
	}
}

// TestImmortalNamespaces: default, kube-system and kube-public cannot be
// deleted; kube-node-lease can, as upstream. Dry runs, so nothing goes.
func TestImmortalNamespaces(t *testing.T) {
	ctx := testCtx(t)
	dryRun := metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}
	for _, name := range []string{"default", "kube-system", "kube-public"} {
		err := cs.CoreV1().Namespaces().Delete(ctx, name, dryRun)
		s := wantStatusErr(t, err, 403, metav1.StatusReasonForbidden)
		if want := `namespaces "` + name + `" is forbidden: this namespace may not be deleted`; s.Message != want {
			t.Errorf("message\n got %s\nwant %s", s.Message, want)
		}
	}
	if err := cs.CoreV1().Namespaces().Delete(ctx, "kube-node-lease", dryRun); err != nil {
		t.Errorf("deleting kube-node-lease (dry run): %v", err)
	}
}

// TestTerminatingNamespaceStatusUpdate: updating a Terminating namespace's
// status (the namespace controller writes its deletion conditions) does
// not remove it while spec.finalizers remain; /finalize emptying them does.
func TestTerminatingNamespaceStatusUpdate(t *testing.T) {
	ctx := testCtx(t)
	name := newNamespace(t)
	namespaces := cs.CoreV1().Namespaces()
	if err := namespaces.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ns, err := namespaces.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.Status.Conditions = append(ns.Status.Conditions, corev1.NamespaceCondition{Type: corev1.NamespaceContentRemaining,
		Status: corev1.ConditionTrue, Reason: "SomeResourcesRemain", Message: "Some resources are remaining: pods. has 1 resource instances"})
	if ns, err = namespaces.UpdateStatus(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := namespaces.Get(ctx, name, metav1.GetOptions{}); err != nil {
		t.Fatalf("the namespace went with a status update while spec.finalizers %v remained: %v", ns.Spec.Finalizers, err)
	}
	ns.Spec.Finalizers = nil
	if _, err := namespaces.Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := namespaces.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after /finalize emptied spec.finalizers: %v, want NotFound", err)
	}
}

// TestPatchEmptyingFinalizersDeletes: a merge patch that removes the last
// finalizer of a deleted object removes the object (the bad-input guard
// must not turn the store's own signal into a 400).
func TestPatchEmptyingFinalizersDeletes(t *testing.T) {
	ctx := testCtx(t)
	ns := newNamespace(t)
	cms := cs.CoreV1().ConfigMaps(ns)
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"example.com/hold"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "held", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Patch(ctx, "held", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatalf("removing the finalizer: %v", err)
	}
	if _, err := cms.Get(ctx, "held", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after its last finalizer went: %v, want NotFound", err)
	}
}
