// Package daemonset is upstream's daemonset-controller as a
// controller-runtime reconciler:
//
//   - one pod per node that should run it: the template's nodeName,
//     nodeSelector and required node affinity match, its NoSchedule and
//     NoExecute taints are tolerated, with the tolerations every daemon
//     pod gets (not-ready, unreachable NoExecute without
//     tolerationSeconds; disk, memory and PID pressure, unschedulable
//     NoSchedule; network-unavailable NoSchedule for hostNetwork);
//   - the pods are not bound by the controller: each requires its node by
//     a matchFields metadata.name affinity, and the default scheduler binds
//     it (upstream's ScheduleDaemonSetPods);
//   - pods on nodes that should not run them, failed pods (with a
//     backoff), succeeded pods and extra pods are deleted;
//   - RollingUpdate with maxUnavailable, or maxSurge (the new pod first,
//     the old one once it is available), OnDelete; ControllerRevisions
//     <ds>-<hash> labelled controller-revision-hash, pods labelled
//     controller-revision-hash and pod-template-generation,
//     revisionHistoryLimit;
//   - status: desired/current/misscheduled/ready/updated/available/
//     unavailable counts, observedGeneration; upstream's events;
//   - expectations: a DaemonSet is not synced again before the watch shows
//     the pods it created or deleted.
package daemonset

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/skiff-dev/skiff/pkg/controllers/expectations"
	"github.com/skiff-dev/skiff/pkg/controllers/history"
	"github.com/skiff-dev/skiff/pkg/controllers/podutil"
)

// Name is upstream's name of the controller (and its events' source).
const Name = "daemonset-controller"

// DefaultWorkers is upstream's --concurrent-daemonset-syncs.
const DefaultWorkers = 2

// BurstReplicas is how many pods one sync creates or deletes at most.
const BurstReplicas = 250

// Event reasons (upstream's).
const (
	SelectingAllReason       = "SelectingAll"
	FailedPlacementReason    = "FailedPlacement"
	FailedDaemonPodReason    = "FailedDaemonPod"
	SucceededDaemonPodReason = "SucceededDaemonPod"
)

var controllerKind = appsv1.SchemeGroupVersion.WithKind("DaemonSet")

const (
	podOwnerIndex = "daemonset.controller"
	podNodeIndex  = "daemonset.node"
	orphanIndexed = "<orphan>"
)

// Reconciler syncs DaemonSets.
type Reconciler struct {
	// Client reads through the manager's cache.
	Client client.Client
	// Core writes.
	Core     kubernetes.Interface
	Recorder record.EventRecorder
	// Workers; 0: DefaultWorkers.
	Workers int
	Clock   clock.Clock

	once    sync.Once
	exp     *expectations.Expectations[string]
	backoff *flowcontrol.Backoff
	history *history.History
}

func (r *Reconciler) init() {
	r.once.Do(func() {
		if r.Clock == nil {
			r.Clock = clock.RealClock{}
		}
		if r.Workers <= 0 {
			r.Workers = DefaultWorkers
		}
		if r.Recorder == nil {
			r.Recorder = &record.FakeRecorder{}
		}
		r.exp = expectations.New[string](r.Clock)
		r.backoff = flowcontrol.NewBackOffWithJitter(time.Second, 15*time.Minute, 0)
		r.backoff.Clock = r.Clock
		r.history = &history.History{Client: r.Client, Core: r.Core}
	})
}

// SetupWithManager registers the controller: DaemonSets, their pods and
// revisions (and orphans they may adopt), and nodes added or whose labels
// or taints change.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.init()
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(context.Background(), &corev1.Pod{}, podOwnerIndex, func(o client.Object) []string {
		ref := metav1.GetControllerOfNoCopy(o)
		switch {
		case ref == nil:
			return []string{orphanIndexed}
		case ref.Kind == controllerKind.Kind:
			return []string{string(ref.UID)}
		}
		return nil
	}); err != nil {
		return err
	}
	// By target node: an unbound daemon pod names its node in its
	// affinity, and a taint on that node must still find it.
	if err := idx.IndexField(context.Background(), &corev1.Pod{}, podNodeIndex, func(o client.Object) []string {
		if n, err := targetNode(o.(*corev1.Pod)); err == nil {
			return []string{n}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := mgr.Add(manager.RunnableFunc(r.backoffGC)); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).Named("daemonset").
		For(&appsv1.DaemonSet{}).
		Watches(&corev1.Pod{}, handler.Funcs{
			CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.podAdded(ctx, e.Object.(*corev1.Pod), q)
			},
			UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.podUpdated(ctx, e.ObjectOld.(*corev1.Pod), e.ObjectNew.(*corev1.Pod), q)
			},
			DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.podDeleted(ctx, e.Object.(*corev1.Pod), q)
			},
		}).
		Watches(&appsv1.ControllerRevision{}, handler.Funcs{
			CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.revisionChanged(ctx, nil, e.Object.(*appsv1.ControllerRevision), q)
			},
			UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.revisionChanged(ctx, e.ObjectOld.(*appsv1.ControllerRevision), e.ObjectNew.(*appsv1.ControllerRevision), q)
			},
			DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				if ds := r.owner(ctx, e.Object); ds != nil {
					q.Add(requestFor(ds))
				}
			},
		}).
		Watches(&corev1.Node{}, handler.Funcs{
			CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.nodeChanged(ctx, e.Object.(*corev1.Node), q)
			},
			UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				o, n := e.ObjectOld.(*corev1.Node), e.ObjectNew.(*corev1.Node)
				if !equality.Semantic.DeepEqual(o.Labels, n.Labels) || !equality.Semantic.DeepEqual(o.Spec.Taints, n.Spec.Taints) {
					r.nodeChanged(ctx, n, q)
				}
			},
		}).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Workers}).
		Complete(r)
}

// backoffGC forgets old failed-pod backoffs every minute until ctx ends.
func (r *Reconciler) backoffGC(ctx context.Context) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			r.backoff.GC()
		}
	}
}

func requestFor(ds *appsv1.DaemonSet) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ds.Namespace, Name: ds.Name}}
}

func dsKey(ds *appsv1.DaemonSet) string { return ds.Namespace + "/" + ds.Name }

// owner is the DaemonSet controlling o, if it exists with that UID.
func (r *Reconciler) owner(ctx context.Context, o client.Object) *appsv1.DaemonSet {
	ref := metav1.GetControllerOfNoCopy(o)
	if ref == nil || ref.Kind != controllerKind.Kind {
		return nil
	}
	var ds appsv1.DaemonSet
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: o.GetNamespace(), Name: ref.Name}, &ds); err != nil || ds.UID != ref.UID {
		return nil
	}
	return &ds
}

// selecting are the DaemonSets of the namespace whose selector matches
// the labels.
func (r *Reconciler) selecting(ctx context.Context, namespace string, lbls map[string]string) []*appsv1.DaemonSet {
	var list appsv1.DaemonSetList
	if err := r.Client.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil
	}
	var out []*appsv1.DaemonSet
	for i := range list.Items {
		sel, err := metav1.LabelSelectorAsSelector(list.Items[i].Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(lbls)) {
			continue
		}
		out = append(out, &list.Items[i])
	}
	return out
}

func (r *Reconciler) podAdded(ctx context.Context, pod *corev1.Pod, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	if pod.DeletionTimestamp != nil {
		r.podDeleted(ctx, pod, q)
		return
	}
	if metav1.GetControllerOfNoCopy(pod) != nil {
		if ds := r.owner(ctx, pod); ds != nil {
			r.exp.CreationObserved(dsKey(ds))
			q.Add(requestFor(ds))
		}
		return
	}
	dss := r.selecting(ctx, pod.Namespace, pod.Labels)
	if len(dss) > 1 {
		klog.FromContext(ctx).Error(nil, "user error! more than one daemon is selecting pods with labels", "labels", pod.Labels)
	}
	for _, ds := range dss {
		q.Add(requestFor(ds))
	}
}

func (r *Reconciler) podUpdated(ctx context.Context, old, cur *corev1.Pod, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	if old.ResourceVersion == cur.ResourceVersion {
		return
	}
	if cur.DeletionTimestamp != nil {
		r.podDeleted(ctx, cur, q)
		return
	}
	curRef, oldRef := metav1.GetControllerOfNoCopy(cur), metav1.GetControllerOfNoCopy(old)
	refChanged := !reflect.DeepEqual(curRef, oldRef)
	if refChanged && oldRef != nil {
		if ds := r.owner(ctx, old); ds != nil {
			q.Add(requestFor(ds))
		}
	}
	if curRef != nil {
		ds := r.owner(ctx, cur)
		if ds == nil {
			return
		}
		q.Add(requestFor(ds))
		if !podutil.IsPodReady(old) && podutil.IsPodReady(cur) && ds.Spec.MinReadySeconds > 0 {
			q.AddAfter(requestFor(ds), time.Duration(ds.Spec.MinReadySeconds)*time.Second+time.Second)
		}
		return
	}
	if refChanged || !reflect.DeepEqual(old.Labels, cur.Labels) {
		for _, ds := range r.selecting(ctx, cur.Namespace, cur.Labels) {
			q.Add(requestFor(ds))
		}
	}
}

func (r *Reconciler) podDeleted(ctx context.Context, pod *corev1.Pod, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	if ds := r.owner(ctx, pod); ds != nil {
		r.exp.DeletionObserved(dsKey(ds))
		q.Add(requestFor(ds))
	}
}

func (r *Reconciler) revisionChanged(ctx context.Context, old, cur *appsv1.ControllerRevision, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	if old != nil && old.ResourceVersion == cur.ResourceVersion {
		return
	}
	if old == nil && cur.DeletionTimestamp != nil {
		if ds := r.owner(ctx, cur); ds != nil {
			q.Add(requestFor(ds))
		}
		return
	}
	curRef := metav1.GetControllerOfNoCopy(cur)
	var oldRef *metav1.OwnerReference
	if old != nil {
		oldRef = metav1.GetControllerOfNoCopy(old)
		if oldRef != nil && !reflect.DeepEqual(curRef, oldRef) {
			if ds := r.owner(ctx, old); ds != nil {
				q.Add(requestFor(ds))
			}
		}
	}
	if curRef != nil {
		// Upstream wakes the owner on updates only.
		if ds := r.owner(ctx, cur); ds != nil && old != nil {
			q.Add(requestFor(ds))
		}
		return
	}
	if old == nil || !reflect.DeepEqual(old.Labels, cur.Labels) || !reflect.DeepEqual(curRef, oldRef) {
		for _, ds := range r.selecting(ctx, cur.Namespace, cur.Labels) {
			q.Add(requestFor(ds))
		}
	}
}

// nodeChanged wakes the DaemonSets the node's change concerns: those
// that should run on it and have no pod there, those with a pod there
// that should not stay, and those with misscheduled pods.
func (r *Reconciler) nodeChanged(ctx context.Context, node *corev1.Node, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	logger := klog.FromContext(ctx)
	var dss appsv1.DaemonSetList
	if err := r.Client.List(ctx, &dss); err != nil {
		return
	}
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.MatchingFields{podNodeIndex: node.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return
	}
	scheduled := map[string]bool{}
	for i := range pods.Items {
		if ref := metav1.GetControllerOfNoCopy(&pods.Items[i]); ref != nil && ref.Kind == controllerKind.Kind {
			scheduled[pods.Items[i].Namespace+"/"+ref.Name] = true
		}
	}
	for i := range dss.Items {
		ds := &dss.Items[i]
		run, stay := newPlacement(ds).shouldRun(logger, node)
		has := scheduled[dsKey(ds)]
		if (run && !has) || (!stay && has) || (has && ds.Status.NumberMisscheduled > 0) {
			q.Add(requestFor(ds))
		}
	}
}

// Reconcile syncs one DaemonSet.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	r.init()
	logger := klog.FromContext(ctx)
	start := r.Clock.Now()
	defer func() {
		logger.V(4).Info("Finished syncing daemon set", "daemonset", req.NamespacedName, "time", r.Clock.Since(start))
	}()
	key := req.String()
	var ds appsv1.DaemonSet
	if err := r.Client.Get(ctx, req.NamespacedName, &ds); err != nil {
		if apierrors.IsNotFound(err) {
			logger.V(3).Info("Daemon set has been deleted", "daemonset", key)
			r.exp.Forget(key)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("unable to retrieve ds %v from store: %v", key, err)
	}
	var nodeList corev1.NodeList
	if err := r.Client.List(ctx, &nodeList); err != nil {
		return ctrl.Result{}, fmt.Errorf("couldn't get list of nodes when syncing daemon set %#v: %v", ds.Name, err)
	}
	nodes := make([]*corev1.Node, len(nodeList.Items))
	for i := range nodeList.Items {
		nodes[i] = &nodeList.Items[i]
	}
	if ds.Spec.Selector == nil || reflect.DeepEqual(*ds.Spec.Selector, metav1.LabelSelector{}) {
		r.Recorder.Eventf(&ds, corev1.EventTypeWarning, SelectingAllReason, "This daemon set is selecting all pods. A non-empty selector is required.")
		return ctrl.Result{}, nil
	}
	if ds.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	cur, old, err := r.constructHistory(ctx, &ds)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("failed to construct revisions of DaemonSet: %v", err)
	}
	hash := cur.Labels[HashLabel]

	var result ctrl.Result
	if !r.exp.Satisfied(key, ds.UID) {
		res, err := r.updateStatus(ctx, &ds, nodes, hash, false)
		if d, ok := r.exp.Pending(key); ok && (res.RequeueAfter == 0 || d < res.RequeueAfter) {
			res.RequeueAfter = d
		}
		return res, err
	}
	err = r.updateDaemonSet(ctx, &ds, nodes, hash, key, old, &result)
	res, statusErr := r.updateStatus(ctx, &ds, nodes, hash, true)
	if res.RequeueAfter > 0 && (result.RequeueAfter == 0 || res.RequeueAfter < result.RequeueAfter) {
		result.RequeueAfter = res.RequeueAfter
	}
	switch {
	case err != nil && statusErr != nil:
		logger.Error(statusErr, "Failed to update status", "daemonSet", klog.KObj(&ds))
		return ctrl.Result{}, err
	case err != nil:
		return ctrl.Result{}, err
	case statusErr != nil:
		return ctrl.Result{}, statusErr
	}
	if d, ok := r.exp.Pending(key); ok && (result.RequeueAfter == 0 || d < result.RequeueAfter) {
		result.RequeueAfter = d
	}
	return result, nil
}

func (r *Reconciler) updateDaemonSet(ctx context.Context, ds *appsv1.DaemonSet, nodes []*corev1.Node, hash, key string, old []*appsv1.ControllerRevision, result *ctrl.Result) error {
	if err := r.manage(ctx, ds, nodes, hash, result); err != nil {
		return err
	}
	if r.exp.Satisfied(key, ds.UID) && ds.Spec.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		if err := r.rollingUpdate(ctx, ds, nodes, hash); err != nil {
			return err
		}
	}
	if err := r.cleanupHistory(ctx, ds, old); err != nil {
		return fmt.Errorf("failed to clean up revisions of DaemonSet: %w", err)
	}
	return nil
}

// claimer is the DaemonSet's: adoption needs it to exist with its UID and
// not be being deleted (an uncached read).
func (r *Reconciler) claimer(ds *appsv1.DaemonSet, selector labels.Selector, patch func(ctx context.Context, obj client.Object, patch []byte) error) history.Claimer {
	return history.Claimer{Owner: ds, Kind: controllerKind, Selector: selector, Patch: patch,
		Recheck: history.Recheck(ds, "DaemonSet", func(ctx context.Context) (metav1.Object, error) {
			return r.Core.AppsV1().DaemonSets(ds.Namespace).Get(ctx, ds.Name, metav1.GetOptions{})
		})}
}

// daemonPods are the DaemonSet's pods, adopting matching orphans and
// releasing controlled pods that no longer match (read-only: shared with
// the cache).
func (r *Reconciler) daemonPods(ctx context.Context, ds *appsv1.DaemonSet) ([]*corev1.Pod, error) {
	selector, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		return nil, err
	}
	var pods []*corev1.Pod
	for _, v := range []string{string(ds.UID), orphanIndexed} {
		var list corev1.PodList
		if err := r.Client.List(ctx, &list, client.InNamespace(ds.Namespace), client.MatchingFields{podOwnerIndex: v}, client.UnsafeDisableDeepCopy); err != nil {
			return nil, err
		}
		for i := range list.Items {
			pods = append(pods, &list.Items[i])
		}
	}
	patch := func(ctx context.Context, obj client.Object, patch []byte) error {
		_, err := r.Core.CoreV1().Pods(obj.GetNamespace()).Patch(ctx, obj.GetName(), types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		return err
	}
	return history.Claim(ctx, r.claimer(ds, selector, patch), pods, nil)
}

// nodesToPods are the DaemonSet's pods by target node (terminal pods being
// deleted left out unless includeDeletedTerminal).
func (r *Reconciler) nodesToPods(ctx context.Context, ds *appsv1.DaemonSet, includeDeletedTerminal bool) (map[string][]*corev1.Pod, error) {
	pods, err := r.daemonPods(ctx, ds)
	if err != nil {
		return nil, err
	}
	out := map[string][]*corev1.Pod{}
	for _, pod := range pods {
		if !includeDeletedTerminal && podutil.IsPodTerminal(pod) && pod.DeletionTimestamp != nil {
			continue
		}
		node, err := targetNode(pod)
		if err != nil {
			klog.FromContext(ctx).V(4).Info("Failed to get target node name of Pod in DaemonSet", "pod", klog.KObj(pod), "daemonset", klog.KObj(ds))
			continue
		}
		out[node] = append(out[node], pod)
	}
	return out, nil
}

// manage creates the missing daemon pods and deletes those that should go.
func (r *Reconciler) manage(ctx context.Context, ds *appsv1.DaemonSet, nodes []*corev1.Node, hash string, result *ctrl.Result) error {
	nodeToPods, err := r.nodesToPods(ctx, ds, false)
	if err != nil {
		return fmt.Errorf("couldn't get node to daemon pod mapping for daemon set %q: %v", ds.Name, err)
	}
	logger := klog.FromContext(ctx)
	p := newPlacement(ds)
	var create, del []string
	running := map[string]bool{}
	for _, node := range nodes {
		running[node.Name] = true
		c, d := r.podsShouldBeOnNode(logger, node, nodeToPods, ds, hash, p, result)
		create = append(create, c...)
		del = append(del, d...)
	}
	// Pods of nodes gone that were never scheduled.
	for n, pods := range nodeToPods {
		if running[n] {
			continue
		}
		for _, pod := range pods {
			if pod.Spec.NodeName == "" {
				del = append(del, pod.Name)
			}
		}
	}
	return r.syncNodes(ctx, ds, del, create, hash)
}

// podsShouldBeOnNode are the nodes needing a pod (this node or none) and
// the pods to delete on it.
func (r *Reconciler) podsShouldBeOnNode(logger klog.Logger, node *corev1.Node, nodeToPods map[string][]*corev1.Pod, ds *appsv1.DaemonSet, hash string, p placement, result *ctrl.Result) (create, del []string) {
	run, stay := p.shouldRun(logger, node)
	pods, exists := nodeToPods[node.Name]
	switch {
	case run && !exists:
		create = append(create, node.Name)
	case stay:
		var live []*corev1.Pod
		for _, pod := range pods {
			if pod.DeletionTimestamp != nil {
				continue
			}
			switch pod.Status.Phase {
			case corev1.PodFailed:
				// Deleted and recreated with a backoff, so that a crashing
				// pod does not hot-loop.
				key := fmt.Sprintf("%s/%d/%s", ds.UID, ds.Status.ObservedGeneration, node.Name)
				now := r.Clock.Now()
				if r.backoff.IsInBackOffSinceUpdate(key, now) {
					delay := r.backoff.Get(key)
					logger.V(4).Info("Deleting failed pod on node has been limited by backoff", "pod", klog.KObj(pod), "node", klog.KObj(node), "currentDelay", delay)
					if result.RequeueAfter == 0 || delay < result.RequeueAfter {
						result.RequeueAfter = delay
					}
					continue
				}
				r.backoff.Next(key, now)
				logger.V(2).Info("Found failed daemon pod on node, will try to kill it", "pod", klog.KObj(pod), "node", klog.KObj(node))
				r.Recorder.Eventf(ds, corev1.EventTypeWarning, FailedDaemonPodReason, "Found failed daemon pod %s/%s on node %s, will try to kill it", pod.Namespace, pod.Name, node.Name)
				del = append(del, pod.Name)
			case corev1.PodSucceeded:
				logger.V(2).Info("Found succeeded daemon pod on node, will try to delete it", "pod", klog.KObj(pod), "node", klog.KObj(node))
				r.Recorder.Eventf(ds, corev1.EventTypeNormal, SucceededDaemonPodReason, "Found succeeded daemon pod %s/%s on node %s, will try to delete it", pod.Namespace, pod.Name, node.Name)
				del = append(del, pod.Name)
			default:
				live = append(live, pod)
			}
		}
		slices.SortFunc(live, byCreation)
		if !allowsSurge(ds) {
			// One pod per node: the oldest stays.
			for _, pod := range live[min(1, len(live)):] {
				del = append(del, pod.Name)
			}
			break
		}
		if len(live) <= 1 {
			if len(live) == 0 && run {
				create = append(create, node.Name)
			}
			break
		}
		// Surge: keep the oldest new and the oldest old pod; the old one
		// goes once the new one is available (or the old one is not ready).
		var oldestNew, oldestOld *corev1.Pod
		for _, pod := range live {
			if pod.Labels[HashLabel] == hash {
				if oldestNew == nil {
					oldestNew = pod
					continue
				}
			} else if oldestOld == nil {
				oldestOld = pod
				continue
			}
			del = append(del, pod.Name)
		}
		if oldestNew != nil && oldestOld != nil {
			switch {
			case !podutil.IsPodReady(oldestOld):
				del = append(del, oldestOld.Name)
			case isPodAvailable(oldestNew, ds.Spec.MinReadySeconds, r.Clock.Now()):
				del = append(del, oldestOld.Name)
			}
		}
	case !stay && exists:
		for _, pod := range pods {
			if pod.DeletionTimestamp == nil {
				del = append(del, pod.Name)
			}
		}
	}
	return create, del
}

// syncNodes creates a pod for each node (slow start, at most
// BurstReplicas) and deletes the pods (at most BurstReplicas), expecting
// their watch events.
func (r *Reconciler) syncNodes(ctx context.Context, ds *appsv1.DaemonSet, del, create []string, hash string) error {
	logger := klog.FromContext(ctx)
	key := dsKey(ds)
	createDiff, deleteDiff := min(len(create), BurstReplicas), min(len(del), BurstReplicas)
	r.exp.Expect(key, ds.UID, createDiff, deleteDiff)
	var mu sync.Mutex
	var errs []error
	addErr := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	logger.V(4).Info("Nodes needing daemon pods for daemon set, creating", "daemonset", klog.KObj(ds), "needCount", create, "createCount", createDiff)
	template := podTemplate(ds, hash)
	batch := min(createDiff, 1)
	for pos := 0; createDiff > pos; batch, pos = min(2*batch, createDiff-(pos+batch)), pos+batch {
		before := len(errs)
		var wg sync.WaitGroup
		for i := pos; i < pos+batch; i++ {
			wg.Go(func() {
				t := template.DeepCopy()
				t.Spec.Affinity = setNodeAffinity(t.Spec.Affinity, create[i])
				if err := r.createPod(ctx, ds, t); err != nil {
					if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
						// The namespace is going: its pods may not be created.
						return
					}
					logger.V(2).Info("Failed creation, decrementing expectations for daemon set", "daemonset", klog.KObj(ds))
					r.exp.CreationObserved(key)
					addErr(err)
				}
			})
		}
		wg.Wait()
		if skipped := createDiff - (batch + pos); len(errs) > before && skipped > 0 {
			logger.V(2).Info("Slow-start failure. Skipping creation pods, decrementing expectations for daemon set", "skippedPods", skipped, "daemonset", klog.KObj(ds))
			r.exp.Lower(key, skipped, 0)
			break
		}
	}
	logger.V(4).Info("Pods to delete for daemon set, deleting", "daemonset", klog.KObj(ds), "toDeleteCount", del, "deleteCount", deleteDiff)
	var wg sync.WaitGroup
	for i := range deleteDiff {
		wg.Go(func() {
			if err := r.deletePod(ctx, ds, del[i]); err != nil {
				r.exp.DeletionObserved(key)
				if !apierrors.IsNotFound(err) {
					logger.V(2).Info("Failed deletion, decremented expectations for daemon set", "daemonset", klog.KObj(ds))
					addErr(err)
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// createPod creates a pod of the DaemonSet from t (upstream's
// RealPodControl.CreatePods: generateName <ds>-, its events).
func (r *Reconciler) createPod(ctx context.Context, ds *appsv1.DaemonSet, t *corev1.PodTemplateSpec) error {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Labels:          map[string]string{},
		Annotations:     map[string]string{},
		GenerateName:    podPrefix(ds.Name),
		Finalizers:      append([]string(nil), t.Finalizers...),
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, controllerKind)},
	}, Spec: t.Spec}
	for k, v := range t.Labels {
		pod.Labels[k] = v
	}
	for k, v := range t.Annotations {
		pod.Annotations[k] = v
	}
	if len(pod.Labels) == 0 {
		return fmt.Errorf("unable to create pods, no labels")
	}
	created, err := r.Core.CoreV1().Pods(ds.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			r.Recorder.Eventf(ds, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		}
		return err
	}
	klog.FromContext(ctx).V(4).Info("Controller created pod", "controller", ds.Name, "pod", klog.KObj(created))
	r.Recorder.Eventf(ds, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %v", created.Name)
	return nil
}

func (r *Reconciler) deletePod(ctx context.Context, ds *appsv1.DaemonSet, name string) error {
	logger := klog.FromContext(ctx)
	logger.V(2).Info("Deleting pod", "controller", ds.Name, "pod", klog.KRef(ds.Namespace, name))
	if err := r.Core.CoreV1().Pods(ds.Namespace).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			logger.V(4).Info("Pod has already been deleted.", "pod", klog.KRef(ds.Namespace, name))
			return err
		}
		r.Recorder.Eventf(ds, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
		return fmt.Errorf("unable to delete pods: %v", err)
	}
	r.Recorder.Eventf(ds, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %v", name)
	return nil
}

// updateStatus writes the counts of the status (and observedGeneration if
// updateObservedGen); a requeue for the next pod to become available.
func (r *Reconciler) updateStatus(ctx context.Context, ds *appsv1.DaemonSet, nodes []*corev1.Node, hash string, updateObservedGen bool) (ctrl.Result, error) {
	logger := klog.FromContext(ctx)
	nodeToPods, err := r.nodesToPods(ctx, ds, false)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("couldn't get node to daemon pod mapping for daemon set %q: %v", ds.Name, err)
	}
	now := r.Clock.Now()
	p := newPlacement(ds)
	generation := templateGeneration(ds)
	var s appsv1.DaemonSetStatus
	for _, node := range nodes {
		run, _ := p.shouldRun(logger, node)
		pods := nodeToPods[node.Name]
		if !run {
			if len(pods) > 0 {
				s.NumberMisscheduled++
			}
			continue
		}
		s.DesiredNumberScheduled++
		if len(pods) == 0 {
			continue
		}
		s.CurrentNumberScheduled++
		pods = slices.Clone(pods)
		slices.SortFunc(pods, byCreation)
		pod := pods[0]
		if podutil.IsPodReady(pod) {
			s.NumberReady++
			if isPodAvailable(pod, ds.Spec.MinReadySeconds, now) {
				s.NumberAvailable++
			}
		}
		if isPodUpdated(pod, hash, generation) {
			s.UpdatedNumberScheduled++
		}
	}
	s.NumberUnavailable = s.DesiredNumberScheduled - s.NumberAvailable
	var result ctrl.Result
	if ds.Spec.MinReadySeconds > 0 && s.NumberReady != s.NumberAvailable {
		result.RequeueAfter = time.Duration(ds.Spec.MinReadySeconds) * time.Second
	}
	cur := ds.Status
	if cur.DesiredNumberScheduled == s.DesiredNumberScheduled && cur.CurrentNumberScheduled == s.CurrentNumberScheduled &&
		cur.NumberMisscheduled == s.NumberMisscheduled && cur.NumberReady == s.NumberReady && cur.UpdatedNumberScheduled == s.UpdatedNumberScheduled &&
		cur.NumberAvailable == s.NumberAvailable && cur.NumberUnavailable == s.NumberUnavailable && cur.ObservedGeneration >= ds.Generation {
		return result, nil
	}
	toUpdate := ds.DeepCopy()
	for i := 0; ; i++ {
		if updateObservedGen {
			toUpdate.Status.ObservedGeneration = ds.Generation
		}
		toUpdate.Status.DesiredNumberScheduled = s.DesiredNumberScheduled
		toUpdate.Status.CurrentNumberScheduled = s.CurrentNumberScheduled
		toUpdate.Status.NumberMisscheduled = s.NumberMisscheduled
		toUpdate.Status.NumberReady = s.NumberReady
		toUpdate.Status.UpdatedNumberScheduled = s.UpdatedNumberScheduled
		toUpdate.Status.NumberAvailable = s.NumberAvailable
		toUpdate.Status.NumberUnavailable = s.NumberUnavailable
		_, err := r.Core.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, toUpdate, metav1.UpdateOptions{})
		if err == nil {
			return result, nil
		}
		if i >= 1 {
			return result, fmt.Errorf("error storing status for daemon set %v: %w", klog.KObj(ds), err)
		}
		if toUpdate, err = r.Core.AppsV1().DaemonSets(ds.Namespace).Get(ctx, ds.Name, metav1.GetOptions{}); err != nil {
			return result, fmt.Errorf("error storing status for daemon set %v: %w", klog.KObj(ds), err)
		}
	}
}
