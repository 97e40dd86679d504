package disruption

import (
	"context"
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	scalefake "k8s.io/client-go/scale/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/skiff-dev/skiff/pkg/controllers/podutil"
)

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func readyPod(name string, lbls map[string]string, owner *metav1.OwnerReference) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: lbls},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
	if owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return p
}

func fakeClient(objs ...client.Object) client.Client {
	return fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(objs...).
		WithStatusSubresource(&policyv1.PodDisruptionBudget{}, &corev1.Pod{}).Build()
}

func getPDB(t *testing.T, c client.Client, name string) *policyv1.PodDisruptionBudget {
	t.Helper()
	pdb := &policyv1.PodDisruptionBudget{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: name}, pdb); err != nil {
		t.Fatal(err)
	}
	return pdb
}

// TestDisruptedPods: entries of status.disruptedPods are kept (and the pod
// not counted healthy) until DeletionTimeout, and the PDB comes back then;
// a timed out entry is dropped with a NotDeleted event on the pod, one of a
// missing or terminating pod silently.
func TestDisruptedPods(t *testing.T) {
	lbls := map[string]string{"app": "a"}
	terminating := readyPod("terminating", lbls, nil)
	terminating.DeletionTimestamp = &metav1.Time{Time: now}
	terminating.Finalizers = []string{"keep"}
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "pdb", Namespace: "ns", Generation: 1},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{MatchLabels: lbls}},
		Status: policyv1.PodDisruptionBudgetStatus{DisruptedPods: map[string]metav1.Time{
			"recent":      {Time: now.Add(-30 * time.Second)},
			"old":         {Time: now.Add(-3 * time.Minute)},
			"gone":        {Time: now.Add(-10 * time.Second)},
			"terminating": {Time: now.Add(-10 * time.Second)},
		}}}
	c := fakeClient(pdb, readyPod("recent", lbls, nil), readyPod("old", lbls, nil), readyPod("other", lbls, nil), terminating)
	rec := record.NewFakeRecorder(10)
	r := &Reconciler{Client: c, Recorder: rec, Clock: clocktesting.NewFakePassiveClock(now)}
	res, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "pdb"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.RequeueAfter != 90*time.Second {
		t.Errorf("requeue after %s, want 90s (when recent times out)", res.RequeueAfter)
	}
	s := getPDB(t, c, "pdb").Status
	if len(s.DisruptedPods) != 1 || !s.DisruptedPods["recent"].Time.Equal(now.Add(-30*time.Second)) {
		t.Errorf("disruptedPods %v, want recent only", s.DisruptedPods)
	}
	// old and other are healthy; recent is being evicted, terminating is.
	if s.CurrentHealthy != 2 || s.DesiredHealthy != 1 || s.ExpectedPods != 4 || s.DisruptionsAllowed != 1 || s.ObservedGeneration != 1 {
		t.Errorf("status %+v", s)
	}
	if c := apimeta.FindStatusCondition(s.Conditions, policyv1.DisruptionAllowedCondition); c == nil || c.Status != metav1.ConditionTrue || c.Reason != policyv1.SufficientPodsReason {
		t.Errorf("condition %+v", c)
	}
	select {
	case ev := <-rec.Events:
		if ev != "Warning NotDeleted Pod was expected by PDB ns/pdb to be deleted but it wasn't" {
			t.Errorf("event %q", ev)
		}
	default:
		t.Error("no NotDeleted event")
	}
}

// TestScaleSubresource: a pod of a controller that is none of the
// workload kinds counts its /scale's replicas; a resource without /scale
// fails the sync, which sets disruptionsAllowed to 0 with SyncFailed.
func TestScaleSubresource(t *testing.T) {
	lbls := map[string]string{"app": "w"}
	mapper := apimeta.NewDefaultRESTMapper(nil)
	mapper.Add(schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}, apimeta.RESTScopeNamespace)
	mapper.Add(schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Gadget"}, apimeta.RESTScopeNamespace)
	scales := &scalefake.FakeScaleClient{}
	scales.AddReactor("get", "widgets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "w", Namespace: "ns", UID: "w-uid"}, Spec: autoscalingv1.ScaleSpec{Replicas: 8}}, nil
	})
	scales.AddReactor("get", "gadgets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewNotFound(schema.GroupResource{Group: "example.com", Resource: "gadgets"}, "g")
	})
	owner := &metav1.OwnerReference{APIVersion: "example.com/v1", Kind: "Widget", Name: "w", UID: "w-uid", Controller: ptr.To(true)}
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "pdb", Namespace: "ns", Generation: 2},
		Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromString("50%")), Selector: &metav1.LabelSelector{MatchLabels: lbls}}}
	c := fakeClient(pdb, readyPod("w-0", lbls, owner), readyPod("w-1", lbls, owner))
	r := &Reconciler{Client: c, Scales: scales, Mapper: mapper, Clock: clocktesting.NewFakePassiveClock(now)}
	if _, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "pdb"}}); err != nil {
		t.Fatal(err)
	}
	if s := getPDB(t, c, "pdb").Status; s.ExpectedPods != 8 || s.DesiredHealthy != 4 || s.CurrentHealthy != 2 || s.DisruptionsAllowed != 0 || s.ObservedGeneration != 2 {
		t.Errorf("status %+v, want 8 expected, 4 desired", s)
	}

	// A Gadget has no /scale (the scale client answers NotFound and
	// discovery knows nothing of gadgets/scale).
	gadget := &metav1.OwnerReference{APIVersion: "example.com/v1", Kind: "Gadget", Name: "g", UID: "g-uid", Controller: ptr.To(true)}
	lbls2 := map[string]string{"app": "g"}
	pdb2 := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "pdb2", Namespace: "ns", Generation: 1},
		Spec:   policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{MatchLabels: lbls2}},
		Status: policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: 3, ObservedGeneration: 1}}
	if err := c.Create(context.Background(), pdb2); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(context.Background(), readyPod("g-0", lbls2, gadget)); err != nil {
		t.Fatal(err)
	}
	r.Recorder = record.NewFakeRecorder(10)
	if _, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "pdb2"}}); err != nil {
		t.Fatal(err)
	}
	s := getPDB(t, c, "pdb2").Status
	cond := apimeta.FindStatusCondition(s.Conditions, policyv1.DisruptionAllowedCondition)
	if s.DisruptionsAllowed != 0 || cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != policyv1.SyncFailedReason || cond.ObservedGeneration != 1 ||
		cond.Message != "gadgets.example.com does not implement the scale subresource" {
		t.Errorf("after a failed sync: %+v", s)
	}
	ev := <-r.Recorder.(*record.FakeRecorder).Events
	if !strings.HasPrefix(ev, "Warning CalculateExpectedPodCountFailed Failed to calculate the number of expected pods: ") {
		t.Errorf("event %q", ev)
	}
}

// TestStalePodCondition: a True DisruptionTarget condition is reset to
// False (no reason) 2 minutes after it was set, unless the pod is being
// deleted, finished, or the kubelet set it.
func TestStalePodCondition(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(now)
	cond := func(reason string) []corev1.PodCondition {
		return []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: reason,
			LastTransitionTime: metav1.NewTime(now.Add(-time.Minute))}}
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Generation: 3},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: cond("EvictionByEvictionAPI")}}
	kubelet := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "k", Namespace: "ns"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: cond(corev1.PodReasonTerminationByKubelet)}}
	done := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "ns"},
		Status: corev1.PodStatus{Phase: corev1.PodFailed, Conditions: cond("EvictionByEvictionAPI")}}
	c := fakeClient(pod, kubelet, done)
	r := &StalePodReconciler{Client: c, Clock: clk}
	reconcileAll := func() map[string]time.Duration {
		out := map[string]time.Duration{}
		for _, name := range []string{"p", "k", "d"} {
			res, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: name}})
			if err != nil {
				t.Fatal(err)
			}
			out[name] = res.RequeueAfter
		}
		return out
	}
	if got := reconcileAll(); got["p"] != time.Minute || got["k"] != 0 || got["d"] != 0 {
		t.Errorf("requeues %v, want p in 1m only", got)
	}
	clk.SetTime(now.Add(time.Minute + time.Second))
	reconcileAll()
	for name, want := range map[string]corev1.ConditionStatus{"p": corev1.ConditionFalse, "k": corev1.ConditionTrue, "d": corev1.ConditionTrue} {
		got := &corev1.Pod{}
		if err := c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: name}, got); err != nil {
			t.Fatal(err)
		}
		c := podutil.GetPodCondition(got, corev1.DisruptionTarget)
		if c.Status != want {
			t.Errorf("%s: condition %+v, want %s", name, c, want)
		}
		if name == "p" && (c.Reason != "" || c.ObservedGeneration != 3) {
			t.Errorf("reset condition %+v, want no reason, observedGeneration 3", c)
		}
	}
}
