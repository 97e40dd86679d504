package namespace

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/test/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}

// What "[sig-api-machinery] OrderedNamespaceDeletion namespace deletion
// should delete pod first" checks, on a real skiff server: while a pod of
// a Terminating namespace is held by a finalizer, the namespace's other
// content (a ConfigMap) is not deleted; once the pod is gone, it is, and
// the namespace goes too.
func TestPodsAreDeletedFirst(t *testing.T) {
	s := harness.StartSkiffTest(t, harness.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := kubernetes.NewForConfigOrDie(s.AdminConfig(t))

	const ns, finalizer = "nsdeletetest", "e2e.example.com/finalizer"
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the default ServiceAccount", func() (bool, error) {
		_, err := c.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "test-pod", Finalizers: []string{finalizer}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "pause", Image: "registry.k8s.io/pause:3.10"}}}}
	if _, err := c.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "test-configmap"}, Data: map[string]string{"key": "value"}}
	if _, err := c.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// The controller has processed the namespace (the e2e spec waits for the
	// NamespaceDeletionContentFailure condition) and marked the pod deleted.
	poll(t, ctx, "the namespace's deletion conditions and the pod's deletionTimestamp", func() (bool, error) {
		got, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if got.Status.Phase != corev1.NamespaceTerminating || condition(got, corev1.NamespaceDeletionContentFailure) == nil {
			return false, nil
		}
		p, err := c.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return p.DeletionTimestamp != nil, nil
	})
	// Several passes of the controller (it retries every 2 s) leave the
	// ConfigMap alone while the pod is there.
	for deadline := time.Now().Add(3*retryAfter + time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		got, err := c.CoreV1().ConfigMaps(ns).Get(ctx, cm.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the ConfigMap while the pod is still there: %v", err)
		}
		if got.DeletionTimestamp != nil {
			t.Fatalf("the ConfigMap is being deleted while the pod is still there")
		}
	}
	if _, err := c.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{}); err != nil {
		t.Fatalf("the pod, held by its finalizer: %v", err)
	}

	patch := []byte(`{"metadata":{"finalizers":null}}`)
	if _, err := c.CoreV1().Pods(ns).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the ConfigMap and the namespace to be gone", func() (bool, error) {
		if _, err := c.CoreV1().ConfigMaps(ns).Get(ctx, cm.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return false, nil
		}
		_, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

func poll(t *testing.T, ctx context.Context, what string, done func() (bool, error)) {
	t.Helper()
	var lastErr error
	for {
		ok, err := done()
		if ok {
			return
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v (last error %v)", what, ctx.Err(), lastErr)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// While pods hold the rest back, upstream updates the conditions before it
// totals the remaining content: only failures show.
func TestConditionsWhileWaitingForPods(t *testing.T) {
	d := &deletion{remainingByResource: map[schema.GroupVersionResource]int{podsGVR: 1},
		remainingByFinalizer: map[string]int{"e2e.example.com/finalizer": 1}, waitingForPods: true,
		contentErrs: []error{errors.New("failed to delete v1/pods: boom")}}
	got := d.conditions()
	if len(got) != 1 || got[0].Type != corev1.NamespaceDeletionContentFailure {
		t.Errorf("conditions %+v, want only NamespaceDeletionContentFailure", got)
	}
	d.waitingForPods = false
	if got := d.conditions(); len(got) != 3 {
		t.Errorf("conditions %+v, want the failure and both remaining conditions", got)
	}
}
