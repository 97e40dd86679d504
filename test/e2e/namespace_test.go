package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestNamespaceDeletionConditions: a namespace whose content waits for a
// finalizer stays Terminating with upstream's deletion conditions saying
// what remains, and goes once the finalizer does.
func TestNamespaceDeletionConditions(t *testing.T) {
	srv := sharedServer(t)
	admin := adminClient(t, srv)
	ctx := context.Background()
	const ns = "e2e-ns-conditions"
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held",
		Finalizers: []string{"example.com/hold"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := admin.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := map[corev1.NamespaceConditionType]string{
		corev1.NamespaceDeletionDiscoveryFailure: "False ResourcesDiscovered All resources successfully discovered",
		corev1.NamespaceDeletionGVParsingFailure: "False ParsedGroupVersions All legacy kube types successfully parsed",
		corev1.NamespaceDeletionContentFailure:   "False ContentDeleted All content successfully deleted, may be waiting on finalization",
		corev1.NamespaceContentRemaining:         "True SomeResourcesRemain Some resources are remaining: configmaps. has 1 resource instances",
		corev1.NamespaceFinalizersRemaining:      "True SomeFinalizerRemain Some finalizers are remaining: example.com/hold in 1 resource instances",
	}
	eventually(t, 30*time.Second, func() string {
		got, err := admin.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if got.Status.Phase != corev1.NamespaceTerminating {
			return fmt.Sprintf("phase %s", got.Status.Phase)
		}
		for _, c := range got.Status.Conditions {
			if w, ok := want[c.Type]; ok && fmt.Sprintf("%s %s %s", c.Status, c.Reason, c.Message) != w {
				return fmt.Sprintf("condition %s: %s %s %s, want %s", c.Type, c.Status, c.Reason, c.Message, w)
			}
		}
		if len(got.Status.Conditions) != len(want) {
			return fmt.Sprintf("conditions %+v", got.Status.Conditions)
		}
		return ""
	})
	if _, err := admin.CoreV1().ConfigMaps(ns).Patch(ctx, "held", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() string {
		if _, err := admin.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Sprintf("namespace still there (%v)", err)
		}
		return ""
	})
}
