package garbagecollector

import (
	"context"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	metadatafake "k8s.io/client-go/metadata/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"
)

var cmGVK = schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}

type fakeMapper struct{ meta.RESTMapper }

func (fakeMapper) Reset() {}

type testGC struct {
	*GarbageCollector
	client   *metadatafake.FakeMetadataClient
	recorder *record.FakeRecorder
}

func newTestGC(t *testing.T, objects ...runtime.Object) *testGC {
	t.Helper()
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(cmGVK, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Node"}, meta.RESTScopeRoot)
	scheme := metadatafake.NewTestScheme()
	scheme.AddKnownTypeWithName(cmGVK, &metav1.PartialObjectMetadata{})
	client := metadatafake.NewSimpleMetadataClient(scheme, objects...)
	rec := record.NewFakeRecorder(10)
	gc := New(Config{Metadata: client, Mapper: fakeMapper{m}, Recorder: rec})
	t.Cleanup(func() {
		gc.attemptToDelete.ShutDown()
		gc.attemptToOrphan.ShutDown()
		gc.builder.changes.ShutDown()
	})
	return &testGC{GarbageCollector: gc, client: client, recorder: rec}
}

func cm(ns, name, uid string, owners ...metav1.OwnerReference) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid), OwnerReferences: owners, ResourceVersion: "1"}}
}

func ownedBy(o *metav1.PartialObjectMetadata, block bool) metav1.OwnerReference {
	r := metav1.OwnerReference{APIVersion: o.APIVersion, Kind: o.Kind, Name: o.Name, UID: o.UID}
	if block {
		r.BlockOwnerDeletion = ptr.To(true)
	}
	return r
}

// process feeds events through the graph builder.
func (g *testGC) process(t *testing.T, events ...*event) {
	t.Helper()
	logger, _ := ktesting.NewTestContext(t)
	for _, e := range events {
		if e.gvk.Empty() {
			e.gvk = cmGVK
		}
		g.builder.changes.Add(e)
		g.builder.processGraphChanges(logger)
	}
}

func add(o metav1.Object) *event { return &event{typ: addEvent, obj: o} }

func update(old, cur metav1.Object) *event { return &event{typ: updateEvent, obj: cur, old: old} }

func del(o metav1.Object) *event { return &event{typ: deleteEvent, obj: o} }

// drain empties q and returns what it held.
func drain(q workqueue.TypedRateLimitingInterface[types.UID]) []types.UID {
	var ret []types.UID
	for q.Len() > 0 {
		u, _ := q.Get()
		q.Done(u)
		q.Forget(u)
		ret = append(ret, u)
	}
	slices.Sort(ret)
	return ret
}

func TestVirtualOwnerBecomesObserved(t *testing.T) {
	g := newTestGC(t)
	owner := cm("ns", "owner", "o1")
	g.process(t, add(cm("ns", "dep", "d1", ownedBy(owner, false))))
	n, ok := g.graph.read("o1")
	if !ok || n.isObserved() || len(n.getDependents()) != 1 {
		t.Fatalf("owner node %+v (found %v), want a virtual node with one dependent", n, ok)
	}
	if got := drain(g.attemptToDelete); !slices.Equal(got, []types.UID{"o1"}) {
		t.Fatalf("attemptToDelete %v, want the virtual owner checked", got)
	}
	g.process(t, add(owner))
	if n, _ = g.graph.read("o1"); !n.isObserved() || n.dependentsLength() != 1 {
		t.Errorf("owner node after its add: observed %v dependents %d", n.isObserved(), n.dependentsLength())
	}
	if got := drain(g.attemptToDelete); len(got) != 0 {
		t.Errorf("attemptToDelete %v, want nothing once the owner is seen where named", got)
	}
}

func TestCrossNamespaceOwnerReported(t *testing.T) {
	g := newTestGC(t)
	owner := cm("a", "owner", "o1")
	g.process(t, add(owner), add(cm("b", "bad", "d1", ownedBy(owner, false))))
	want := `Warning OwnerRefInvalidNamespace ownerRef [v1/ConfigMap, namespace: b, name: owner, uid: o1] does not exist in namespace "b"`
	select {
	case ev := <-g.recorder.Events:
		if ev != want {
			t.Errorf("event %q, want %q", ev, want)
		}
	default:
		t.Errorf("no event, want %q", want)
	}
	if got := drain(g.attemptToDelete); !slices.Equal(got, []types.UID{"d1"}) {
		t.Errorf("attemptToDelete %v, want the bad dependent checked", got)
	}
}

// The dependent seen first: the virtual owner takes the dependent's
// namespace; when the owner shows up elsewhere the event is the same.
func TestCrossNamespaceOwnerReportedDependentFirst(t *testing.T) {
	g := newTestGC(t)
	owner := cm("a", "owner", "o1")
	g.process(t, add(cm("b", "bad", "d1", ownedBy(owner, false))))
	drain(g.attemptToDelete)
	g.process(t, add(owner))
	select {
	case ev := <-g.recorder.Events:
		if !strings.Contains(ev, `OwnerRefInvalidNamespace ownerRef [v1/ConfigMap, namespace: b, name: owner, uid: o1] does not exist in namespace "b"`) {
			t.Errorf("event %q", ev)
		}
	default:
		t.Error("no OwnerRefInvalidNamespace event")
	}
	if n, _ := g.graph.read("o1"); n.identity.Namespace != "a" || !n.isObserved() {
		t.Errorf("owner node %v, want the observed identity in namespace a", n.identity)
	}
	if got := drain(g.attemptToDelete); !slices.Equal(got, []types.UID{"d1"}) {
		t.Errorf("attemptToDelete %v, want the bad dependent checked", got)
	}
}

func TestDeletionTransitions(t *testing.T) {
	g := newTestGC(t)
	now := metav1.Now()
	owner := cm("ns", "owner", "o1")
	g.process(t, add(owner), add(cm("ns", "dep", "d1", ownedBy(owner, true))))
	drain(g.attemptToDelete)

	orphaning := owner.DeepCopy()
	orphaning.DeletionTimestamp, orphaning.Finalizers = &now, []string{metav1.FinalizerOrphanDependents}
	g.process(t, update(owner, orphaning))
	if got := drain(g.attemptToOrphan); !slices.Equal(got, []types.UID{"o1"}) {
		t.Errorf("attemptToOrphan %v, want the owner", got)
	}
	// The same state again is no new transition.
	g.process(t, update(orphaning, orphaning.DeepCopy()))
	if got := drain(g.attemptToOrphan); len(got) != 0 {
		t.Errorf("attemptToOrphan %v after a repeated update", got)
	}

	g2 := newTestGC(t)
	g2.process(t, add(owner), add(cm("ns", "dep", "d1", ownedBy(owner, true))))
	drain(g2.attemptToDelete)
	fg := owner.DeepCopy()
	fg.DeletionTimestamp, fg.Finalizers = &now, []string{metav1.FinalizerDeleteDependents}
	g2.process(t, update(owner, fg))
	if n, _ := g2.graph.read("o1"); !n.isDeletingDependents() {
		t.Error("owner not marked deleting its dependents")
	}
	if got := drain(g2.attemptToDelete); !slices.Equal(got, []types.UID{"d1", "o1"}) {
		t.Errorf("attemptToDelete %v, want the dependent and the owner", got)
	}
}

func TestDeleteQueuesDependents(t *testing.T) {
	g := newTestGC(t)
	owner := cm("ns", "owner", "o1")
	g.process(t, add(owner), add(cm("ns", "dep", "d1", ownedBy(owner, false))))
	drain(g.attemptToDelete)
	g.process(t, del(owner))
	if _, ok := g.graph.read("o1"); ok {
		t.Error("deleted owner still in the graph")
	}
	if got := drain(g.attemptToDelete); !slices.Equal(got, []types.UID{"d1"}) {
		t.Errorf("attemptToDelete %v, want the dependent", got)
	}
	if !g.absent.Has(objectReference{OwnerReference: coordinates(ownedBy(owner, false)), Namespace: "ns"}) {
		t.Error("deleted owner not remembered as absent")
	}
}

func TestUpdatesThatMatter(t *testing.T) {
	base := cm("ns", "x", "u1")
	now := metav1.Now()
	for name, change := range map[string]func(*metav1.PartialObjectMetadata){
		"uid":               func(o *metav1.PartialObjectMetadata) { o.UID = "u2" },
		"deletionTimestamp": func(o *metav1.PartialObjectMetadata) { o.DeletionTimestamp = &now },
		"finalizers":        func(o *metav1.PartialObjectMetadata) { o.Finalizers = []string{"f"} },
		"ownerReferences":   func(o *metav1.PartialObjectMetadata) { o.OwnerReferences = []metav1.OwnerReference{{UID: "o"}} },
	} {
		c := base.DeepCopy()
		change(c)
		if !matters(base, c) {
			t.Errorf("a change of %s is ignored", name)
		}
	}
	c := base.DeepCopy()
	c.ResourceVersion, c.Labels = "2", map[string]string{"a": "b"}
	if matters(base, c) {
		t.Error("a label change is processed")
	}
	trimmed, _ := trimMetadata(&metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "x", UID: "u",
		Labels: map[string]string{"a": "b"}, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m"}}, Finalizers: []string{"f"}}})
	if m := trimmed.(*metav1.PartialObjectMetadata); m.Labels != nil || m.ManagedFields != nil || m.Name != "x" || len(m.Finalizers) != 1 {
		t.Errorf("trimmed %+v", m.ObjectMeta)
	}
}

// deletes are the fake client's delete actions: name and propagation.
func (g *testGC) deletes() []string {
	var ret []string
	for _, a := range g.client.Actions() {
		if d, ok := a.(clienttesting.DeleteActionImpl); ok {
			p := ""
			if d.DeleteOptions.PropagationPolicy != nil {
				p = string(*d.DeleteOptions.PropagationPolicy)
			}
			if d.DeleteOptions.Preconditions == nil || d.DeleteOptions.Preconditions.UID == nil {
				p += " without uid precondition"
			}
			ret = append(ret, d.Name+" "+p)
		}
	}
	return ret
}

// A dependent whose owner waits for its dependents, and that has
// dependents itself, is deleted in the foreground; one with no owner left
// that carries the orphan finalizer is deleted with Orphan.
func TestAttemptToDeletePolicies(t *testing.T) {
	now := metav1.Now()
	owner := cm("ns", "owner", "o1")
	owner.DeletionTimestamp, owner.Finalizers = &now, []string{metav1.FinalizerDeleteDependents}
	mid := cm("ns", "mid", "m1", ownedBy(owner, true))
	leaf := cm("ns", "leaf", "l1", ownedBy(mid, true))
	orphaner := cm("ns", "orphaner", "p1", metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "gone", UID: "g1"})
	orphaner.Finalizers = []string{metav1.FinalizerOrphanDependents}
	g := newTestGC(t, owner, mid, leaf, orphaner)
	g.process(t, add(owner), add(mid), add(leaf), add(orphaner))
	ctx := context.Background()
	for _, uid := range []types.UID{"m1", "p1"} {
		n, _ := g.graph.read(uid)
		if err := g.attemptToDeleteItem(ctx, n); err != nil {
			t.Fatalf("%s: %v", uid, err)
		}
	}
	if got, want := g.deletes(), []string{"mid Foreground", "orphaner Orphan"}; !slices.Equal(got, want) {
		t.Errorf("deletes %q, want %q", got, want)
	}
	// The owner waits while its blocking dependent is there.
	n, _ := g.graph.read("o1")
	if err := g.attemptToDeleteItem(ctx, n); err != nil {
		t.Fatal(err)
	}
	if got := drain(g.attemptToDelete); !slices.Contains(got, "m1") {
		t.Errorf("attemptToDelete %v, want the blocking dependent queued", got)
	}
	for _, a := range g.client.Actions() {
		if a.GetVerb() == "patch" {
			t.Errorf("owner patched (%v) while a blocking dependent remains", a)
		}
	}
}

// A node whose references no longer block gets a patch that leaves them
// alone (a null list would drop them all).
func TestUnblockPatchKeepsReferences(t *testing.T) {
	n := newNode(objectReference{OwnerReference: metav1.OwnerReference{UID: "d1"}}, []metav1.OwnerReference{{UID: "o1", Name: "o", Kind: "Pod", APIVersion: "v1"}})
	p, err := unblockOwnerReferencesSMP(n)
	if err != nil || string(p) != `{"metadata":{"uid":"d1"}}` {
		t.Errorf("patch %s (%v), want only the uid", p, err)
	}
	n.setOwners([]metav1.OwnerReference{{UID: "o1", Name: "o", Kind: "Pod", APIVersion: "v1", BlockOwnerDeletion: ptr.To(true)}})
	if p, _ = unblockOwnerReferencesSMP(n); !strings.Contains(string(p), `"blockOwnerDeletion":false`) {
		t.Errorf("patch %s does not unblock", p)
	}
}
