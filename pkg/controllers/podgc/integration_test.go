package podgc_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/skiff-dev/skiff/pkg/controllers/podgc"
	"github.com/skiff-dev/skiff/test/integration"
)

func eventually(t *testing.T, d time.Duration, f func() error) {
	t.Helper()
	integration.Eventually(t, d, func() string {
		if err := f(); err != nil {
			return err.Error()
		}
		return ""
	})
}

// TestPodGC against a real API server, with short periods: the oldest
// terminated pods beyond the threshold go, a pod of a node that does not
// exist is marked Failed with DisruptionTarget (DeletionByPodGC) and
// force-deleted after the quarantine, and an unscheduled pod being
// deleted is force-deleted (marked Failed). Finalizers keep the deleted
// pods visible.
func TestPodGC(t *testing.T) {
	cfg := integration.StartAPIServer(t, integration.ServerOptions{})
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "here"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := func(name, node string, finalizer bool) *corev1.Pod {
		t.Helper()
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{NodeName: node,
			Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		if finalizer {
			p.Finalizers = []string{"skiff.dev/test"}
		}
		created, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return created
	}
	// Four terminated pods, created a second apart: the two oldest go.
	for i := range 4 {
		p := pod(fmt.Sprintf("done-%d", i), "here", false)
		p.Status.Phase = corev1.PodSucceeded
		if _, err := cs.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond)
	}
	pod("orphan", "gone", true)
	pod("unscheduled", "", true)
	if err := cs.CoreV1().Pods("default").Delete(ctx, "unscheduled", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, n := range []string{"orphan", "unscheduled"} {
			_, _ = cs.CoreV1().Pods("default").Patch(ctx, n, "application/merge-patch+json", []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
		}
	})

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: clientgoscheme.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		t.Fatal(err)
	}
	gc := &podgc.Controller{Client: mgr.GetClient(), Core: cs, TerminatedPodThreshold: 2,
		CheckPeriod: 300 * time.Millisecond, QuarantineTime: 2 * time.Second}
	if err := gc.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	t.Cleanup(func() { cancel(); <-done })
	started := time.Now()

	eventually(t, 10*time.Second, func() error {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		left := map[string]bool{}
		for _, p := range pods.Items {
			left[p.Name] = true
		}
		if left["done-0"] || left["done-1"] || !left["done-2"] || !left["done-3"] {
			return fmt.Errorf("terminated pods left: %v", left)
		}
		return nil
	})
	eventually(t, 10*time.Second, func() error {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "unscheduled", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodFailed {
			return fmt.Errorf("unscheduled terminating pod: phase %q", p.Status.Phase)
		}
		return nil
	})
	eventually(t, 15*time.Second, func() error {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "orphan", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.DeletionTimestamp == nil || p.Status.Phase != corev1.PodFailed {
			return fmt.Errorf("orphan pod: deletionTimestamp %v, phase %q", p.DeletionTimestamp, p.Status.Phase)
		}
		var cond *corev1.PodCondition
		for i := range p.Status.Conditions {
			if p.Status.Conditions[i].Type == corev1.DisruptionTarget {
				cond = &p.Status.Conditions[i]
			}
		}
		if cond == nil || cond.Status != corev1.ConditionTrue || cond.Reason != "DeletionByPodGC" || cond.Message != "PodGC: node no longer exists" {
			return fmt.Errorf("orphan pod's DisruptionTarget: %+v", cond)
		}
		return nil
	})
	if d := time.Since(started); d < 2*time.Second {
		t.Errorf("orphan pod deleted after %v, before the quarantine", d)
	}
}
