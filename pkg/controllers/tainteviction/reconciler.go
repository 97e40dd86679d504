// Package tainteviction deletes the pods on a node with NoExecute taints
// they do not tolerate, as upstream's taint-eviction-controller: at once if
// a taint is not tolerated, else once the shortest tolerationSeconds of the
// tolerations used has passed; before deleting, the pod gets the
// DisruptionTarget condition. A taint removed before then cancels the
// deletion.
//
// Unlike upstream's, which starts a timer when it observes a taint, the
// deadline is derived from the state: a taint's timeAdded (or, without one,
// when this controller first saw it), but not before the pod was bound. A
// reconcile that is early comes back at the deadline, so a restart loses
// no deadline and starts none anew.
package tainteviction

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/skiff-dev/skiff/pkg/controllers/eventrecorder"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Upstream's names and texts.
const (
	// Name is the controller's, and its events' source component.
	Name = "taint-eviction-controller"
	// ReasonTaintManagerEviction is the reason of the events on the pods
	// marked for deletion and those whose deletion was cancelled.
	ReasonTaintManagerEviction = "TaintManagerEviction"
	// ReasonDeletionByTaintManager is the DisruptionTarget condition's.
	ReasonDeletionByTaintManager = "DeletionByTaintManager"
	// MessageDeletionByTaintManager is the DisruptionTarget condition's.
	MessageDeletionByTaintManager = "Taint manager: deleting due to NoExecute taint"
)

// podNodeIndex indexes the cache's pods by spec.nodeName; the name is this
// package's so that other controllers may index the same field.
const podNodeIndex = "tainteviction.spec.nodeName"

// workers as upstream's UpdateWorkerSize.
const workers = 8

// Reconciler deletes pods from nodes with NoExecute taints they do not
// tolerate (long enough).
type Reconciler struct {
	// Client reads through the manager's cache (with the pod index of
	// SetupWithManager) and writes to the API.
	Client client.Client
	// APIReader reads a pod from the API just before it is deleted, as
	// upstream's; nil: Client.
	APIReader client.Reader
	// Recorder gets the events; nil: SetupWithManager sends them through
	// Core, or nowhere without it.
	Recorder record.EventRecorder
	// Core, if Recorder is nil, is where events are written.
	Core kubernetes.Interface
	// Clock is the time (tests); nil: the real one.
	Clock clock.Clock

	once sync.Once
	mu   sync.Mutex
	// scheduled are the pods whose deletion is due at a later time: a
	// cancellation is reported for them only.
	scheduled map[types.NamespacedName]time.Time
	// seen is, per node, when each NoExecute taint without timeAdded was
	// first seen.
	seen map[string]map[taintKey]time.Time
}

type taintKey struct {
	key, value string
}

func (r *Reconciler) init() {
	r.once.Do(func() {
		if r.Clock == nil {
			r.Clock = clock.RealClock{}
		}
		if r.Recorder == nil {
			r.Recorder = &record.FakeRecorder{}
		}
		if r.APIReader == nil {
			r.APIReader = r.Client
		}
		r.scheduled = map[types.NamespacedName]time.Time{}
		r.seen = map[string]map[taintKey]time.Time{}
	})
}

// SetupWithManager registers the reconciler for pods: those added, bound
// elsewhere, with other tolerations or deleted, and all the pods of a node
// whose NoExecute taints changed.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &corev1.Pod{}, podNodeIndex, func(o client.Object) []string {
		if p, ok := o.(*corev1.Pod); ok && p.Spec.NodeName != "" {
			return []string{p.Spec.NodeName}
		}
		return nil
	}); err != nil {
		return err
	}
	if r.Recorder == nil && r.Core != nil {
		var err error
		if r.Recorder, err = eventrecorder.New(mgr, r.Core, Name); err != nil {
			return err
		}
	}
	if r.APIReader == nil {
		r.APIReader = mgr.GetAPIReader()
	}
	registerAll()
	r.init()
	podChanged := predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok := e.ObjectOld.(*corev1.Pod)
		n, ok2 := e.ObjectNew.(*corev1.Pod)
		return !ok || !ok2 || o.Spec.NodeName != n.Spec.NodeName ||
			!apiequality.Semantic.DeepEqual(o.Spec.Tolerations, n.Spec.Tolerations)
	}}
	taintsChanged := predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok := e.ObjectOld.(*corev1.Node)
		n, ok2 := e.ObjectNew.(*corev1.Node)
		return !ok || !ok2 || !apiequality.Semantic.DeepEqual(noExecuteTaints(o.Spec.Taints), noExecuteTaints(n.Spec.Taints))
	}}
	return ctrl.NewControllerManagedBy(mgr).Named("tainteviction").
		For(&corev1.Pod{}, builder.WithPredicates(podChanged)).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(r.podsOfNode), builder.WithPredicates(taintsChanged)).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

// podsOfNode notes when the node's NoExecute taints without timeAdded
// appeared and sends its pods.
func (r *Reconciler) podsOfNode(ctx context.Context, obj client.Object) []reconcile.Request {
	r.init()
	node, ok := obj.(*corev1.Node)
	if !ok {
		return nil
	}
	r.observeTaints(ctx, node.Name)
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.MatchingFields{podNodeIndex: node.Name}, client.UnsafeDisableDeepCopy); err != nil {
		klog.FromContext(ctx).Error(err, "Failed to get pods assigned to node", "node", klog.KObj(node))
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(pods.Items))
	for i := range pods.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&pods.Items[i])})
	}
	return reqs
}

// observeTaints records the first sighting of the node's NoExecute taints
// that have no timeAdded and forgets those that are gone (all of them, for
// a node gone).
func (r *Reconciler) observeTaints(ctx context.Context, nodeName string) map[taintKey]time.Time {
	node := &corev1.Node{}
	err := r.Client.Get(ctx, client.ObjectKey{Name: nodeName}, node)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		delete(r.seen, nodeName)
		return nil
	}
	old := r.seen[nodeName]
	cur := map[taintKey]time.Time{}
	for _, t := range noExecuteTaints(node.Spec.Taints) {
		if t.TimeAdded != nil {
			continue
		}
		k := taintKey{t.Key, t.Value}
		if at, ok := old[k]; ok {
			cur[k] = at
		} else {
			cur[k] = r.Clock.Now()
		}
	}
	if len(cur) == 0 {
		delete(r.seen, nodeName)
	} else {
		r.seen[nodeName] = cur
	}
	return cur
}

// Reconcile deletes the pod if a NoExecute taint of its node says so now,
// or comes back when one will.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	r.init()
	logger := klog.FromContext(ctx)
	pod := &corev1.Pod{}
	if err := r.Client.Get(ctx, req.NamespacedName, pod); err != nil {
		if apierrors.IsNotFound(err) {
			logger.V(4).Info("Noticed pod deletion", "pod", req.NamespacedName)
			r.cancel(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if pod.DeletionTimestamp != nil {
		// Being deleted already, by us or anyone else.
		r.forget(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	if pod.Spec.NodeName == "" {
		r.cancel(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	node := &corev1.Node{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: pod.Spec.NodeName}, node); err != nil {
		if apierrors.IsNotFound(err) {
			r.cancel(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	taints := noExecuteTaints(node.Spec.Taints)
	if len(taints) == 0 {
		r.cancel(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	seen := r.observeTaints(ctx, node.Name)
	now := r.Clock.Now()
	due, ok := deadline(logger, pod, taints, seen, now)
	if !ok {
		logger.V(4).Info("Current tolerations for pod tolerate forever, cancelling any scheduled deletion", "pod", req.NamespacedName)
		r.cancel(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	if now.Before(due) {
		r.mu.Lock()
		r.scheduled[req.NamespacedName] = due
		r.mu.Unlock()
		return ctrl.Result{RequeueAfter: due.Sub(now)}, nil
	}
	logger.Info("Deleting pod", "controller", Name, "pod", req.NamespacedName, "node", klog.KObj(node))
	r.Recorder.Eventf(podRef(req.NamespacedName), corev1.EventTypeNormal, ReasonTaintManagerEviction, "Marking for deletion Pod %s", req.NamespacedName)
	deleted, err := r.evict(ctx, pod)
	if err != nil {
		return ctrl.Result{}, err
	}
	if deleted {
		podDeletionsTotal.Inc()
		podDeletionsLatency.Observe(r.Clock.Since(due).Seconds())
	}
	r.forget(req.NamespacedName)
	return ctrl.Result{}, nil
}

// deadline is when the pod must go: at once for a taint it does not
// tolerate, else the earliest time a toleration with tolerationSeconds
// runs out; false if every taint is tolerated forever. Each taint counts
// from its timeAdded (seen, without one), but not from before the pod was
// bound.
func deadline(logger klog.Logger, pod *corev1.Pod, taints []corev1.Taint, seen map[taintKey]time.Time, now time.Time) (time.Time, bool) {
	bound := boundAt(pod)
	var due time.Time
	found := false
	for i := range taints {
		t := &taints[i]
		tol := matchingToleration(logger, pod.Spec.Tolerations, t)
		if tol == nil {
			return now, true
		}
		if tol.TolerationSeconds == nil {
			continue
		}
		start := now
		if t.TimeAdded != nil {
			start = t.TimeAdded.Time
		} else if at, ok := seen[taintKey{t.Key, t.Value}]; ok {
			start = at
		}
		if bound.After(start) {
			start = bound
		}
		d := start
		if s := *tol.TolerationSeconds; s > 0 {
			d = start.Add(time.Duration(s) * time.Second)
		}
		if !found || d.Before(due) {
			due, found = d, true
		}
	}
	return due, found
}

// matchingToleration is the first of tolerations that tolerates t, as
// upstream's GetMatchingTolerations picks them.
func matchingToleration(logger klog.Logger, tolerations []corev1.Toleration, t *corev1.Taint) *corev1.Toleration {
	for i := range tolerations {
		// Comparison operators are upstream's alpha
		// TaintTolerationComparisonOperators, off by default.
		if tolerations[i].ToleratesTaint(logger, t, false) {
			return &tolerations[i]
		}
	}
	return nil
}

// boundAt is when the pod got its node: when it was scheduled, or created
// (with spec.nodeName set).
func boundAt(pod *corev1.Pod) time.Time {
	at := pod.CreationTimestamp.Time
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue && c.LastTransitionTime.After(at) {
			at = c.LastTransitionTime.Time
		}
	}
	return at
}

// evict gives the pod, as the API has it, the DisruptionTarget condition
// and deletes it (both with its UID as precondition); deleted says whether
// it did.
func (r *Reconciler) evict(ctx context.Context, cached *corev1.Pod) (deleted bool, err error) {
	pod := &corev1.Pod{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(cached), pod); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	if pod.UID != cached.UID || pod.DeletionTimestamp != nil {
		return false, nil
	}
	if patch := disruptionTargetPatch(pod, r.Clock.Now()); patch != nil {
		if err := r.Client.Status().Patch(ctx, pod, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return false, fmt.Errorf("failed to patch status of pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
	}
	uid := cached.UID
	err = r.Client.Delete(ctx, pod, &client.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		// Gone, or another pod of that name now.
		return false, nil
	}
	return err == nil, err
}

// disruptionTargetPatch is the strategic merge patch of pods/status that
// sets the DisruptionTarget condition (as upstream's UpdatePodCondition:
// the transition time kept if the status is), nil if it is set already.
func disruptionTargetPatch(pod *corev1.Pod, now time.Time) []byte {
	cond := corev1.PodCondition{
		Type:               corev1.DisruptionTarget,
		Status:             corev1.ConditionTrue,
		ObservedGeneration: pod.Generation,
		Reason:             ReasonDeletionByTaintManager,
		Message:            MessageDeletionByTaintManager,
		LastTransitionTime: metav1.NewTime(now),
	}
	for _, c := range pod.Status.Conditions {
		if c.Type != corev1.DisruptionTarget {
			continue
		}
		if c.Status == cond.Status {
			if c.Reason == cond.Reason && c.Message == cond.Message && c.ObservedGeneration == cond.ObservedGeneration {
				return nil
			}
			cond.LastTransitionTime = c.LastTransitionTime
		}
	}
	data, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": pod.UID},
		"status":   map[string]any{"conditions": []corev1.PodCondition{cond}},
	})
	if err != nil {
		return nil
	}
	return data
}

// cancel forgets a scheduled deletion and reports it cancelled.
func (r *Reconciler) cancel(key types.NamespacedName) {
	r.mu.Lock()
	_, was := r.scheduled[key]
	delete(r.scheduled, key)
	r.mu.Unlock()
	if was {
		r.Recorder.Eventf(podRef(key), corev1.EventTypeNormal, ReasonTaintManagerEviction, "Cancelling deletion of Pod %s", key)
	}
}

func (r *Reconciler) forget(key types.NamespacedName) {
	r.mu.Lock()
	delete(r.scheduled, key)
	r.mu.Unlock()
}

func noExecuteTaints(taints []corev1.Taint) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			out = append(out, t)
		}
	}
	return out
}

func podRef(key types.NamespacedName) *corev1.ObjectReference {
	return &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: key.Namespace, Name: key.Name}
}
