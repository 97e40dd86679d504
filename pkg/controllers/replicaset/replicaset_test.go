package replicaset

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/pkg/controllers/expectations"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlfake "sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

type podOpts struct {
	node        string
	phase       corev1.PodPhase
	ready       bool
	readySince  time.Time
	created     time.Time
	restarts    int32
	sidecar     int32
	annotations map[string]string
}

func testPod(name string, o podOpts) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(name), CreationTimestamp: metav1.NewTime(o.created), Annotations: o.annotations},
		Spec: corev1.PodSpec{NodeName: o.node,
			InitContainers: []corev1.Container{{Name: "sidecar", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}}},
		Status: corev1.PodStatus{Phase: o.phase,
			ContainerStatuses:     []corev1.ContainerStatus{{Name: "c", RestartCount: o.restarts}},
			InitContainerStatuses: []corev1.ContainerStatus{{Name: "sidecar", RestartCount: o.sidecar}}},
	}
	if o.ready {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(o.readySince)}}
	}
	return p
}

// TestRankedPodsOrder: upstream's deletion order, rule by rule.
func TestRankedPodsOrder(t *testing.T) {
	now := time.Now()
	month, hours2, hours5, hours8 := now.AddDate(0, -1, 0), now.Add(-2*time.Hour), now.Add(-5*time.Hour), now.Add(-8*time.Hour)
	running := func(o podOpts) podOpts { o.node, o.phase = "node", corev1.PodRunning; return o }
	var (
		unscheduled       = testPod("unscheduled", podOpts{phase: corev1.PodPending})
		pending           = testPod("pending", podOpts{node: "node", phase: corev1.PodPending})
		unknown           = testPod("unknown", podOpts{node: "node", phase: corev1.PodUnknown})
		notReady          = testPod("not-ready", running(podOpts{}))
		readyNoTime       = testPod("ready-no-time", running(podOpts{ready: true}))
		readyNow          = testPod("ready-now", running(podOpts{ready: true, readySince: now, created: now}))
		readyThen         = testPod("ready-then", running(podOpts{ready: true, readySince: month, created: month}))
		restarts          = testPod("restarts", running(podOpts{ready: true, readySince: now, created: now, restarts: 9}))
		sidecarRestarts   = testPod("sidecar-restarts", running(podOpts{ready: true, readySince: now, created: now, restarts: 9, sidecar: 9}))
		readyNowOld       = testPod("ready-now-created-then", running(podOpts{ready: true, readySince: now, created: month}))
		lowCost           = testPod("low-cost", running(podOpts{ready: true, readySince: now, created: month, annotations: map[string]string{PodDeletionCostAnnotation: "10"}}))
		highCost          = testPod("high-cost", running(podOpts{ready: true, readySince: now, created: month, annotations: map[string]string{PodDeletionCostAnnotation: "100"}}))
		badCost           = testPod("bad-cost", running(podOpts{ready: true, readySince: now, created: month, annotations: map[string]string{PodDeletionCostAnnotation: "+100"}}))
		unscheduled5Hours = testPod("unscheduled-5h", podOpts{phase: corev1.PodPending, created: hours5})
		unscheduled8Hours = testPod("unscheduled-8h", podOpts{phase: corev1.PodPending, created: hours8})
		ready2Hours       = testPod("ready-2h", podOpts{phase: corev1.PodRunning, ready: true, readySince: hours2, created: month})
		ready5Hours       = testPod("ready-5h", podOpts{phase: corev1.PodRunning, ready: true, readySince: hours5, created: month})
		ready8Hours       = testPod("ready-8h", podOpts{phase: corev1.PodRunning, ready: true, readySince: hours8, created: month})
	)
	type ranked struct {
		pod  *corev1.Pod
		rank int
	}
	for _, tc := range []struct{ lesser, greater ranked }{
		{ranked{unscheduled, 1}, ranked{pending, 2}},
		{ranked{unscheduled, 2}, ranked{pending, 1}},
		{ranked{pending, 1}, ranked{unknown, 2}},
		{ranked{unknown, 1}, ranked{notReady, 2}},
		{ranked{notReady, 1}, ranked{readyNoTime, 1}},
		{ranked{readyNoTime, 1}, ranked{readyNow, 1}},
		{ranked{readyNow, 2}, ranked{readyNoTime, 1}},
		{ranked{readyNow, 1}, ranked{readyThen, 1}},
		{ranked{readyNow, 2}, ranked{readyThen, 1}},
		{ranked{restarts, 1}, ranked{readyNow, 1}},
		{ranked{sidecarRestarts, 1}, ranked{restarts, 1}},
		{ranked{readyNow, 2}, ranked{restarts, 1}},
		{ranked{readyNow, 1}, ranked{readyNowOld, 1}},
		{ranked{readyNowOld, 2}, ranked{readyNow, 1}},
		{ranked{lowCost, 2}, ranked{highCost, 1}},
		{ranked{badCost, 1}, ranked{highCost, 1}},
		{ranked{ready2Hours, 1}, ranked{ready5Hours, 1}},
	} {
		s := rankedPods{pods: []*corev1.Pod{tc.lesser.pod, tc.greater.pod}, rank: []int{tc.lesser.rank, tc.greater.rank}, now: metav1.NewTime(now)}
		if !s.Less(0, 1) || s.Less(1, 0) {
			t.Errorf("%s (rank %d) should be deleted before %s (rank %d)", tc.lesser.pod.Name, tc.lesser.rank, tc.greater.pod.Name, tc.greater.rank)
		}
	}
	// The same log2 bucket of age: neither is preferred but by UID.
	for _, pair := range [][2]*corev1.Pod{{unscheduled5Hours, unscheduled8Hours}, {ready5Hours, ready8Hours}} {
		s := rankedPods{pods: pair[:], rank: []int{1, 1}, now: metav1.NewTime(now)}
		if s.Less(0, 1) != (pair[0].UID < pair[1].UID) || s.Less(1, 0) != (pair[1].UID < pair[0].UID) {
			t.Errorf("%s and %s: want ordered by UID only", pair[0].Name, pair[1].Name)
		}
	}
	for _, p := range []*corev1.Pod{unscheduled, pending, unknown, notReady, readyNow, readyThen, restarts} {
		s := rankedPods{pods: []*corev1.Pod{p, p}, rank: []int{1, 1}, now: metav1.NewTime(now)}
		if s.Less(0, 1) {
			t.Errorf("%s is less than itself", p.Name)
		}
	}

	// A whole list, shuffled, sorts in that order.
	want := []*corev1.Pod{unscheduled, pending, unknown, notReady, readyNoTime, sidecarRestarts, restarts, readyNow, readyThen}
	for range 20 {
		pods := append([]*corev1.Pod(nil), want...)
		rand.Shuffle(len(pods), func(i, j int) { pods[i], pods[j] = pods[j], pods[i] })
		sort.Sort(rankedPods{pods: pods, rank: make([]int, len(pods)), now: metav1.NewTime(now)})
		for i := range pods {
			if pods[i] != want[i] {
				t.Fatalf("position %d: %s, want %s", i, pods[i].Name, want[i].Name)
			}
		}
	}
}

// TestPodsToDelete: ranked by the related pods on the same node.
func TestPodsToDelete(t *testing.T) {
	now := time.Now()
	a1 := testPod("a1", podOpts{node: "a", phase: corev1.PodRunning, ready: true, readySince: now.Add(-time.Hour), created: now.Add(-time.Hour)})
	a2 := testPod("a2", podOpts{node: "a", phase: corev1.PodRunning, ready: true, readySince: now.Add(-time.Hour), created: now.Add(-time.Hour)})
	b1 := testPod("b1", podOpts{node: "b", phase: corev1.PodRunning, ready: true, readySince: now.Add(-time.Hour), created: now.Add(-time.Hour)})
	other1 := testPod("other-on-b", podOpts{node: "b", phase: corev1.PodRunning})
	other2 := testPod("other2-on-b", podOpts{node: "b", phase: corev1.PodRunning})
	gone := testPod("gone-on-a", podOpts{node: "a", phase: corev1.PodSucceeded})
	// Two on a, one on b: one of a goes.
	if got := podsToDelete([]*corev1.Pod{b1, a1, a2}, []*corev1.Pod{a1, a2, b1}, 1, now); got[0].Spec.NodeName != "a" {
		t.Errorf("deleted %s, want one on node a", got[0].Name)
	}
	// With two active pods of a sibling on b (and a finished one on a), b
	// has more.
	if got := podsToDelete([]*corev1.Pod{b1, a1, a2}, []*corev1.Pod{a1, a2, b1, other1, other2, gone}, 1, now); got[0] != b1 {
		t.Errorf("deleted %s, want b1", got[0].Name)
	}
	if got := podsToDelete([]*corev1.Pod{b1, a1}, nil, 2, now); len(got) != 2 {
		t.Errorf("deleting all: %d", len(got))
	}
}

// TestSlowStartBatch: batches of 1, 2, 4, ... and none after a failure.
func TestSlowStartBatch(t *testing.T) {
	for _, tc := range []struct {
		count, failAt, wantCalls, wantOK int
	}{
		{count: 10, failAt: -1, wantCalls: 10, wantOK: 10},
		{count: 10, failAt: 0, wantCalls: 1, wantOK: 0},
		{count: 10, failAt: 1, wantCalls: 3, wantOK: 2}, // batches 1, 2
		{count: 10, failAt: 3, wantCalls: 7, wantOK: 6}, // batches 1, 2, 4
		{count: 500, failAt: -1, wantCalls: 500, wantOK: 500},
	} {
		var mu sync.Mutex
		calls := 0
		ok, err := slowStartBatch(tc.count, 1, func() error {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls-1 == tc.failAt {
				return errors.New("quota")
			}
			return nil
		})
		if calls != tc.wantCalls || ok != tc.wantOK || (err != nil) != (tc.failAt >= 0) {
			t.Errorf("count %d failing call %d: %d calls, %d ok, %v; want %d calls, %d ok", tc.count, tc.failAt, calls, ok, err, tc.wantCalls, tc.wantOK)
		}
	}
}

// TestCalculateStatus: counts, availability with minReadySeconds, and the
// ReplicaFailure condition set once and removed.
func TestCalculateStatus(t *testing.T) {
	now := time.Now()
	rs := &appsv1.ReplicaSet{Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](4), MinReadySeconds: 10,
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "a", "tier": "t"}}}}}
	labelled := func(p *corev1.Pod, l map[string]string) *corev1.Pod { p.Labels = l; return p }
	full := map[string]string{"app": "a", "tier": "t"}
	active := []*corev1.Pod{
		labelled(testPod("long", podOpts{ready: true, readySince: now.Add(-time.Minute)}), full),
		labelled(testPod("recent", podOpts{ready: true, readySince: now.Add(-time.Second)}), full),
		labelled(testPod("unready", podOpts{}), map[string]string{"app": "a"}),
	}
	terminating := []*corev1.Pod{testPod("going", podOpts{})}
	s := calculateStatus(rs, active, terminating, true, errors.New(`pods "x" is forbidden: exceeded quota`), now)
	want := appsv1.ReplicaSetStatus{Replicas: 3, FullyLabeledReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 1, TerminatingReplicas: ptr.To[int32](1),
		Conditions: []appsv1.ReplicaSetCondition{{Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate",
			Message: `pods "x" is forbidden: exceeded quota`, LastTransitionTime: metav1.NewTime(now)}}}
	if !apiequality.Semantic.DeepEqual(s, want) {
		t.Fatalf("status\n%+v, want\n%+v", s, want)
	}
	if d := minNextAvailabilityCheck(active, 10, now, now); d == nil || *d != 9*time.Second {
		t.Errorf("next availability check %v, want 9s", d)
	}
	rs.Status = s
	if again := calculateStatus(rs, active, terminating, true, errors.New("other"), now.Add(time.Second)); !apiequality.Semantic.DeepEqual(again.Conditions, want.Conditions) {
		t.Errorf("a second failure replaced the condition: %+v", again.Conditions)
	}
	if ok := calculateStatus(rs, active, nil, false, nil, now); len(ok.Conditions) != 0 || ok.TerminatingReplicas != nil {
		t.Errorf("after a good sync: %+v", ok)
	}
	rs.Spec.Replicas = ptr.To[int32](1)
	if del := calculateStatus(&appsv1.ReplicaSet{Spec: rs.Spec}, active, nil, false, errors.New("x"), now); del.Conditions[0].Reason != "FailedDelete" {
		t.Errorf("failure with too many: %+v", del.Conditions)
	}
}

// TestPodFromTemplate: upstream's GetPodFromTemplate.
func TestPodFromTemplate(t *testing.T) {
	tpl := &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "1"}, Annotations: map[string]string{"n": "v"}, Finalizers: []string{"example.com/f"}, Name: "ignored"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}},
	}
	ref := &metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: "u", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}
	p := podFromTemplate(tpl, "web", ref)
	if p.GenerateName != "web-" || p.Name != "" || p.Labels["a"] != "1" || p.Annotations["n"] != "v" || p.Finalizers[0] != "example.com/f" ||
		len(p.OwnerReferences) != 1 || p.OwnerReferences[0] != *ref || p.Spec.Containers[0].Image != "i" {
		t.Errorf("pod %+v", p)
	}
	p.Labels["a"], p.Spec.Containers[0].Image = "2", "j"
	if tpl.Labels["a"] != "1" || tpl.Spec.Containers[0].Image != "i" {
		t.Error("the pod shares the template's maps")
	}
}

// TestRCConversion: a ReplicationController as a ReplicaSet and back.
func TestRCConversion(t *testing.T) {
	tpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}}}
	rc := &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "rc", Namespace: "ns", UID: "u", Generation: 3, ResourceVersion: "7"},
		Spec:       corev1.ReplicationControllerSpec{Replicas: ptr.To[int32](2), MinReadySeconds: 5, Selector: map[string]string{"app": "x"}, Template: &tpl},
		Status: corev1.ReplicationControllerStatus{Replicas: 1, FullyLabeledReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, ObservedGeneration: 2,
			Conditions: []corev1.ReplicationControllerCondition{{Type: corev1.ReplicationControllerReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate", Message: "m"}}},
	}
	rs := rcToRS(rc)
	if rs.Kind != "ReplicationController" || rs.Spec.Selector.MatchLabels["app"] != "x" || *rs.Spec.Replicas != 2 || rs.Spec.MinReadySeconds != 5 ||
		rs.Status.Conditions[0].Type != appsv1.ReplicaSetReplicaFailure {
		t.Errorf("as a ReplicaSet: %+v", rs)
	}
	back := rsToRC(rs)
	if !apiequality.Semantic.DeepEqual(back.Spec, rc.Spec) || !apiequality.Semantic.DeepEqual(back.Status, rc.Status) || back.ResourceVersion != "7" {
		t.Errorf("round trip:\n%+v\nwant\n%+v", back, rc)
	}
}

// fakeReconciler has a cache (a fake controller-runtime client, with the
// pod index) that the writes (a fake clientset) do not reach: what a
// lagging watch looks like.
func fakeReconciler(t *testing.T, kind Kind, cached ...client.Object) (*Reconciler, *k8sfake.Clientset, *record.FakeRecorder) {
	t.Helper()
	r := &Reconciler{Kind: kind}
	c := ctrlfake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(cached...).
		WithIndex(&corev1.Pod{}, r.podIndex(), r.podIndexValues).Build()
	var apiObjects []runtime.Object
	for _, o := range cached {
		apiObjects = append(apiObjects, o.DeepCopyObject())
	}
	core := k8sfake.NewClientset(apiObjects...)
	var mu sync.Mutex
	seq := 0
	core.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		// The fake does not generate names.
		if p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod); p.Name == "" {
			mu.Lock()
			seq++
			p.Name = fmt.Sprintf("%s%05d", p.GenerateName, seq)
			mu.Unlock()
		}
		return false, nil, nil
	})
	rec := record.NewFakeRecorder(100)
	r.Client, r.Core, r.Recorder = c, core, rec
	return r, core, rec
}

func podCreates(core *k8sfake.Clientset) int {
	n := 0
	for _, a := range core.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "pods" {
			n++
		}
	}
	return n
}

// TestExpectationsPreventOverCreation: syncs before the cache shows the
// pods created create none; the creations seen, the owner syncs again.
func TestExpectationsPreventOverCreation(t *testing.T) {
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "rs-uid", Generation: 1},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](3), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}}}}
	r, core, rec := fakeReconciler(t, ReplicaSets, rs)
	ctx := context.Background()
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "web"}}
	res, err := r.Reconcile(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if n := podCreates(core); n != 3 {
		t.Fatalf("%d pods created, want 3", n)
	}
	if res.RequeueAfter <= 0 || res.RequeueAfter > expectations.Timeout+time.Second {
		t.Errorf("requeue after %v, want when the expectations expire", res.RequeueAfter)
	}
	for range 3 {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if n := podCreates(core); n != 3 {
		t.Fatalf("%d pods created by syncs that did not see the first 3, want 3", n)
	}
	for range 3 {
		if len(rec.Events) == 0 {
			t.Fatal("missing events")
		}
		if e := <-rec.Events; !strings.HasPrefix(e, "Normal SuccessfulCreate Created pod: ") {
			t.Errorf("event %q", e)
		}
	}
	// The watch shows them (the cache does not): the next sync creates
	// again, as the cache says.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-1", OwnerReferences: []metav1.OwnerReference{*r.controllerRef(rs)}}}
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	for range 3 {
		r.addPod(ctx, pod, q)
	}
	if q.Len() != 1 {
		t.Errorf("%d requests queued, want the owner's", q.Len())
	}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if n := podCreates(core); n != 6 {
		t.Fatalf("%d pods created after the creations were seen, want 6", n)
	}
}

// TestScaleDownDeletesRanked: the unready and unscheduled pods go first;
// deletions in flight are not repeated.
func TestScaleDownDeletesRanked(t *testing.T) {
	now := time.Now()
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "rs-uid", Generation: 2},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}}}}
	ref := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: "rs-uid", Controller: ptr.To(true)}
	mk := func(name string, o podOpts) *corev1.Pod {
		p := testPod(name, o)
		p.Namespace, p.Labels, p.OwnerReferences = "ns", map[string]string{"app": "web"}, []metav1.OwnerReference{ref}
		return p
	}
	objs := []client.Object{rs,
		mk("old-ready", podOpts{node: "n", phase: corev1.PodRunning, ready: true, readySince: now.Add(-time.Hour), created: now.Add(-time.Hour)}),
		mk("new-ready", podOpts{node: "n", phase: corev1.PodRunning, ready: true, readySince: now.Add(-time.Second), created: now.Add(-time.Second)}),
		mk("unready", podOpts{node: "n", phase: corev1.PodRunning, created: now.Add(-2 * time.Hour)}),
		mk("unscheduled", podOpts{phase: corev1.PodPending, created: now.Add(-3 * time.Hour)}),
	}
	r, core, _ := fakeReconciler(t, ReplicaSets, objs...)
	ctx := context.Background()
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "web"}}
	for range 2 {
		if _, err := r.Reconcile(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	var deleted []string
	for _, a := range core.Actions() {
		if d, ok := a.(k8stesting.DeleteAction); ok && a.GetResource().Resource == "pods" {
			deleted = append(deleted, d.GetName())
		}
	}
	sort.Strings(deleted)
	if want := []string{"unready", "unscheduled"}; !slices.Equal(deleted, want) {
		t.Errorf("deleted %v, want %v", deleted, want)
	}
	got, err := core.AppsV1().ReplicaSets("ns").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s := got.Status; s.Replicas != 4 || s.ReadyReplicas != 2 || s.ObservedGeneration != 2 || ptr.Deref(s.TerminatingReplicas, -1) != 0 {
		t.Errorf("status %+v", s)
	}
}
