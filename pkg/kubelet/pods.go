package kubelet

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/skiff-dev/skiff/pkg/kubelet/admission"
	"github.com/skiff-dev/skiff/pkg/kubelet/container"
	"github.com/skiff-dev/skiff/pkg/kubelet/status"
	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

// nodeMissingRetry is how soon a pod bound to a node that is not
// registered is looked at again.
const nodeMissingRetry = 10 * time.Second

// PodHost is one node as its pods see it: the runtime that runs them, the
// node's addresses and allocatable, and the pods it admitted.
type PodHost struct {
	Name        string
	Runtime     Runtime
	HostIPs     []string
	Allocatable corev1.ResourceList
	// Ready tells a running container's readiness; nil: ready.
	Ready func(pod *corev1.Pod, container string) bool
	// Started tells whether a running container passed its startup probe;
	// nil: started once running.
	Started func(pod *corev1.Pod, container string) bool
	// Admit refuses new pods for the node's conditions (eviction's
	// pressure); nil: none refused.
	Admit    func(pod *corev1.Pod) (ok bool, reason, message string)
	Recorder record.EventRecorder

	mu sync.Mutex
	// admitted are the admitted pods with their requests at admission.
	admitted map[types.UID]admittedPod
	used     corev1.ResourceList
	// ports are the host ports of the admitted pods, usedPorts all of them.
	ports     map[types.UID][]corev1.ContainerPort
	usedPorts framework.HostPortInfo
}

// admit admits the pod if the node holds it next to the pods it admitted
// before (their resources, their host ports); a pod admitted once stays
// so. A pod already running (an agent restart) is admitted as it is. node
// is the Node as the API has it: its extended resources (others patch
// them in) count with the host's own allocatable.
func (h *PodHost) admit(pod *corev1.Pod, node *corev1.Node) rejection {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.admitted == nil {
		h.admitted, h.used = map[types.UID]admittedPod{}, corev1.ResourceList{}
		h.ports, h.usedPorts = map[types.UID][]corev1.ContainerPort{}, framework.HostPortInfo{}
	}
	if _, ok := h.admitted[pod.UID]; ok {
		return nil
	}
	requests := admission.Requests(pod)
	if pod.Status.Phase != corev1.PodRunning {
		// As upstream: the node's conditions first, then the resources;
		// a pod already running (an agent restart) is not refused.
		if h.Admit != nil {
			if ok, reason, message := h.Admit(pod); !ok {
				return refused{reason: reason, message: message}
			}
		}
		if r := admission.Fit(requests, h.granted(), len(h.admitted), admission.Allocatable(h.Allocatable, node)); r != nil {
			return r
		}
		if r := admission.FitPorts(pod, h.usedPorts); r != nil {
			return r
		}
	}
	h.admitted[pod.UID] = admittedPod{pod: pod, requests: requests}
	h.ports[pod.UID] = framework.GetHostPorts(pod)
	for _, p := range h.ports[pod.UID] {
		h.usedPorts.Add(p.HostIP, string(p.Protocol), p.HostPort)
	}
	admission.Add(h.used, requests)
	return nil
}

// admittedPod is a pod the node admitted, with its requests then.
type admittedPod struct {
	pod      *corev1.Pod
	requests corev1.ResourceList
}

// granted is what the admitted pods hold, as upstream's admission counts
// them: a pod resized in place with what the node granted it, the others
// with their requests at admission.
func (h *PodHost) granted() corev1.ResourceList {
	rt, ok := h.Runtime.(AllocatingRuntime)
	if !ok {
		return h.used
	}
	out := corev1.ResourceList{}
	for _, a := range h.admitted {
		requests, ok := rt.AllocatedRequests(a.pod)
		if !ok {
			requests = a.requests
		}
		admission.Add(out, requests)
	}
	return out
}

// rejection is why a pod is refused: its status reason and message.
type rejection interface {
	Reason() string
	Error() string
}

// refused is a rejection of PodHost.Admit.
type refused struct{ reason, message string }

func (r refused) Reason() string { return r.reason }
func (r refused) Error() string  { return r.message }

// release frees what an admitted pod held.
func (h *PodHost) release(uid types.UID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if a, ok := h.admitted[uid]; ok {
		admission.Sub(h.used, a.requests)
		delete(h.admitted, uid)
		for _, p := range h.ports[uid] {
			h.usedPorts.Remove(p.HostIP, string(p.Protocol), p.HostPort)
		}
		delete(h.ports, uid)
	}
}

// PodWorkers sync the pods of many nodes from one pod informer: events
// are dispatched by spec.nodeName to the node's PodHost, and a few
// workers serve one queue, so waiting (a start delay, a back-off, a grace
// period) costs a queue entry, not a goroutine.
type PodWorkers struct {
	pods   corelisters.PodLister
	nodes  corelisters.NodeLister
	status *status.Manager
	clock  clock.Clock
	queue  workqueue.TypedRateLimitingInterface[string]

	mu    sync.RWMutex
	hosts map[string]*PodHost
	// seen are the pods synced, by key, to clean up after they are gone.
	seen map[string]seenPod
}

type seenPod struct {
	uid  types.UID
	node string
}

// NewPodWorkers serves the pods of pods (an informer's lister) on the
// nodes added with AddHost.
func NewPodWorkers(pods corelisters.PodLister, nodes corelisters.NodeLister, statuses *status.Manager, clk clock.Clock) *PodWorkers {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &PodWorkers{
		pods: pods, nodes: nodes, status: statuses, clock: clk,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "pods"}),
		hosts: map[string]*PodHost{},
		seen:  map[string]seenPod{},
	}
}

// AddHost makes the workers serve the pods bound to h.Name.
func (w *PodWorkers) AddHost(h *PodHost) {
	w.mu.Lock()
	w.hosts[h.Name] = h
	w.mu.Unlock()
}

func (w *PodWorkers) host(name string) *PodHost {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.hosts[name]
}

// Handler queues the pods of the nodes served; others are ignored.
func (w *PodWorkers) Handler() cache.ResourceEventHandler {
	enqueue := func(obj any) {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		pod, ok := obj.(*corev1.Pod)
		if !ok || w.host(pod.Spec.NodeName) == nil {
			return
		}
		key, err := cache.MetaNamespaceKeyFunc(pod)
		if err == nil {
			w.queue.Add(key)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	}
}

// Enqueue syncs the pod of that namespace and name again (a static pod's
// manifest changed).
func (w *PodWorkers) Enqueue(namespace, name string) {
	w.queue.Add(namespace + "/" + name)
}

// EnqueueUID syncs the pod of that UID again (a probe result changed).
// It looks the pod up among those synced: cheap on a real node's few
// pods, not meant for thousands of simulated ones.
func (w *PodWorkers) EnqueueUID(uid types.UID) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	for key, p := range w.seen {
		if p.uid == uid {
			w.queue.Add(key)
			return
		}
	}
}

// Run serves the queue with workers goroutines until ctx ends.
func (w *PodWorkers) Run(ctx context.Context, workers int) {
	defer w.queue.ShutDown()
	for range workers {
		go wait.UntilWithContext(ctx, w.work, time.Second)
	}
	go wait.UntilWithContext(ctx, w.housekeeping, time.Minute)
	<-ctx.Done()
}

func (w *PodWorkers) work(ctx context.Context) {
	for {
		key, quit := w.queue.Get()
		if quit {
			return
		}
		requeue, err := w.sync(ctx, key)
		switch {
		case err != nil:
			utilruntime.HandleErrorWithContext(ctx, err, "Syncing pod failed; will retry", "pod", key)
			w.queue.AddRateLimited(key)
		case requeue > 0:
			w.queue.Forget(key)
			w.queue.AddAfter(key, requeue)
		default:
			w.queue.Forget(key)
		}
		w.queue.Done(key)
	}
}

// sync brings one pod's runtime and status in line with the API and
// says when to look again.
func (w *PodWorkers) sync(ctx context.Context, key string) (time.Duration, error) {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	pod, err := w.pods.Pods(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, w.gone(ctx, key)
	}
	if err != nil {
		return 0, err
	}
	h := w.host(pod.Spec.NodeName)
	if h == nil {
		return 0, nil
	}
	w.mu.Lock()
	before, ok := w.seen[key]
	w.seen[key] = seenPod{uid: pod.UID, node: h.Name}
	w.mu.Unlock()
	if ok && before.uid != pod.UID {
		// Replaced by a pod of the same name.
		w.cleanup(ctx, before)
	}
	node, err := w.nodes.Get(h.Name)
	if apierrors.IsNotFound(err) {
		// The node is deleted (or not registered yet): its pods are not
		// ours to run until it is back.
		return nodeMissingRetry, nil
	}
	logger := klog.FromContext(ctx).WithValues("pod", klog.KObj(pod), "node", h.Name)

	switch {
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return w.syncTerminal(ctx, h, pod)
	case pod.DeletionTimestamp != nil:
		return w.syncDeleted(ctx, h, pod)
	}
	if r := h.admit(pod, node); r != nil {
		logger.V(2).Info("Pod rejected", "reason", r.Reason(), "message", r.Error())
		if h.Recorder != nil {
			h.Recorder.Eventf(pod, corev1.EventTypeWarning, r.Reason(), "%s", r.Error())
		}
		_, err := w.status.SetPodStatus(ctx, pod, status.Rejected(pod, r.Reason(), admission.MessagePrefix+r.Error(), w.clock.Now()))
		return 0, err
	}
	left, hasDeadline := activeDeadlineLeft(pod, w.clock.Now())
	if hasDeadline && left <= 0 {
		// As upstream's activeDeadlineHandler: the pod fails, its
		// containers are stopped as a terminal pod's.
		if h.Recorder != nil {
			h.Recorder.Event(pod, corev1.EventTypeNormal, reasonDeadlineExceeded, messageDeadlineExceeded)
		}
		_, err := w.status.SetPodStatus(ctx, pod, status.Rejected(pod, reasonDeadlineExceeded, messageDeadlineExceeded, w.clock.Now()))
		return 0, err
	}
	res, err := h.Runtime.SyncPod(ctx, pod)
	if err != nil {
		return 0, fmt.Errorf("pod %s on %s: %w", key, h.Name, err)
	}
	s := status.Generate(pod, res.Status, w.options(h, false))
	if _, err := w.status.SetPodStatus(ctx, pod, s); err != nil {
		return 0, err
	}
	if (s.Phase == corev1.PodSucceeded || s.Phase == corev1.PodFailed) && !res.Status.Running() {
		h.release(pod.UID)
		return 0, nil
	}
	if hasDeadline && (res.Requeue == 0 || left < res.Requeue) {
		return left, nil
	}
	return res.Requeue, nil
}

// Upstream kubelet's active deadline reason and message.
const (
	reasonDeadlineExceeded  = "DeadlineExceeded"
	messageDeadlineExceeded = "Pod was active on the node longer than the specified deadline"
)

// activeDeadlineLeft is the time until the pod's activeDeadlineSeconds
// pass, counted from its status' startTime; false: it has no deadline
// (or has not started).
func activeDeadlineLeft(pod *corev1.Pod, now time.Time) (time.Duration, bool) {
	if pod.Spec.ActiveDeadlineSeconds == nil || pod.Status.StartTime == nil {
		return 0, false
	}
	deadline := pod.Status.StartTime.Add(time.Duration(*pod.Spec.ActiveDeadlineSeconds) * time.Second)
	return deadline.Sub(now), true
}

// syncTerminal: a finished pod's containers stay stopped; deleted, it is
// confirmed gone.
func (w *PodWorkers) syncTerminal(ctx context.Context, h *PodHost, pod *corev1.Pod) (time.Duration, error) {
	res, err := h.Runtime.KillPod(ctx, pod, 0)
	if err != nil {
		return 0, err
	}
	if res.Status != nil && res.Status.Running() {
		return res.Requeue, nil
	}
	// Stopped: the containers show terminated (a pod failed by eviction
	// had them running when its phase was written).
	if res.Status != nil && len(res.Status.Containers) > 0 {
		s := status.Generate(pod, res.Status, w.options(h, true))
		if _, err := w.status.SetPodStatus(ctx, pod, s); err != nil {
			return 0, err
		}
	}
	h.release(pod.UID)
	if pod.DeletionTimestamp != nil {
		return 0, w.status.DeletePod(ctx, pod)
	}
	return 0, nil
}

// syncDeleted stops a deleted pod's containers within its grace period,
// reports them stopped, then confirms the deletion.
func (w *PodWorkers) syncDeleted(ctx context.Context, h *PodHost, pod *corev1.Pod) (time.Duration, error) {
	grace := time.Duration(0)
	if pod.DeletionGracePeriodSeconds != nil {
		grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	}
	res, err := h.Runtime.KillPod(ctx, pod, grace)
	if err != nil {
		return 0, err
	}
	running := res.Status != nil && res.Status.Running()
	// A runtime that never had the pod has nothing to report.
	if res.Status != nil && len(res.Status.Containers) > 0 {
		s := status.Generate(pod, res.Status, w.options(h, !running))
		if _, err := w.status.SetPodStatus(ctx, pod, s); err != nil {
			return 0, err
		}
	}
	if running {
		return res.Requeue, nil
	}
	h.release(pod.UID)
	klog.FromContext(ctx).V(2).Info("Containers stopped; confirming the deletion", "pod", klog.KObj(pod), "node", h.Name)
	return 0, w.status.DeletePod(ctx, pod)
}

func (w *PodWorkers) options(h *PodHost, terminal bool) status.Options {
	return status.Options{Now: w.clock.Now(), HostIPs: h.HostIPs, Ready: h.Ready, Started: h.Started, Terminal: terminal}
}

// gone forgets a pod the API no longer has.
func (w *PodWorkers) gone(ctx context.Context, key string) error {
	w.mu.Lock()
	p, ok := w.seen[key]
	delete(w.seen, key)
	w.mu.Unlock()
	if !ok {
		return nil
	}
	return w.cleanup(ctx, p)
}

func (w *PodWorkers) cleanup(ctx context.Context, p seenPod) error {
	w.status.Forget(p.uid)
	h := w.host(p.node)
	if h == nil {
		return nil
	}
	h.release(p.uid)
	return h.Runtime.RemovePod(ctx, p.uid)
}

// housekeeping removes from the runtimes the pods no longer synced (an
// event missed, a restart).
func (w *PodWorkers) housekeeping(ctx context.Context) {
	w.mu.RLock()
	hosts := make([]*PodHost, 0, len(w.hosts))
	for _, h := range w.hosts {
		hosts = append(hosts, h)
	}
	w.mu.RUnlock()
	had := make(map[*PodHost][]*container.PodStatus, len(hosts))
	for _, h := range hosts {
		statuses, err := h.Runtime.PodStatuses(ctx)
		if err != nil {
			klog.FromContext(ctx).Error(err, "Listing the runtime's pods failed", "node", h.Name)
			continue
		}
		had[h] = statuses
	}
	// Pods are marked seen before the runtime has them: read the marks
	// after the runtimes' lists.
	w.mu.RLock()
	live := make(map[types.UID]bool, len(w.seen))
	for _, p := range w.seen {
		live[p.uid] = true
	}
	w.mu.RUnlock()
	for h, statuses := range had {
		for _, s := range statuses {
			if !live[s.UID] {
				h.release(s.UID)
				_ = h.Runtime.RemovePod(ctx, s.UID)
			}
		}
	}
}
