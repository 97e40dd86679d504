package volumebinding

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	clienttesting "k8s.io/client-go/testing"
	storagehelpers "k8s.io/component-helpers/storage/volume"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/internal/testhandle"
)

// live is the plugin over a fake API server with started informers.
type live struct {
	t     *testing.T
	pl    *VolumeBinding
	h     *testhandle.Handle
	nodes []*framework.NodeInfo
}

func startLive(t *testing.T, objs ...runtime.Object) *live {
	t.Helper()
	nodes := []*framework.NodeInfo{node("n1"), node("n2")}
	for _, n := range nodes {
		objs = append(objs, n.Node())
	}
	h := testhandle.New(nodes, objs...)
	// Writes get increasing resourceVersions, as from etcd.
	var rv atomic.Int64
	rv.Store(100)
	h.Client.PrependReactor("*", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if u, ok := a.(clienttesting.UpdateAction); ok {
			u.GetObject().(metav1.Object).SetResourceVersion(strconv.FormatInt(rv.Add(1), 10))
		}
		if c, ok := a.(clienttesting.CreateAction); ok {
			c.GetObject().(metav1.Object).SetResourceVersion(strconv.FormatInt(rv.Add(1), 10))
		}
		return false, nil, nil
	})
	p, err := New(context.Background(), nil, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h.Informers.Start(ctx.Done())
	h.Informers.WaitForCacheSync(ctx.Done())
	pl := p.(*VolumeBinding)
	pl.pollInterval = 20 * time.Millisecond
	return &live{t: t, pl: pl, h: h, nodes: nodes}
}

// schedule runs PreFilter and Filter, checks which nodes pass, and
// Reserves the pod on host ("": reserve nothing).
func (l *live) schedule(pod *v1.Pod, wantFeasible string, host string) *framework.CycleState {
	l.t.Helper()
	cs := framework.NewCycleState()
	if _, st := l.pl.PreFilter(context.Background(), cs, pod, l.nodes); !st.IsSuccess() && !st.IsSkip() {
		l.t.Fatalf("PreFilter of %s: %v", pod.Name, st)
	}
	var feasible []string
	for _, n := range l.nodes {
		if st := l.pl.Filter(context.Background(), cs, pod, n); st.IsSuccess() {
			feasible = append(feasible, n.Node().Name)
		}
	}
	if got := strings.Join(feasible, ","); got != wantFeasible {
		l.t.Fatalf("pod %s fits on %q, want %q", pod.Name, got, wantFeasible)
	}
	if host != "" {
		if st := l.pl.Reserve(context.Background(), cs, pod, host); !st.IsSuccess() {
			l.t.Fatalf("Reserve of %s: %v", pod.Name, st)
		}
	}
	return cs
}

// preBind runs PreBindPreFlight and PreBind in the background.
func (l *live) preBind(cs *framework.CycleState, pod *v1.Pod, host string) <-chan *framework.Status {
	l.t.Helper()
	if st := l.pl.PreBindPreFlight(context.Background(), cs, pod, host); !st.IsSuccess() {
		l.t.Fatalf("PreBindPreFlight: %v, want success", st)
	}
	assumed := pod.DeepCopy()
	assumed.Spec.NodeName = host
	done := make(chan *framework.Status, 1)
	go func() { done <- l.pl.PreBind(context.Background(), cs, assumed, host) }()
	return done
}

// eventually waits for cond on the fake API server's claim or PV.
func (l *live) eventually(what string, cond func() bool) {
	l.t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		return cond(), nil
	}); err != nil {
		l.t.Fatalf("%s: %v", what, err)
	}
}

func (l *live) claim(name string) *v1.PersistentVolumeClaim {
	c, err := l.h.Client.CoreV1().PersistentVolumeClaims("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		l.t.Fatal(err)
	}
	return c
}

func (l *live) pv(name string) *v1.PersistentVolume {
	pv, err := l.h.Client.CoreV1().PersistentVolumes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		l.t.Fatal(err)
	}
	return pv
}

// bindClaim does what the PV controller does once a claim has its PV.
func (l *live) bindClaim(name, volume string) {
	l.t.Helper()
	c := l.claim(name)
	c.Spec.VolumeName = volume
	metav1.SetMetaDataAnnotation(&c.ObjectMeta, storagehelpers.AnnBindCompleted, "yes")
	c.Status.Phase = v1.ClaimBound
	if _, err := l.h.Client.CoreV1().PersistentVolumeClaims("default").Update(context.Background(), c, metav1.UpdateOptions{}); err != nil {
		l.t.Fatal(err)
	}
}

func await(t *testing.T, done <-chan *framework.Status) *framework.Status {
	t.Helper()
	select {
	case st := <-done:
		return st
	case <-time.After(10 * time.Second):
		t.Fatal("PreBind did not return")
		return nil
	}
}

func versioned[T interface{ SetResourceVersion(string) }](o T) T {
	o.SetResourceVersion("1")
	return o
}

func namedPod(name string, claims ...string) *v1.Pod {
	p := podWith(claims...)
	p.Name, p.UID, p.ResourceVersion = name, types.UID("uid-"+name), "1"
	return p
}

// TestStaticBinding: Reserve assumes the PV taken, so another claim's
// cycle does not get it; Unreserve gives it back; PreBind writes the
// claimRef and returns once the PV controller has bound the claim.
func TestStaticBinding(t *testing.T) {
	local := class("local", storagev1.VolumeBindingWaitForFirstConsumer)
	local.Provisioner = storagehelpers.NotSupportedProvisioner
	data := versioned(sized(claim("data", "local", "", false), "5Gi"))
	data.UID = "uid-data"
	other := versioned(sized(claim("other", "local", "", false), "5Gi"))
	pod, pod2 := namedPod("p", "data"), namedPod("p2", "other")
	l := startLive(t, local, data, other, versioned(availablePV("pv-n1", "local", "n1", "10Gi")), pod, pod2)

	cs := l.schedule(pod, "n1", "n1")
	assumed, err := l.pl.pvCache.Get("pv-n1")
	if err != nil {
		t.Fatal(err)
	}
	if ref := assumed.Spec.ClaimRef; ref == nil || ref.Name != "data" || ref.UID != "uid-data" || assumed.Annotations[storagehelpers.AnnBoundByController] != "yes" {
		t.Fatalf("assumed PV: claimRef %+v, annotations %v", ref, assumed.Annotations)
	}
	if l.pv("pv-n1").Spec.ClaimRef != nil {
		t.Fatal("Reserve wrote the PV")
	}
	// A concurrent cycle: the only PV is taken.
	l.schedule(pod2, "", "")
	l.pl.Unreserve(context.Background(), cs, pod, "n1")
	l.schedule(pod2, "n1", "")

	cs = l.schedule(pod, "n1", "n1")
	done := l.preBind(cs, pod, "n1")
	l.eventually("PV pre-bound in the API", func() bool {
		ref := l.pv("pv-n1").Spec.ClaimRef
		return ref != nil && ref.Name == "data" && ref.Namespace == "default" && ref.UID == "uid-data"
	})
	select {
	case st := <-done:
		t.Fatalf("PreBind returned before the claim was bound: %v", st)
	case <-time.After(100 * time.Millisecond):
	}
	l.bindClaim("data", "pv-n1")
	if st := await(t, done); !st.IsSuccess() {
		t.Fatalf("PreBind: %v", st)
	}
}

// localPath is a class that provisions, as skiff's default.
func localPath() *storagev1.StorageClass {
	lp := class("local-path", storagev1.VolumeBindingWaitForFirstConsumer)
	lp.Provisioner = "skiff.dev/local-path"
	return lp
}

// startProvisioning: pod p using the local-path claim "data", and more.
func startProvisioning(t *testing.T, more ...runtime.Object) (*live, *v1.Pod) {
	pod := namedPod("p", "data")
	return startLive(t, append(more, localPath(), versioned(sized(claim("data", "local-path", "", false), "1Gi")), pod)...), pod
}

// TestDynamicProvisioning: Reserve assumes the selected node (another
// pod of the claim then fits only there); PreBind writes the annotation
// and waits for the provisioned PV to be bound; a provisioner removing
// the annotation fails the binding.
func TestDynamicProvisioning(t *testing.T) {
	sharing := namedPod("p2", "data")
	l, pod := startProvisioning(t, sharing)

	cs := l.schedule(pod, "n1,n2", "n2")
	if c, _ := l.pl.pvcCache.Get("default/data"); c.Annotations[storagehelpers.AnnSelectedNode] != "n2" {
		t.Fatalf("assumed claim annotations %v", c.Annotations)
	}
	if c, _ := l.pl.pvcCache.GetAPIObj("default/data"); c.Annotations[storagehelpers.AnnSelectedNode] != "" {
		t.Fatal("Reserve changed the informer's claim")
	}
	l.schedule(sharing, "n2", "")
	done := l.preBind(cs, pod, "n2")
	l.eventually("selected-node written", func() bool {
		return l.claim("data").Annotations[storagehelpers.AnnSelectedNode] == "n2"
	})
	// The provisioned PV, with node affinity to n2.
	pv := versioned(availablePV("pvc-data", "local-path", "n2", "1Gi"))
	if _, err := l.h.Client.CoreV1().PersistentVolumes().Create(context.Background(), pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	l.bindClaim("data", "pvc-data")
	if st := await(t, done); !st.IsSuccess() {
		t.Fatalf("PreBind: %v", st)
	}
}

// TestProvisioningGivenUp: the provisioner removing selected-node fails
// PreBind (the pod is scheduled again).
func TestProvisioningGivenUp(t *testing.T) {
	l, pod := startProvisioning(t)
	cs := l.schedule(pod, "n1,n2", "n1")
	done := l.preBind(cs, pod, "n1")
	l.eventually("selected-node written", func() bool {
		return l.claim("data").Annotations[storagehelpers.AnnSelectedNode] == "n1"
	})
	c := l.claim("data")
	delete(c.Annotations, storagehelpers.AnnSelectedNode)
	if _, err := l.h.Client.CoreV1().PersistentVolumeClaims("default").Update(context.Background(), c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	st := await(t, done)
	if st.Code() != framework.Error || !strings.Contains(st.Message(), `provisioning failed for PVC "data"`) {
		t.Errorf("PreBind: %v, want provisioning failed", st)
	}
	// Unreserve after the failure: the next cycle sees the claim as the
	// API server has it.
	l.pl.Unreserve(context.Background(), cs, pod, "n1")
	l.schedule(pod, "n1,n2", "")
}

// TestBindTimeout: the claim never binds; PreBind gives up after
// bindTimeoutSeconds.
func TestBindTimeout(t *testing.T) {
	l, pod := startProvisioning(t)
	l.pl.bindTimeout = 300 * time.Millisecond
	cs := l.schedule(pod, "n1,n2", "n1")
	start := time.Now()
	st := await(t, l.preBind(cs, pod, "n1"))
	if st.Code() != framework.Error || !strings.Contains(st.Message(), "binding volumes: context deadline exceeded") {
		t.Errorf("PreBind: %v, want a timeout", st)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("gave up after %v", d)
	}
}

// TestPodGoneWhileBinding: the pod deleted during PreBind ends the wait.
func TestPodGoneWhileBinding(t *testing.T) {
	l, pod := startProvisioning(t)
	cs := l.schedule(pod, "n1,n2", "n1")
	done := l.preBind(cs, pod, "n1")
	if err := l.h.Client.CoreV1().Pods("default").Delete(context.Background(), "p", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if st := await(t, done); !strings.Contains(st.Message(), "pod does not exist any more") {
		t.Errorf("PreBind: %v", st)
	}
}

// TestAllBound: nothing to do, PreBind is skipped and writes nothing.
func TestAllBound(t *testing.T) {
	pod := namedPod("p", "local")
	l := startLive(t, versioned(claim("local", "", "pv-n1", true)), versioned(localPV("pv-n1", "n1")), pod)
	cs := l.schedule(pod, "n1", "n1")
	if st := l.pl.PreBindPreFlight(context.Background(), cs, pod, "n1"); !st.IsSkip() {
		t.Errorf("PreBindPreFlight: %v, want Skip", st)
	}
	if st := l.pl.PreBind(context.Background(), cs, pod, "n1"); !st.IsSuccess() {
		t.Errorf("PreBind: %v", st)
	}
	noClaims := namedPod("none")
	cs = l.schedule(noClaims, "n1,n2", "")
	if st := l.pl.Reserve(context.Background(), cs, noClaims, "n1"); !st.IsSuccess() {
		t.Fatal(st)
	}
	if st := l.pl.PreBindPreFlight(context.Background(), cs, noClaims, "n1"); !st.IsSkip() {
		t.Errorf("PreBindPreFlight without claims: %v, want Skip", st)
	}
	for _, a := range l.h.Client.Actions() {
		if a.GetVerb() == "update" {
			t.Errorf("unexpected write %v", a)
		}
	}
}

// TestScore: the emptier the chosen static PV would be, the better.
func TestScore(t *testing.T) {
	local := class("local", storagev1.VolumeBindingWaitForFirstConsumer)
	local.Provisioner = storagehelpers.NotSupportedProvisioner
	pod := namedPod("p", "data")
	l := startLive(t, local, versioned(sized(claim("data", "local", "", false), "5Gi")),
		versioned(availablePV("pv-n1", "local", "n1", "10Gi")), versioned(availablePV("pv-n2", "local", "n2", "100Gi")), pod)
	cs := l.schedule(pod, "n1,n2", "")
	if st := l.pl.PreScore(context.Background(), cs, pod, l.nodes); !st.IsSuccess() {
		t.Fatalf("PreScore: %v", st)
	}
	for i, want := range []int64{50, 95} {
		if got, st := l.pl.Score(context.Background(), cs, pod, l.nodes[i]); got != want || !st.IsSuccess() {
			t.Errorf("score on %s: %d %v, want %d", l.nodes[i].Node().Name, got, st, want)
		}
	}
	// Provisioning only: nothing to score.
	l, dyn := startProvisioning(t)
	cs = l.schedule(dyn, "n1,n2", "")
	if st := l.pl.PreScore(context.Background(), cs, dyn, l.nodes); !st.IsSkip() {
		t.Errorf("PreScore without static bindings: %v, want Skip", st)
	}
}
