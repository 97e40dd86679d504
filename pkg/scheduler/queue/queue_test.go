package queue

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

func pod(name string, prio int32) *v1.Pod {
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(name)},
		Spec: v1.PodSpec{SchedulerName: "default-scheduler", Priority: &prio}}
}

type gate struct{}

func (gate) Name() string { return "SchedulingGates" }
func (gate) PreEnqueue(_ context.Context, p *v1.Pod) *framework.Status {
	if len(p.Spec.SchedulingGates) > 0 {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, "waiting for scheduling gates")
	}
	return nil
}

func newQueue(t *testing.T) (*PriorityQueue, *clocktesting.FakeClock) {
	clk := clocktesting.NewFakeClock(time.Now())
	skipLabelOnly := func(_ klog.Logger, _ *v1.Pod, oldObj, newObj any) (framework.QueueingHint, error) {
		if n, ok := newObj.(*v1.Node); ok && n.Labels["useful"] == "yes" {
			return framework.Queue, nil
		}
		return framework.QueueSkip, nil
	}
	q := New(Options{Clock: clk, InitialBackoff: time.Second, MaxBackoff: 10 * time.Second, Profiles: map[string]*Profile{
		"default-scheduler": {
			PreEnqueue: []framework.PreEnqueuePlugin{gate{}},
			Hints: map[string][]framework.ClusterEventWithHint{
				"Fit":             {{Event: framework.ClusterEvent{Resource: framework.Node, ActionType: framework.Add | framework.UpdateNodeAllocatable}}},
				"Labels":          {{Event: framework.ClusterEvent{Resource: framework.Node, ActionType: framework.UpdateNodeLabel}, QueueingHintFn: skipLabelOnly}},
				"Nothing":         nil,
				"SchedulingGates": {{Event: framework.ClusterEvent{Resource: framework.Pod, ActionType: framework.UpdatePodSchedulingGatesEliminated}}},
			},
		},
	}})
	return q, clk
}

func pop(t *testing.T, q *PriorityQueue) *framework.QueuedPodInfo {
	t.Helper()
	done := make(chan *framework.QueuedPodInfo, 1)
	go func() {
		p, err := q.Pop(klog.Background())
		if err != nil {
			t.Error(err)
		}
		done <- p
	}()
	select {
	case p := <-done:
		return p
	case <-time.After(2 * time.Second):
		t.Fatal("Pop blocked")
		return nil
	}
}

// TestOrder: higher priority first, then the older pod.
func TestOrder(t *testing.T) {
	q, clk := newQueue(t)
	l := klog.Background()
	q.Add(l, pod("low", 0))
	clk.Step(time.Millisecond)
	q.Add(l, pod("high-late", 10))
	q.Add(l, pod("low-late", 0))
	clk.Step(-time.Hour) // timestamps, not insertion order, decide
	q.Add(l, pod("high-early", 10))
	var got []string
	for range 4 {
		got = append(got, pop(t, q).Pod.Name)
	}
	want := []string{"high-early", "high-late", "low", "low-late"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}

// TestPopBlocks: Pop waits for a pod, and Close releases it.
func TestPopBlocks(t *testing.T) {
	q, _ := newQueue(t)
	got := make(chan error, 1)
	go func() {
		_, err := q.Pop(klog.Background())
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("Pop returned %v on an empty queue", err)
	case <-time.After(50 * time.Millisecond):
	}
	q.Close()
	if err := <-got; err != ErrClosed {
		t.Fatalf("Pop after Close: %v", err)
	}
}

// TestBackoff: a failed pod waits 1s, then 2s, 4s, ... up to 10s.
func TestBackoff(t *testing.T) {
	q, clk := newQueue(t)
	l := klog.Background()
	q.Add(l, pod("p", 0))
	for attempt, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second} {
		p := pop(t, q)
		if p.Attempts != attempt+1 {
			t.Fatalf("attempts %d, want %d", p.Attempts, attempt+1)
		}
		// No rejecting plugin: an error, retried after backoff.
		if err := q.AddUnschedulableIfNotPresent(l, p); err != nil {
			t.Fatal(err)
		}
		q.Done(p.Pod.UID)
		if w := q.Where("p"); w != "backoff" {
			t.Fatalf("attempt %d: pod in %q, want backoff", attempt+1, w)
		}
		clk.Step(wait - time.Millisecond)
		q.FlushBackoffCompleted(l)
		if w := q.Where("p"); w != "backoff" {
			t.Fatalf("attempt %d: left backoff before %v", attempt+1, wait)
		}
		clk.Step(time.Millisecond)
		q.FlushBackoffCompleted(l)
		if w := q.Where("p"); w != "active" {
			t.Fatalf("attempt %d: pod in %q after %v, want active", attempt+1, w, wait)
		}
	}
}

func reject(t *testing.T, q *PriorityQueue, plugins ...string) *framework.QueuedPodInfo {
	t.Helper()
	p := pop(t, q)
	p.UnschedulablePlugins = sets.New(plugins...)
	if err := q.AddUnschedulableIfNotPresent(klog.Background(), p); err != nil {
		t.Fatal(err)
	}
	q.Done(p.Pod.UID)
	return p
}

// TestEventsMovePods: only an event registered by a rejecting plugin (and
// whose hint says Queue) moves an unschedulable pod; to backoffQ while it
// backs off, else to activeQ.
func TestEventsMovePods(t *testing.T) {
	q, clk := newQueue(t)
	l := klog.Background()
	q.Add(l, pod("fit", 0))
	q.Add(l, pod("labels", 0))
	reject(t, q, "Fit")
	reject(t, q, "Labels")
	if q.Where("fit") != "unschedulable" || q.Where("labels") != "unschedulable" {
		t.Fatalf("rejected pods in %q and %q", q.Where("fit"), q.Where("labels"))
	}
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}}
	// A taint change helps neither.
	q.MoveAllToActiveOrBackoffQueue(l, framework.ClusterEvent{Resource: framework.Node, ActionType: framework.UpdateNodeTaint}, node, node)
	if q.Where("fit") != "unschedulable" || q.Where("labels") != "unschedulable" {
		t.Fatal("an unregistered event moved a pod")
	}
	// A label change whose hint says QueueSkip.
	q.MoveAllToActiveOrBackoffQueue(l, framework.ClusterEvent{Resource: framework.Node, ActionType: framework.UpdateNodeLabel}, node, node)
	if q.Where("labels") != "unschedulable" {
		t.Fatal("a QueueSkip hint moved a pod")
	}
	useful := node.DeepCopy()
	useful.Labels = map[string]string{"useful": "yes"}
	q.MoveAllToActiveOrBackoffQueue(l, framework.ClusterEvent{Resource: framework.Node, ActionType: framework.UpdateNodeLabel}, node, useful)
	if w := q.Where("labels"); w != "backoff" {
		t.Fatalf("labels pod in %q after a useful label change, want backoff", w)
	}
	if q.Where("fit") != "unschedulable" {
		t.Fatal("a label event moved the pod rejected by Fit")
	}
	clk.Step(2 * time.Second)
	q.MoveAllToActiveOrBackoffQueue(l, framework.EventNodeAdd, nil, node)
	if w := q.Where("fit"); w != "active" {
		t.Fatalf("fit pod in %q after a node add past its backoff, want active", w)
	}
}

// TestInFlightEvent: an event that arrives while the pod is being
// scheduled is not lost.
func TestInFlightEvent(t *testing.T) {
	q, _ := newQueue(t)
	l := klog.Background()
	q.Add(l, pod("p", 0))
	p := pop(t, q)
	q.MoveAllToActiveOrBackoffQueue(l, framework.EventNodeAdd, nil, &v1.Node{})
	p.UnschedulablePlugins = sets.New("Fit")
	if err := q.AddUnschedulableIfNotPresent(l, p); err != nil {
		t.Fatal(err)
	}
	q.Done(p.Pod.UID)
	if w := q.Where("p"); w != "backoff" {
		t.Fatalf("pod in %q, want backoff: the node added during its attempt may fit it", w)
	}
	if len(q.events) != 0 {
		t.Errorf("%d in-flight events kept with nothing in flight", len(q.events))
	}
}

// TestGating: a gated pod stays out of activeQ until its gates go.
func TestGating(t *testing.T) {
	q, _ := newQueue(t)
	l := klog.Background()
	p := pod("gated", 0)
	p.Spec.SchedulingGates = []v1.PodSchedulingGate{{Name: "example.com/wait"}}
	q.Add(l, p)
	if w := q.Where("gated"); w != "gated" {
		t.Fatalf("pod in %q, want gated", w)
	}
	q.MoveAllToActiveOrBackoffQueue(l, framework.EventNodeAdd, nil, &v1.Node{})
	if w := q.Where("gated"); w != "gated" {
		t.Fatalf("a node event ungated the pod (%q)", w)
	}
	if c := q.Counts(); c.Gated != 1 || c.Active != 0 {
		t.Errorf("counts %+v", c)
	}
	labelled := p.DeepCopy()
	labelled.Labels = map[string]string{"a": "b"}
	q.Update(l, p, labelled)
	if w := q.Where("gated"); w != "gated" {
		t.Fatalf("a label update ungated the pod (%q)", w)
	}
	open := labelled.DeepCopy()
	open.Spec.SchedulingGates = nil
	q.Update(l, labelled, open)
	if w := q.Where("gated"); w != "active" {
		t.Fatalf("pod in %q after its gates were removed, want active", w)
	}
	if got := pop(t, q); got.Pod.Labels["a"] != "b" {
		t.Error("Pop returned the old pod")
	}
}

// TestUpdateInPlace: an update of a queued pod replaces it where it is.
func TestUpdateInPlace(t *testing.T) {
	q, _ := newQueue(t)
	l := klog.Background()
	a, b := pod("a", 0), pod("b", 5)
	q.Add(l, a)
	q.Add(l, b)
	raised := a.DeepCopy()
	prio := int32(9)
	raised.Spec.Priority = &prio
	q.Update(l, a, raised)
	if c := q.Counts(); c.Active != 2 {
		t.Fatalf("counts %+v after update", c)
	}
	if got := pop(t, q); got.Pod.Name != "a" || *got.Pod.Spec.Priority != 9 {
		t.Errorf("popped %s, want the updated a first", got.Pod.Name)
	}
}

// TestLeftover: unschedulable pods go back after five minutes.
func TestLeftover(t *testing.T) {
	q, clk := newQueue(t)
	l := klog.Background()
	q.Add(l, pod("p", 0))
	reject(t, q, "Nothing")
	clk.Step(4 * time.Minute)
	q.FlushUnschedulableLeftover(l)
	if q.Where("p") != "unschedulable" {
		t.Fatal("flushed before five minutes")
	}
	clk.Step(time.Minute + time.Second)
	q.FlushUnschedulableLeftover(l)
	if w := q.Where("p"); w != "active" {
		t.Fatalf("pod in %q after five minutes, want active", w)
	}
}

// TestDelete and the nominator.
func TestDeleteAndNominator(t *testing.T) {
	q, _ := newQueue(t)
	l := klog.Background()
	p := pod("p", 0)
	p.Status.NominatedNodeName = "n1"
	q.Add(l, p)
	if got := q.Nominator().NominatedPodsForNode("n1"); len(got) != 1 {
		t.Fatalf("nominated on n1: %d", len(got))
	}
	q.Delete(p)
	if q.Where("p") != "" || len(q.Nominator().NominatedPodsForNode("n1")) != 0 {
		t.Error("deleted pod still queued or nominated")
	}
}
