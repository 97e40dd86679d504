package nodeipam

import (
	"context"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func node(name string, cidrs ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name)}}
	if len(cidrs) > 0 {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = cidrs[0], cidrs
	}
	return n
}

// staleCache reads from cache and writes to the API (api), as the
// manager's client whose cache lags behind.
type staleCache struct {
	client.Client // the API
	cache         client.Reader
	patchErr      error
}

func (s *staleCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	return s.cache.Get(ctx, key, obj, opts...)
}

func (s *staleCache) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return s.cache.List(ctx, list, opts...)
}

func (s *staleCache) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if s.patchErr != nil {
		return s.patchErr
	}
	return s.Client.Patch(ctx, obj, patch, opts...)
}

type fixture struct {
	t        *testing.T
	api      client.Client
	r        *Reconciler
	recorder *record.FakeRecorder
}

func newFixture(t *testing.T, clusterCIDR string, mask int, nodes ...*corev1.Node) *fixture {
	t.Helper()
	cfg, err := ParseConfig(clusterCIDR, mask, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var objs []client.Object
	for _, n := range nodes {
		objs = append(objs, n)
	}
	api := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(objs...).Build()
	rec := record.NewFakeRecorder(100)
	return &fixture{t: t, api: api, recorder: rec, r: &Reconciler{Client: api, Config: cfg, Recorder: rec}}
}

func (f *fixture) reconcile(name string) error {
	_, err := f.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Name: name}})
	return err
}

func (f *fixture) create(n *corev1.Node) {
	f.t.Helper()
	if err := f.api.Create(context.Background(), n); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) delete(name string) {
	f.t.Helper()
	if err := f.api.Delete(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) cidrs(name string) []string {
	f.t.Helper()
	n := &corev1.Node{}
	if err := f.api.Get(context.Background(), client.ObjectKey{Name: name}, n); err != nil {
		f.t.Fatal(err)
	}
	if len(n.Spec.PodCIDRs) > 0 && n.Spec.PodCIDR != n.Spec.PodCIDRs[0] {
		f.t.Errorf("%s: podCIDR %s, podCIDRs %v", name, n.Spec.PodCIDR, n.Spec.PodCIDRs)
	}
	return n.Spec.PodCIDRs
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

func (f *fixture) want(name string, cidrs ...string) {
	f.t.Helper()
	if got := f.cidrs(name); !reflect.DeepEqual(got, cidrs) {
		f.t.Errorf("%s: podCIDRs %v, want %v", name, got, cidrs)
	}
}

func TestAllocatesInOrderAndSkipsUsed(t *testing.T) {
	// 10.244.1.0/24 is taken when the controller starts (a restart), and
	// so, by a /23, are .4 and .5.
	f := newFixture(t, "10.244.0.0/16", 24, node("a"), node("b"), node("c"), node("d"),
		node("old", "10.244.1.0/24"), node("big", "10.244.4.0/23"), node("mine", "10.244.3.0/24"))
	for _, n := range []string{"old", "big", "mine", "a", "b", "c", "d"} {
		if err := f.reconcile(n); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
	f.want("a", "10.244.0.0/24")
	f.want("b", "10.244.2.0/24")
	f.want("c", "10.244.6.0/24")
	f.want("d", "10.244.7.0/24")
	f.want("old", "10.244.1.0/24")
	f.want("mine", "10.244.3.0/24")
	f.want("big", "10.244.4.0/23")
	// Idempotent: nothing changes on a second pass.
	for _, n := range []string{"a", "b", "c", "d", "missing"} {
		if err := f.reconcile(n); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
	f.want("a", "10.244.0.0/24")
	f.want("d", "10.244.7.0/24")
}

func TestReleaseAndWrap(t *testing.T) {
	// Four node CIDRs in all.
	f := newFixture(t, "10.0.0.0/30", 32, node("n0"), node("n1"), node("n2"), node("n3"))
	for _, n := range []string{"n0", "n1", "n2", "n3"} {
		if err := f.reconcile(n); err != nil {
			t.Fatal(err)
		}
	}
	f.want("n3", "10.0.0.3/32")
	f.create(node("n4"))
	err := f.reconcile("n4")
	if err == nil || !strings.Contains(err.Error(), ErrNoCIDRsRemaining.Error()) {
		t.Fatalf("a full range: %v", err)
	}
	f.want("n4")
	if ev := f.events(); len(ev) != 1 || ev[0] != "Normal CIDRNotAvailable Node n4 status is now: CIDRNotAvailable" {
		t.Errorf("events %q", ev)
	}
	// Deleting a Node frees its CIDR.
	f.delete("n1")
	if err := f.reconcile("n4"); err != nil {
		t.Fatal(err)
	}
	f.want("n4", "10.0.0.1/32")
	// Freed twice: the one after the last handed out comes first.
	f.delete("n0")
	f.delete("n2")
	f.create(node("n5"))
	f.create(node("n6"))
	for _, n := range []string{"n5", "n6"} {
		if err := f.reconcile(n); err != nil {
			t.Fatal(err)
		}
	}
	f.want("n5", "10.0.0.2/32")
	f.want("n6", "10.0.0.0/32")
}

func TestDualStack(t *testing.T) {
	cfg, err := ParseConfig("10.244.0.0/16,fd00:10:244::/56", 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, "10.244.0.0/16", 24, node("a"), node("b"), node("old", "10.244.0.0/24", "fd00:10:244:1::/64"))
	f.r.Config = cfg
	for _, n := range []string{"a", "b"} {
		if err := f.reconcile(n); err != nil {
			t.Fatal(err)
		}
	}
	f.want("a", "10.244.1.0/24", "fd00:10:244::/64")
	f.want("b", "10.244.2.0/24", "fd00:10:244:2::/64")
	if ev := f.events(); len(ev) != 0 {
		t.Errorf("events %q", ev)
	}
}

// TestStaleCache: two Nodes allocated before the cache shows the first's
// CIDR get different ones, and a second pass over the first while the
// cache still lags does not patch again.
func TestStaleCache(t *testing.T) {
	f := newFixture(t, "10.244.0.0/16", 24)
	cache := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(node("a"), node("b")).Build()
	f.create(node("a"))
	f.create(node("b"))
	sc := &staleCache{Client: f.api, cache: cache}
	f.r.Client = sc
	f.r.init()
	for _, n := range []string{"a", "b", "a", "b"} {
		// As after going round the range: the first candidate is a's.
		f.r.next[0] = 0
		if err := f.reconcile(n); err != nil {
			t.Fatal(err)
		}
	}
	f.want("a", "10.244.0.0/24")
	f.want("b", "10.244.1.0/24")
	if len(f.r.pending) != 2 {
		t.Errorf("pending %v", f.r.pending)
	}
	// The cache catches up: the pending allocations are dropped, the CIDRs
	// stay in use through the Nodes.
	for _, n := range []string{"a", "b"} {
		fresh := &corev1.Node{}
		_ = f.api.Get(context.Background(), client.ObjectKey{Name: n}, fresh)
		_ = cache.Delete(context.Background(), node(n))
		fresh.ResourceVersion = ""
		_ = cache.Create(context.Background(), fresh)
	}
	_ = cache.Create(context.Background(), node("c"))
	f.create(node("c"))
	f.r.next[0] = 0
	if err := f.reconcile("c"); err != nil {
		t.Fatal(err)
	}
	f.want("c", "10.244.2.0/24")
	if len(f.r.pending) != 1 || f.r.pending["uid-c"] == nil {
		t.Errorf("pending %v", f.r.pending)
	}
}

// TestPatchFailures: a refused patch frees the CIDR; one that may have been
// applied keeps it for the Node, which gets the same one next time.
func TestPatchFailures(t *testing.T) {
	f := newFixture(t, "10.244.0.0/16", 24, node("a"), node("b"))
	sc := &staleCache{Client: f.api, cache: f.api, patchErr: apierrors.NewTimeoutError("slow", 1)}
	f.r.Client = sc
	if err := f.reconcile("a"); err == nil {
		t.Fatal("no error for a timed-out patch")
	}
	sc.patchErr = apierrors.NewInvalid(schema.GroupKind{Kind: "Node"}, "b", nil)
	if err := f.reconcile("b"); err == nil {
		t.Fatal("no error for a refused patch")
	}
	if ev := f.events(); len(ev) != 1 || ev[0] != "Normal CIDRAssignmentFailed Node b status is now: CIDRAssignmentFailed" {
		t.Errorf("events %q", ev)
	}
	sc.patchErr = nil
	// b first: a's CIDR is still reserved for it.
	for _, n := range []string{"b", "a"} {
		if err := f.reconcile(n); err != nil {
			t.Fatal(err)
		}
	}
	f.want("a", "10.244.0.0/24")
	f.want("b", "10.244.2.0/24")
	// The NotFound of a Node deleted meanwhile is no error.
	sc.patchErr = apierrors.NewNotFound(schema.GroupResource{Resource: "nodes"}, "c")
	f.create(node("c"))
	if err := f.reconcile("c"); err != nil || len(f.r.pending) != 0 {
		t.Errorf("a Node gone: %v, pending %v", err, f.r.pending)
	}
}

// TestForeignPodCIDRs: podCIDRs not from the cluster CIDRs are left alone,
// reported once.
func TestForeignPodCIDRs(t *testing.T) {
	f := newFixture(t, "10.244.0.0/16", 24, node("out", "192.168.0.0/24"), node("size", "10.244.8.0/25"),
		node("v6", "fd00::/64"), node("fine", "10.244.9.0/24"), node("new"))
	for _, n := range []string{"out", "size", "v6", "fine", "out", "size"} {
		if err := f.reconcile(n); err != nil {
			t.Fatal(err)
		}
	}
	f.want("out", "192.168.0.0/24")
	f.want("size", "10.244.8.0/25")
	ev := f.events()
	if len(ev) != 3 {
		t.Fatalf("events %q", ev)
	}
	for i, want := range []string{"192.168.0.0/24 is outside the cluster CIDRs 10.244.0.0/16", "10.244.8.0/25 is not a /24", "fd00::/64 is outside"} {
		if !strings.HasPrefix(ev[i], "Warning "+ReasonPodCIDRNotAllocated+" ") || !strings.Contains(ev[i], want) {
			t.Errorf("event %d: %q, want one with %q", i, ev[i], want)
		}
	}
	// The /25 holds its /24.
	f.r.next[0] = 8
	if err := f.reconcile("new"); err != nil {
		t.Fatal(err)
	}
	f.want("new", "10.244.10.0/24")
}
