package kubelet

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
	"github.com/skiff-dev/skiff/pkg/kubelet/status"
)

// fakeRuntime runs every container at once and stops it when killed.
type fakeRuntime struct {
	pods    map[types.UID]bool
	removed []types.UID
}

func (*fakeRuntime) Version() string                { return "fake://1" }
func (*fakeRuntime) Errors(context.Context) []error { return nil }

func (r *fakeRuntime) status(pod *corev1.Pod, state container.State) *container.PodStatus {
	s := &container.PodStatus{UID: pod.UID, SandboxReady: state == container.StateRunning, IPs: []string{"10.0.0.5"}}
	for _, c := range pod.Spec.Containers {
		cs := container.ContainerStatus{Name: c.Name, ID: "fake://" + c.Name, State: state}
		if state == container.StateExited {
			cs.Exited = &container.Termination{Reason: container.ReasonCompleted}
		}
		s.Containers = append(s.Containers, cs)
	}
	return s
}

func (r *fakeRuntime) SyncPod(_ context.Context, pod *corev1.Pod) (container.SyncResult, error) {
	r.pods[pod.UID] = true
	return container.SyncResult{Status: r.status(pod, container.StateRunning)}, nil
}

func (r *fakeRuntime) KillPod(_ context.Context, pod *corev1.Pod, _ time.Duration) (container.SyncResult, error) {
	return container.SyncResult{Status: r.status(pod, container.StateExited)}, nil
}

func (r *fakeRuntime) RemovePod(_ context.Context, uid types.UID) error {
	delete(r.pods, uid)
	r.removed = append(r.removed, uid)
	return nil
}

func (r *fakeRuntime) PodStatuses(context.Context) ([]*container.PodStatus, error) { return nil, nil }

type podsFixture struct {
	client  *fake.Clientset
	pods    cache.Indexer
	workers *PodWorkers
	rt      *fakeRuntime
	events  *record.FakeRecorder
}

func newPodsFixture(t *testing.T, objects ...*corev1.Pod) *podsFixture {
	t.Helper()
	f := &podsFixture{pods: cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}),
		rt: &fakeRuntime{pods: map[types.UID]bool{}}, events: record.NewFakeRecorder(10)}
	client := fake.NewClientset()
	for _, p := range objects {
		_ = f.pods.Add(p)
		if _, err := client.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	nodes := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	_ = nodes.Add(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}})
	client.ClearActions()
	f.client = client
	f.workers = NewPodWorkers(corelisters.NewPodLister(f.pods), corelisters.NewNodeLister(nodes), status.NewManager(client, nil), nil)
	f.workers.AddHost(&PodHost{Name: "n1", Runtime: f.rt, HostIPs: []string{"192.0.2.1"}, Recorder: f.events,
		Allocatable: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("1"), corev1.ResourceCPU: resource.MustParse("1")}})
	f.workers.AddHost(&PodHost{Name: "gone", Runtime: f.rt})
	return f
}

func (f *podsFixture) sync(t *testing.T, key string) time.Duration {
	t.Helper()
	requeue, err := f.workers.sync(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return requeue
}

func (f *podsFixture) stored(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	p, err := f.client.CoreV1().Pods("ns").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func bound(name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name)},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
}

// TestPodWorkersAdmitRunDelete: the first pod runs; the second does not
// fit (pods=1) and is Failed with OutOfpods and a Warning event; a pod
// of a node not registered waits; deleting the running pod stops it,
// reports it Succeeded and confirms with a DELETE; gone, it is removed
// from the runtime.
func TestPodWorkersAdmitRunDelete(t *testing.T) {
	f := newPodsFixture(t, bound("a", "n1"), bound("b", "n1"), bound("c", "gone"))
	f.sync(t, "ns/a")
	a := f.stored(t, "a")
	if a.Status.Phase != corev1.PodRunning || a.Status.PodIP != "10.0.0.5" || a.Status.HostIP != "192.0.2.1" {
		t.Fatalf("pod a: %+v", a.Status)
	}
	f.sync(t, "ns/b")
	b := f.stored(t, "b")
	if b.Status.Phase != corev1.PodFailed || b.Status.Reason != "OutOfpods" ||
		b.Status.Message != "Pod was rejected: Node didn't have enough resource: pods, requested: 1, used: 1, capacity: 1" {
		t.Errorf("pod b: %s %s %q", b.Status.Phase, b.Status.Reason, b.Status.Message)
	}
	if f.rt.pods["uid-b"] {
		t.Error("the rejected pod reached the runtime")
	}
	select {
	case e := <-f.events.Events:
		if e != "Warning OutOfpods Node didn't have enough resource: pods, requested: 1, used: 1, capacity: 1" {
			t.Errorf("event %q", e)
		}
	default:
		t.Error("no event for the rejected pod")
	}
	if requeue := f.sync(t, "ns/c"); requeue != nodeMissingRetry || f.rt.pods["uid-c"] {
		t.Errorf("pod of an unregistered node: requeue %s, runtime %v", requeue, f.rt.pods)
	}

	// Deleted: the informer's copy has the deletionTimestamp and the
	// status the kubelet wrote.
	a.DeletionTimestamp, a.DeletionGracePeriodSeconds = &metav1.Time{Time: time.Now()}, new(int64)
	*a.DeletionGracePeriodSeconds = 30
	_ = f.pods.Update(a)
	f.client.ClearActions()
	f.sync(t, "ns/a")
	var deleted bool
	for _, action := range f.client.Actions() {
		if d, ok := action.(clienttesting.DeleteAction); ok {
			opts := d.GetDeleteOptions()
			deleted = opts.GracePeriodSeconds != nil && *opts.GracePeriodSeconds == 0 && *opts.Preconditions.UID == "uid-a"
		}
	}
	if !deleted {
		t.Errorf("no confirming DELETE: %v", f.client.Actions())
	}
	_ = f.pods.Delete(a)
	f.sync(t, "ns/a")
	if len(f.rt.removed) != 1 || f.rt.removed[0] != "uid-a" {
		t.Errorf("removed from the runtime: %v", f.rt.removed)
	}
	// Its place is free: b's successor fits.
	_ = f.pods.Add(bound("d", "n1"))
	if _, err := f.client.CoreV1().Pods("ns").Create(context.Background(), bound("d", "n1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.sync(t, "ns/d")
	if d := f.stored(t, "d"); d.Status.Phase != corev1.PodRunning {
		t.Errorf("pod d after a left: %s %s", d.Status.Phase, d.Status.Reason)
	}
}

// TestPodWorkersActiveDeadline: a running pod with activeDeadlineSeconds
// is synced again when its deadline comes, then fails with upstream's
// DeadlineExceeded reason, message and event, and its containers stop.
func TestPodWorkersActiveDeadline(t *testing.T) {
	p := bound("a", "n1")
	p.Spec.ActiveDeadlineSeconds = ptr.To[int64](30)
	f := newPodsFixture(t, p)
	f.sync(t, "ns/a")
	// The status written (startTime) comes back through the informer.
	_ = f.pods.Update(f.stored(t, "a"))
	if requeue := f.sync(t, "ns/a"); requeue <= 25*time.Second || requeue > 30*time.Second {
		t.Errorf("a started pod is synced again after %s, want about its 30 s deadline", requeue)
	}
	running := f.stored(t, "a")
	if running.Status.Phase != corev1.PodRunning {
		t.Fatalf("pod a: %s", running.Status.Phase)
	}
	// Started 31 s ago: past its deadline.
	running.Status.StartTime = &metav1.Time{Time: time.Now().Add(-31 * time.Second)}
	_ = f.pods.Update(running)
	f.sync(t, "ns/a")
	failed := f.stored(t, "a")
	if failed.Status.Phase != corev1.PodFailed || failed.Status.Reason != "DeadlineExceeded" ||
		failed.Status.Message != "Pod was active on the node longer than the specified deadline" {
		t.Errorf("after the deadline: %s %s %q", failed.Status.Phase, failed.Status.Reason, failed.Status.Message)
	}
	select {
	case e := <-f.events.Events:
		if e != "Normal DeadlineExceeded Pod was active on the node longer than the specified deadline" {
			t.Errorf("event %q", e)
		}
	default:
		t.Error("no DeadlineExceeded event")
	}
	_ = f.pods.Update(failed)
	f.sync(t, "ns/a")
	if stopped := f.stored(t, "a"); len(stopped.Status.ContainerStatuses) == 0 || stopped.Status.ContainerStatuses[0].State.Terminated == nil {
		t.Errorf("containers of the failed pod: %+v, want terminated", stopped.Status.ContainerStatuses)
	}
}

// allocatingRuntime grants pods resizes: granted replaces their requests.
type allocatingRuntime struct {
	fakeRuntime
	granted map[types.UID]corev1.ResourceList
}

func (r *allocatingRuntime) AllocatedRequests(pod *corev1.Pod) (corev1.ResourceList, bool) {
	l, ok := r.granted[pod.UID]
	return l, ok
}

// TestAdmitCountsGrantedResources: a pod resized up in place holds what
// it was granted, not what it asked for at admission, so the next pod
// does not fit.
func TestAdmitCountsGrantedResources(t *testing.T) {
	withCPU := func(name, cpu string) *corev1.Pod {
		p := bound(name, "n1")
		p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}
		return p
	}
	rt := &allocatingRuntime{granted: map[types.UID]corev1.ResourceList{}}
	h := &PodHost{Name: "n1", Runtime: rt, Allocatable: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("10"), corev1.ResourceCPU: resource.MustParse("1")}}
	if r := h.admit(withCPU("a", "300m"), nil); r != nil {
		t.Fatalf("pod a: %v", r)
	}
	if r := h.admit(withCPU("b", "300m"), nil); r != nil {
		t.Fatalf("pod b next to a's 300m: %v", r)
	}
	h.release("uid-b")
	rt.granted["uid-a"] = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("800m")}
	r := h.admit(withCPU("c", "300m"), nil)
	if r == nil || r.Reason() != "OutOfcpu" || r.Error() != "Node didn't have enough resource: cpu, requested: 300, used: 800, capacity: 1000" {
		t.Errorf("pod c next to a resized to 800m: %v; want OutOfcpu with used 800", r)
	}
}
