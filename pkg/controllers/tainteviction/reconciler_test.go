package tainteviction

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

var start = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	t        *testing.T
	api      client.Client
	clock    *testingclock.FakeClock
	recorder *record.FakeRecorder
	r        *Reconciler
}

func newFixture(t *testing.T, objs ...client.Object) *fixture {
	t.Helper()
	api := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).
		WithStatusSubresource(&corev1.Pod{}, &corev1.Node{}).
		WithIndex(&corev1.Pod{}, podNodeIndex, func(o client.Object) []string { return []string{o.(*corev1.Pod).Spec.NodeName} }).
		WithObjects(objs...).Build()
	clk := testingclock.NewFakeClock(start)
	rec := record.NewFakeRecorder(100)
	return &fixture{t: t, api: api, clock: clk, recorder: rec, r: &Reconciler{Client: api, Recorder: rec, Clock: clk}}
}

func node(name string, taints ...corev1.Taint) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{Taints: taints}}
}

func unreachable(added time.Time) corev1.Taint {
	return corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &metav1.Time{Time: added}}
}

func pod(name, nodeName string, tolerations ...corev1.Toleration) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name), Generation: 1,
			CreationTimestamp: metav1.Time{Time: start.Add(-time.Hour)}},
		Spec: corev1.PodSpec{NodeName: nodeName, Tolerations: tolerations,
			Containers: []corev1.Container{{Name: "c", Image: "i"}}},
	}
}

func tolerate(key string, seconds *int64) corev1.Toleration {
	return corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: seconds}
}

func (f *fixture) reconcile(name string) ctrl.Result {
	f.t.Helper()
	res, err := f.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: name}})
	if err != nil {
		f.t.Fatalf("reconcile %s: %v", name, err)
	}
	return res
}

func (f *fixture) get(name string) *corev1.Pod {
	f.t.Helper()
	p := &corev1.Pod{}
	err := f.api.Get(context.Background(), types.NamespacedName{Namespace: "ns", Name: name}, p)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// A pod that does not tolerate the taint is deleted at once.
func TestUntoleratedDeletedAtOnce(t *testing.T) {
	f := newFixture(t, node("n1", unreachable(start)), pod("p", "n1"), pod("other", "n2"))
	if res := f.reconcile("p"); res.RequeueAfter != 0 {
		t.Errorf("result %+v", res)
	}
	if f.get("p") != nil {
		t.Error("pod not deleted")
	}
	f.reconcile("other")
	if f.get("other") == nil {
		t.Error("pod on an untainted node deleted")
	}
	ev := f.events()
	if len(ev) != 1 || ev[0] != "Normal TaintManagerEviction Marking for deletion Pod ns/p" {
		t.Errorf("events %q", ev)
	}
}

// The DisruptionTarget condition is patched before the delete: a pod with
// a finalizer shows it while it is being deleted.
func TestDisruptionTargetCondition(t *testing.T) {
	p := pod("p", "n1")
	p.Finalizers = []string{"example.com/keep"}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	f := newFixture(t, node("n1", unreachable(start)), p)
	f.reconcile("p")
	got := f.get("p")
	if got == nil || got.DeletionTimestamp == nil {
		t.Fatalf("pod not being deleted: %+v", got)
	}
	var found bool
	for _, c := range got.Status.Conditions {
		if c.Type == corev1.DisruptionTarget {
			found = true
			if c.Status != corev1.ConditionTrue || c.Reason != "DeletionByTaintManager" || c.Message != "Taint manager: deleting due to NoExecute taint" || c.ObservedGeneration != 1 {
				t.Errorf("condition %+v", c)
			}
		}
	}
	if !found || len(got.Status.Conditions) != 2 {
		t.Errorf("conditions %+v", got.Status.Conditions)
	}
	// Being deleted: not deleted again, no more events.
	f.events()
	f.reconcile("p")
	if ev := f.events(); len(ev) != 0 {
		t.Errorf("events %q", ev)
	}
}

// tolerationSeconds count from the taint's timeAdded; an early reconcile
// comes back at the deadline (also a fresh Reconciler: a restart).
func TestDeletedAfterTolerationSeconds(t *testing.T) {
	f := newFixture(t, node("n1", unreachable(start.Add(-2*time.Second))),
		pod("p", "n1", tolerate(corev1.TaintNodeUnreachable, ptr.To[int64](5)), tolerate(corev1.TaintNodeNotReady, ptr.To[int64](1))),
		pod("forever", "n1", tolerate(corev1.TaintNodeUnreachable, nil)))
	if res := f.reconcile("p"); res.RequeueAfter != 3*time.Second {
		t.Errorf("requeue after %s, want 3s", res.RequeueAfter)
	}
	f.clock.Step(time.Second)
	restarted := &Reconciler{Client: f.api, Recorder: f.recorder, Clock: f.clock}
	res, err := restarted.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "p"}})
	if err != nil || res.RequeueAfter != 2*time.Second {
		t.Errorf("after a restart: requeue after %s (%v), want 2s", res.RequeueAfter, err)
	}
	if f.get("p") == nil {
		t.Fatal("deleted early")
	}
	f.clock.Step(2 * time.Second)
	f.reconcile("p")
	if f.get("p") != nil {
		t.Error("not deleted at the deadline")
	}
	if res := f.reconcile("forever"); res.RequeueAfter != 0 || f.get("forever") == nil {
		t.Errorf("a pod tolerating forever: %+v, deleted: %v", res, f.get("forever") == nil)
	}
}

// A pod bound after the taint was added gets its tolerationSeconds from
// its binding; a taint without timeAdded counts from when it was seen.
func TestDeadlineStarts(t *testing.T) {
	late := pod("late", "n1", tolerate(corev1.TaintNodeUnreachable, ptr.To[int64](10)))
	late.CreationTimestamp = metav1.Time{Time: start.Add(-time.Second)}
	noTime := corev1.Taint{Key: "k", Effect: corev1.TaintEffectNoExecute}
	f := newFixture(t, node("n1", unreachable(start.Add(-time.Hour))), late,
		node("n2", noTime), pod("p2", "n2", tolerate("k", ptr.To[int64](4))))
	if res := f.reconcile("late"); res.RequeueAfter != 9*time.Second {
		t.Errorf("late: requeue after %s, want 9s", res.RequeueAfter)
	}
	if res := f.reconcile("p2"); res.RequeueAfter != 4*time.Second {
		t.Errorf("p2: requeue after %s, want 4s", res.RequeueAfter)
	}
	f.clock.Step(3 * time.Second)
	if res := f.reconcile("p2"); res.RequeueAfter != time.Second {
		t.Errorf("p2 again: requeue after %s, want 1s (from the first sighting)", res.RequeueAfter)
	}
}

// The taint removed before the deadline: the deletion is cancelled (and
// reported so), the pod stays.
func TestTaintRemovedCancels(t *testing.T) {
	f := newFixture(t, node("n1", unreachable(start)), pod("p", "n1", tolerate(corev1.TaintNodeUnreachable, ptr.To[int64](5))))
	if res := f.reconcile("p"); res.RequeueAfter != 5*time.Second {
		t.Fatalf("requeue after %s", res.RequeueAfter)
	}
	n := &corev1.Node{}
	if err := f.api.Get(context.Background(), client.ObjectKey{Name: "n1"}, n); err != nil {
		t.Fatal(err)
	}
	n.Spec.Taints = nil
	if err := f.api.Update(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	reqs := f.r.podsOfNode(context.Background(), n)
	if len(reqs) != 1 || reqs[0].Name != "p" {
		t.Errorf("node's pods %v", reqs)
	}
	f.clock.Step(10 * time.Second)
	if res := f.reconcile("p"); res.RequeueAfter != 0 {
		t.Errorf("requeue after %s", res.RequeueAfter)
	}
	if f.get("p") == nil {
		t.Error("deleted after the taint was removed")
	}
	ev := f.events()
	if len(ev) != 1 || ev[0] != "Normal TaintManagerEviction Cancelling deletion of Pod ns/p" {
		t.Errorf("events %q", ev)
	}
}

// Taints of other effects, and tolerationSeconds <= 0, as upstream.
func TestEffectsAndZeroSeconds(t *testing.T) {
	noSchedule := corev1.Taint{Key: "k", Effect: corev1.TaintEffectNoSchedule}
	f := newFixture(t, node("n1", noSchedule), pod("p", "n1"),
		node("n2", unreachable(start)), pod("zero", "n2", tolerate(corev1.TaintNodeUnreachable, ptr.To[int64](0))))
	f.reconcile("p")
	if f.get("p") == nil {
		t.Error("deleted for a NoSchedule taint")
	}
	f.reconcile("zero")
	if f.get("zero") != nil {
		t.Error("tolerationSeconds 0: not deleted at once")
	}
	if !strings.Contains(strings.Join(f.events(), ","), "Marking for deletion Pod ns/zero") {
		t.Error("no event")
	}
}
