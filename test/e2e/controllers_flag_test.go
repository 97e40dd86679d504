package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/test/harness"
)

// TestControllersFlag: --controllers takes kube-controller-manager's names
// and syntax. A server started with "*,-serviceaccount-controller" runs
// the other controllers (a new namespace gets kube-root-ca.crt) but gives
// it no default ServiceAccount; unknown names are refused in upstream's
// words.
func TestControllersFlag(t *testing.T) {
	bin, err := harness.SkiffBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"controller-manager", "--kubeconfig", "x", "--controllers", "*,-no-such-controller"},
		{"server", "--data-dir", t.TempDir(), "--controllers", "no-such-controller"},
	} {
		r := runProcess(procOpts{}, bin, args...)
		// klog quotes the message: compare without the quotes.
		out := strings.ReplaceAll(r.combined(), `\"`, `"`)
		if want := `"no-such-controller" is not in the list of known controllers`; r.err == nil || !strings.Contains(out, want) {
			t.Errorf("skiff %v: %v %q, want an error with %q", args, r.err, abbreviate(r.combined()), want)
		}
	}

	srv, err := harness.StartSkiff(context.Background(), harness.Options{Args: []string{"--controllers", "*,-serviceaccount-controller"}})
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, srv)
	admin := adminClient(t, srv)
	ctx := context.Background()
	const ns = "no-sa-controller"
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() string {
		if _, err := admin.CoreV1().ConfigMaps(ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{}); err != nil {
			return "the root CA publisher did not run: " + err.Error()
		}
		return ""
	})
	// The publisher acted on the namespace; the ServiceAccount controller
	// would have within the same moment.
	time.Sleep(2 * time.Second)
	if _, err := admin.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("default ServiceAccount with serviceaccount-controller disabled: %v, want NotFound", err)
	}
	if !strings.Contains(srv.LogTail(400), `"Warning: controller is disabled" controller="serviceaccount-controller"`) {
		t.Errorf("the log does not say serviceaccount-controller is disabled")
	}
}
