package apiserver_test

import (
	"slices"
	"sync"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

// warnings collects the Warning headers a client receives.
type warnings struct {
	mu   sync.Mutex
	seen []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = append(w.seen, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.seen
	w.seen = nil
	return out
}

// TestUpstreamWarnings: the writes upstream answers with a Warning header
// get the same warning.
func TestUpstreamWarnings(t *testing.T) {
	ctx := testCtx(t)
	ns := newNamespace(t)
	w := &warnings{}
	c := restclient.CopyConfig(cfg)
	c.WarningHandler = w
	client := kubernetes.NewForConfigOrDie(c)
	check := func(what string, want ...string) {
		t.Helper()
		if got := w.take(); !slices.Equal(got, want) {
			t.Errorf("%s: warnings %q, want %q", what, got, want)
		}
	}

	_, err := client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": []byte("x"), "tls.key": []byte("y")}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	check("TLS Secret without PEM data", "tls: failed to find any PEM data in certificate input")

	_, err = client.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "fqdn"},
		AddressType: discoveryv1.AddressTypeFQDN, Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"a.example.com"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	check("FQDN EndpointSlice", "spec.addressType: FQDN endpoints are deprecated")

	driver := &storagev1.CSIDriver{ObjectMeta: metav1.ObjectMeta{Name: "warn." + ns + ".example.com"},
		Spec: storagev1.CSIDriverSpec{TokenRequests: []storagev1.TokenRequest{{Audience: "a"}}}}
	if _, err := client.StorageV1().CSIDrivers().Create(ctx, driver, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.StorageV1().CSIDrivers().Delete(testCtx(t), driver.Name, metav1.DeleteOptions{}) })
	check("CSIDriver with token requests", "spec.serviceAccountTokenInSecrets is unset; if supported by this CSI driver, set to true to prevent possible logging of tokens in volume attributes")

	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "j"}, Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}
	for _, name := range []string{"j1", "j2"} {
		job.Name = name
		if _, err := client.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	w.take()
	if err := client.BatchV1().Jobs(ns).Delete(ctx, "j1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	check("Job deleted without a propagation policy", "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning")
	if err := client.BatchV1().Jobs(ns).Delete(ctx, "j2", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}); err != nil {
		t.Fatal(err)
	}
	check("Job deleted with a propagation policy")
}
