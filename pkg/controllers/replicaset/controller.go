// Package replicaset keeps ReplicaSets and ReplicationControllers at their
// replica count, as upstream's replicaset-controller and
// replicationcontroller-controller (one implementation, the
// ReplicationController handled as a ReplicaSet through Kind):
//
//   - missing pods are created from the template in slow-start batches
//     (1, 2, 4, ... at most BurstReplicas per sync; a failure ends the sync
//     with a FailedCreate event and the ReplicaFailure condition);
//   - surplus pods are deleted in upstream's order (rankedPods);
//   - orphans matching the selector are adopted, owned pods whose labels
//     stop matching are released;
//   - expectations: after creating or deleting, an owner is not synced
//     again before the watch shows those pods (or 5 minutes passed);
//   - status: replicas, fullyLabeledReplicas, readyReplicas,
//     availableReplicas (minReadySeconds), terminatingReplicas
//     (ReplicaSets), observedGeneration, ReplicaFailure.
package replicaset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/skiff-dev/skiff/pkg/controllers/eventrecorder"
	"github.com/skiff-dev/skiff/pkg/controllers/expectations"
	"github.com/skiff-dev/skiff/pkg/controllers/podutil"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// BurstReplicas is how many pods one sync creates or deletes at most
// (upstream's).
const BurstReplicas = 500

// orphanIndexValue is the pod index's value for pods without a controller.
const orphanIndexValue = "<orphan>"

// Reconciler keeps the owners of its Kind at their replica count.
type Reconciler struct {
	Kind Kind
	// Client reads through the manager's cache (with the pod index of
	// SetupWithManager).
	Client client.Client
	// Core writes: pods, owners' status, events (if Recorder is nil).
	Core kubernetes.Interface
	// Recorder gets the events; nil: SetupWithManager sends them through
	// Core.
	Recorder record.EventRecorder
	// Workers is the number of concurrent syncs; 0: 5.
	Workers int
	// BurstReplicas; 0: BurstReplicas.
	BurstReplicas int
	// Clock; nil: the real one.
	Clock clock.Clock

	once sync.Once
	exp  *expectations.Expectations[string]
}

func (r *Reconciler) init() {
	r.once.Do(func() {
		if r.Clock == nil {
			r.Clock = clock.RealClock{}
		}
		if r.BurstReplicas <= 0 {
			r.BurstReplicas = BurstReplicas
		}
		if r.Workers <= 0 {
			r.Workers = 5
		}
		if r.Recorder == nil {
			r.Recorder = &record.FakeRecorder{}
		}
		r.exp = expectations.New[string](r.Clock)
	})
}

// podIndex is the name of the cache's pod index by controller of this
// kind: "<name>/<uid>", or orphanIndexValue.
func (r *Reconciler) podIndex() string { return "replicaset.controller." + r.Kind.GVK.Kind }

// podIndexValues are the pod's values in podIndex.
func (r *Reconciler) podIndexValues(o client.Object) []string {
	ref := metav1.GetControllerOfNoCopy(o)
	switch {
	case ref == nil:
		return []string{orphanIndexValue}
	case ref.Kind == r.Kind.GVK.Kind:
		return []string{ref.Name + "/" + string(ref.UID)}
	}
	return nil
}

// SetupWithManager registers the controller: every change of an owner, and
// of the pods it controls or that it might adopt.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &corev1.Pod{}, r.podIndex(), r.podIndexValues); err != nil {
		return err
	}
	if r.Recorder == nil && r.Core != nil {
		var err error
		if r.Recorder, err = eventrecorder.New(mgr, r.Core, r.Kind.Component); err != nil {
			return err
		}
	}
	registerAll()
	r.init()
	return ctrl.NewControllerManagedBy(mgr).Named(r.Kind.ControllerName).
		For(r.Kind.newObject()).
		Watches(&corev1.Pod{}, handler.Funcs{
			CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				if p, ok := e.Object.(*corev1.Pod); ok {
					r.addPod(ctx, p, q)
				}
			},
			UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				o, ok1 := e.ObjectOld.(*corev1.Pod)
				n, ok2 := e.ObjectNew.(*corev1.Pod)
				if ok1 && ok2 {
					r.updatePod(ctx, o, n, q)
				}
			},
			DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				if p, ok := e.Object.(*corev1.Pod); ok {
					r.deletePod(ctx, p, q)
				}
			},
		}).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Workers}).
		Complete(r)
}

// resolveControllerRef is the owner of this kind that ref names, if it
// exists with ref's UID.
func (r *Reconciler) resolveControllerRef(ctx context.Context, namespace string, ref *metav1.OwnerReference) *appsv1.ReplicaSet {
	if ref.Kind != r.Kind.GVK.Kind {
		return nil
	}
	obj := r.Kind.newObject()
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.Name}, obj); err != nil || obj.GetUID() != ref.UID {
		return nil
	}
	return r.Kind.asReplicaSet(obj)
}

// podOwners are the owners of this kind whose selector matches the pod
// (owners with an empty selector match nothing).
func (r *Reconciler) podOwners(ctx context.Context, pod *corev1.Pod) []*appsv1.ReplicaSet {
	list := r.Kind.newList()
	if err := r.Client.List(ctx, list, client.InNamespace(pod.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	var out []*appsv1.ReplicaSet
	for _, rs := range r.Kind.asReplicaSets(list) {
		sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		out = append(out, rs)
	}
	if len(out) > 1 {
		klog.FromContext(ctx).Error(nil, "User error! More than one owner is selecting pods with labels", "kind", r.Kind.GVK.Kind, "pod", klog.KObj(pod), "labels", pod.Labels)
	}
	return out
}

func request(rs *appsv1.ReplicaSet) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: rs.Namespace, Name: rs.Name}}
}

func ownerKey(rs *appsv1.ReplicaSet) string { return rs.Namespace + "/" + rs.Name }

// addPod: a pod created by an owner is one creation it expected; an
// orphan wakes the owners that may adopt it.
func (r *Reconciler) addPod(ctx context.Context, pod *corev1.Pod, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	if pod.DeletionTimestamp != nil {
		// Seen first while being deleted (after a restart): not a creation.
		r.deletePod(ctx, pod, q)
		return
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		if rs := r.resolveControllerRef(ctx, pod.Namespace, ref); rs != nil {
			r.exp.CreationObserved(ownerKey(rs))
			q.Add(request(rs))
		}
		return
	}
	for _, rs := range r.podOwners(ctx, pod) {
		q.Add(request(rs))
	}
}

// updatePod wakes the pod's owner (and its former one), or the owners that
// may adopt it if its labels or controller changed; a pod being deleted
// counts as deleted.
func (r *Reconciler) updatePod(ctx context.Context, old, cur *corev1.Pod, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	if old.ResourceVersion == cur.ResourceVersion {
		return
	}
	labelChanged := !reflect.DeepEqual(old.Labels, cur.Labels)
	if cur.DeletionTimestamp != nil {
		// Deleted gracefully: the owner replaces it now, not once it is gone.
		r.deletePod(ctx, cur, q)
		if labelChanged {
			r.deletePod(ctx, old, q)
		}
		return
	}
	curRef, oldRef := metav1.GetControllerOfNoCopy(cur), metav1.GetControllerOfNoCopy(old)
	refChanged := !reflect.DeepEqual(curRef, oldRef)
	if refChanged && oldRef != nil {
		if rs := r.resolveControllerRef(ctx, old.Namespace, oldRef); rs != nil {
			q.Add(request(rs))
		}
	}
	if curRef != nil {
		rs := r.resolveControllerRef(ctx, cur.Namespace, curRef)
		if rs == nil {
			return
		}
		q.Add(request(rs))
		if !podutil.IsPodReady(old) && podutil.IsPodReady(cur) && rs.Spec.MinReadySeconds > 0 {
			klog.FromContext(ctx).V(2).Info("pod will be enqueued after a while for availability check", "duration", rs.Spec.MinReadySeconds, "kind", r.Kind.GVK.Kind, "pod", klog.KObj(old))
			q.AddAfter(request(rs), time.Duration(rs.Spec.MinReadySeconds)*time.Second)
		}
		return
	}
	if labelChanged || refChanged {
		for _, rs := range r.podOwners(ctx, cur) {
			q.Add(request(rs))
		}
	}
}

// deletePod counts the pod's deletion for its owner, if it expected it.
func (r *Reconciler) deletePod(ctx context.Context, pod *corev1.Pod, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil {
		return
	}
	rs := r.resolveControllerRef(ctx, pod.Namespace, ref)
	if rs == nil {
		return
	}
	r.exp.DeletionObservedOf(ownerKey(rs), podKey(pod))
	q.Add(request(rs))
}

// Reconcile syncs one owner: adopts and releases pods, creates or deletes
// pods unless it still expects earlier ones to show, and writes its status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	r.init()
	logger := klog.FromContext(ctx)
	start := r.Clock.Now()
	defer func() {
		logger.V(4).Info("Finished syncing", "kind", r.Kind.GVK.Kind, "key", req.NamespacedName, "duration", r.Clock.Since(start))
	}()
	key := req.NamespacedName.String()
	obj := r.Kind.newObject()
	if err := r.Client.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			logger.V(4).Info("deleted", "kind", r.Kind.GVK.Kind, "key", key)
			r.exp.Forget(key)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	rs := r.Kind.asReplicaSet(obj)
	needsSync := r.exp.Satisfied(key, rs.UID)
	selector, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil {
		logger.Error(err, "Error converting pod selector to selector", "kind", r.Kind.GVK.Kind, "key", key)
		return ctrl.Result{}, nil
	}

	all, err := r.ownedAndOrphanPods(ctx, rs)
	if err != nil {
		return ctrl.Result{}, err
	}
	var activeAll, terminatingAll []*corev1.Pod
	for _, p := range all {
		if podutil.IsPodActive(p) {
			activeAll = append(activeAll, p)
		} else if podutil.IsPodTerminating(p) {
			terminatingAll = append(terminatingAll, p)
		}
	}
	active, err := r.claimPods(ctx, rs, selector, activeAll)
	if err != nil {
		return ctrl.Result{}, err
	}
	var terminating []*corev1.Pod
	if r.Kind.TerminatingReplicas {
		for _, p := range terminatingAll {
			if metav1.IsControlledBy(p, rs) && selector.Matches(labels.Set(p.Labels)) {
				terminating = append(terminating, p)
			}
		}
	}

	var manageErr error
	if needsSync && rs.DeletionTimestamp == nil {
		manageErr = r.manageReplicas(ctx, rs, active)
	}
	now := r.Clock.Now()
	status := calculateStatus(rs, active, terminating, r.Kind.TerminatingReplicas, manageErr, now)
	updated, err := r.updateStatus(ctx, rs, status)
	if err != nil {
		return ctrl.Result{}, err
	}
	if manageErr != nil {
		return ctrl.Result{}, manageErr
	}
	var result ctrl.Result
	if updated.Spec.MinReadySeconds > 0 && updated.Status.ReadyReplicas != updated.Status.AvailableReplicas {
		// The last line of defence for availableReplicas: the next pod
		// to become available, else minReadySeconds.
		result.RequeueAfter = time.Duration(updated.Spec.MinReadySeconds) * time.Second
		if d := minNextAvailabilityCheck(active, updated.Spec.MinReadySeconds, now, r.Clock.Now()); d != nil {
			result.RequeueAfter = max(*d, time.Millisecond)
		}
	}
	// Expectations that are never met (a lost watch event) expire: look
	// again then.
	if d, ok := r.exp.Pending(key); ok && (result.RequeueAfter == 0 || d < result.RequeueAfter) {
		result.RequeueAfter = d
	}
	return result, nil
}

// ownedAndOrphanPods are the cache's pods of the owner's namespace that it
// controls or that no one does (read-only: shared with the cache).
func (r *Reconciler) ownedAndOrphanPods(ctx context.Context, rs *appsv1.ReplicaSet) ([]*corev1.Pod, error) {
	var out []*corev1.Pod
	for _, v := range []string{rs.Name + "/" + string(rs.UID), orphanIndexValue} {
		var pods corev1.PodList
		if err := r.Client.List(ctx, &pods, client.InNamespace(rs.Namespace), client.MatchingFields{r.podIndex(): v}, client.UnsafeDisableDeepCopy); err != nil {
			return nil, err
		}
		for i := range pods.Items {
			out = append(out, &pods.Items[i])
		}
	}
	return out, nil
}

// claimPods adopts the orphans the selector matches and releases the pods
// it no longer matches; the pods it controls then.
func (r *Reconciler) claimPods(ctx context.Context, rs *appsv1.ReplicaSet, selector labels.Selector, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	var claimed []*corev1.Pod
	var errs []error
	var canAdopt error
	checked := false
	for _, p := range pods {
		matches := selector.Matches(labels.Set(p.Labels))
		if ref := metav1.GetControllerOfNoCopy(p); ref != nil {
			if ref.UID != rs.UID {
				continue
			}
			if matches {
				claimed = append(claimed, p)
				continue
			}
			if rs.DeletionTimestamp != nil {
				continue
			}
			if err := r.releasePod(ctx, rs, p); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
			continue
		}
		if rs.DeletionTimestamp != nil || !matches || p.DeletionTimestamp != nil || p.Namespace != rs.Namespace {
			continue
		}
		if !checked {
			// Before the first adoption, an uncached read makes sure the
			// owner is not being deleted.
			canAdopt, checked = r.recheckOwner(ctx, rs), true
		}
		if canAdopt != nil {
			errs = append(errs, fmt.Errorf("can't adopt Pod %v/%v (%v): %v", p.Namespace, p.Name, p.UID, canAdopt))
			continue
		}
		if err := r.adoptPod(ctx, rs, p); err != nil {
			if !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
			continue
		}
		claimed = append(claimed, p)
	}
	return claimed, utilerrors.NewAggregate(errs)
}

func (r *Reconciler) recheckOwner(ctx context.Context, rs *appsv1.ReplicaSet) error {
	fresh, err := r.Kind.get(ctx, r.Core, rs.Namespace, rs.Name)
	if err != nil {
		return fmt.Errorf("can't recheck DeletionTimestamp: %v", err)
	}
	if fresh.UID != rs.UID {
		return fmt.Errorf("can't recheck DeletionTimestamp: original %v %v/%v is gone: got uid %v, wanted %v", r.Kind.GVK.Kind, rs.Namespace, rs.Name, fresh.UID, rs.UID)
	}
	if fresh.DeletionTimestamp != nil {
		return fmt.Errorf("%v/%v has just been deleted at %v", fresh.Namespace, fresh.Name, fresh.DeletionTimestamp)
	}
	return nil
}

// controllerRef is the ownerReference of the owner's pods.
func (r *Reconciler) controllerRef(rs *appsv1.ReplicaSet) *metav1.OwnerReference {
	return &metav1.OwnerReference{
		APIVersion: r.Kind.GVK.GroupVersion().String(), Kind: r.Kind.GVK.Kind,
		Name: rs.Name, UID: rs.UID, Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}
}

// adoptPod makes the owner the pod's controller, as upstream (a strategic
// merge patch of metadata.ownerReferences, on the pod's UID).
func (r *Reconciler) adoptPod(ctx context.Context, rs *appsv1.ReplicaSet, pod *corev1.Pod) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": []metav1.OwnerReference{*r.controllerRef(rs)}, "uid": pod.UID}})
	if err != nil {
		return err
	}
	klog.FromContext(ctx).V(2).Info("Adopting pod", "pod", klog.KObj(pod), "kind", r.Kind.GVK.Kind, "controller", rs.Name)
	_, err = r.Core.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	return err
}

// releasePod removes the owner from the pod's ownerReferences.
func (r *Reconciler) releasePod(ctx context.Context, rs *appsv1.ReplicaSet, pod *corev1.Pod) error {
	klog.FromContext(ctx).V(2).Info("Patching pod to remove its controllerRef", "pod", klog.KObj(pod), "gvk", r.Kind.GVK, "controller", rs.Name)
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": []map[string]string{{"$patch": "delete", "uid": string(rs.UID)}}, "uid": pod.UID}})
	if err != nil {
		return err
	}
	_, err = r.Core.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsInvalid(err) {
		// Gone, or its UID changed (a new pod of the same name).
		return nil
	}
	return err
}

// manageReplicas creates or deletes pods to reach the replica count.
func (r *Reconciler) manageReplicas(ctx context.Context, rs *appsv1.ReplicaSet, active []*corev1.Pod) error {
	logger := klog.FromContext(ctx)
	key := ownerKey(rs)
	want := int(ptr.Deref(rs.Spec.Replicas, 1))
	diff := len(active) - want
	switch {
	case diff < 0:
		n := min(-diff, r.BurstReplicas)
		r.exp.Expect(key, rs.UID, n, 0)
		logger.V(2).Info("Too few replicas", "replicaSet", klog.KObj(rs), "need", want, "creating", n)
		created, err := slowStartBatch(n, 1, func() error { return r.createPod(ctx, rs) })
		if skipped := n - created; skipped > 0 {
			logger.V(2).Info("Slow-start failure. Skipping creation of pods, decrementing expectations", "podsSkipped", skipped, "kind", r.Kind.GVK.Kind, "replicaSet", klog.KObj(rs))
			for range skipped {
				r.exp.CreationObserved(key)
			}
		}
		return err
	case diff > 0:
		n := min(diff, r.BurstReplicas)
		logger.V(2).Info("Too many replicas", "replicaSet", klog.KObj(rs), "need", want, "deleting", n)
		related, err := r.relatedPods(ctx, rs)
		if err != nil {
			logger.Error(err, "Listing the pods of related owners", "replicaSet", klog.KObj(rs))
		}
		victims := podsToDelete(active, related, n, r.Clock.Now())
		keys := make([]string, len(victims))
		for i, p := range victims {
			keys[i] = podKey(p)
		}
		r.exp.ExpectDeletions(key, rs.UID, keys)
		errCh := make(chan error, len(victims))
		var wg sync.WaitGroup
		for _, p := range victims {
			wg.Go(func() {
				if err := r.deletePodOf(ctx, rs, p.Name); err != nil {
					// The watch will not show this deletion.
					r.exp.DeletionObservedOf(key, podKey(p))
					if !apierrors.IsNotFound(err) {
						logger.V(2).Info("Failed to delete pod, decremented expectations", "pod", klog.KObj(p), "kind", r.Kind.GVK.Kind, "replicaSet", klog.KObj(rs))
						errCh <- err
					}
				}
			})
		}
		wg.Wait()
		select {
		case err := <-errCh:
			return err
		default:
		}
	}
	return nil
}

// createPod creates one pod of the owner; a namespace being deleted is no
// failure (nothing can be created there).
func (r *Reconciler) createPod(ctx context.Context, rs *appsv1.ReplicaSet) error {
	pod := podFromTemplate(&rs.Spec.Template, rs.Name, r.controllerRef(rs))
	if len(pod.Labels) == 0 {
		return errors.New("unable to create pods, no labels")
	}
	created, err := r.Core.CoreV1().Pods(rs.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			return nil
		}
		r.Recorder.Eventf(rs, corev1.EventTypeWarning, ReasonFailedCreate, "Error creating: %v", err)
		return err
	}
	klog.FromContext(ctx).V(4).Info("Controller created pod", "controller", rs.Name, "pod", klog.KObj(created))
	r.Recorder.Eventf(rs, corev1.EventTypeNormal, ReasonSuccessfulCreate, "Created pod: %v", created.Name)
	return nil
}

// deletePodOf deletes one pod of the owner.
func (r *Reconciler) deletePodOf(ctx context.Context, rs *appsv1.ReplicaSet, name string) error {
	logger := klog.FromContext(ctx)
	logger.V(2).Info("Deleting pod", "controller", rs.Name, "pod", klog.KRef(rs.Namespace, name))
	if err := r.Core.CoreV1().Pods(rs.Namespace).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			logger.V(4).Info("Pod has already been deleted.", "pod", klog.KRef(rs.Namespace, name))
			return err
		}
		r.Recorder.Eventf(rs, corev1.EventTypeWarning, ReasonFailedDelete, "Error deleting: %v", err)
		return fmt.Errorf("unable to delete pods: %v", err)
	}
	r.Recorder.Eventf(rs, corev1.EventTypeNormal, ReasonSuccessfulDelete, "Deleted pod: %v", name)
	return nil
}

// slowStartBatch calls fn count times, in batches of initial, then twice
// as many each time, until one of a batch fails; the number of successes.
func slowStartBatch(count, initial int, fn func() error) (int, error) {
	remaining, successes := count, 0
	for batch := min(remaining, initial); batch > 0; batch = min(2*batch, remaining) {
		errCh := make(chan error, batch)
		var wg sync.WaitGroup
		for range batch {
			wg.Go(func() {
				if err := fn(); err != nil {
					errCh <- err
				}
			})
		}
		wg.Wait()
		successes += batch - len(errCh)
		if len(errCh) > 0 {
			return successes, <-errCh
		}
		remaining -= batch
	}
	return successes, nil
}

// relatedPods are the pods selected by the owners that share this owner's
// controller (a Deployment's ReplicaSets), each once; none without a
// controller.
func (r *Reconciler) relatedPods(ctx context.Context, rs *appsv1.ReplicaSet) ([]*corev1.Pod, error) {
	ref := metav1.GetControllerOfNoCopy(rs)
	if ref == nil {
		return nil, nil
	}
	list := r.Kind.newList()
	if err := r.Client.List(ctx, list, client.InNamespace(rs.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	seen := map[types.UID]bool{}
	var out []*corev1.Pod
	for _, other := range r.Kind.asReplicaSets(list) {
		if o := metav1.GetControllerOfNoCopy(other); o == nil || o.UID != ref.UID {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(other.Spec.Selector)
		if err != nil {
			continue
		}
		var pods corev1.PodList
		if err := r.Client.List(ctx, &pods, client.InNamespace(rs.Namespace), client.MatchingLabelsSelector{Selector: sel}, client.UnsafeDisableDeepCopy); err != nil {
			return nil, err
		}
		for i := range pods.Items {
			if p := &pods.Items[i]; !seen[p.UID] {
				seen[p.UID] = true
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// podsToDelete are the n pods to delete first, ranked by upstream's order
// with the number of related active pods on their node as rank.
func podsToDelete(pods, related []*corev1.Pod, n int, now time.Time) []*corev1.Pod {
	if n >= len(pods) {
		return pods
	}
	pods = append([]*corev1.Pod(nil), pods...)
	onNode := podsOnNodes(related)
	rank := make([]int, len(pods))
	for i, p := range pods {
		rank[i] = onNode[p.Spec.NodeName]
	}
	sort.Sort(rankedPods{pods: pods, rank: rank, now: metav1.NewTime(now)})
	reportDeletionAgeRatio(pods, n, now)
	return pods[:n]
}

// reportDeletionAgeRatio observes, for each ready pod to delete, its age
// over the youngest ready pod's (upstream's metric, whole milliseconds).
func reportDeletionAgeRatio(pods []*corev1.Pod, n int, now time.Time) {
	var youngest time.Time
	for _, p := range pods {
		if podutil.IsPodReady(p) && p.CreationTimestamp.After(youngest) {
			youngest = p.CreationTimestamp.Time
		}
	}
	youngestAge := now.Sub(youngest).Milliseconds()
	if youngestAge <= 0 {
		return
	}
	for _, p := range pods[:n] {
		if podutil.IsPodReady(p) {
			sortingDeletionAgeRatio.Observe(float64(now.Sub(p.CreationTimestamp.Time).Milliseconds() / youngestAge))
		}
	}
}

// updateStatus writes the status if it changed, with observedGeneration,
// retrying once on a fresh read; the owner as written.
func (r *Reconciler) updateStatus(ctx context.Context, rs *appsv1.ReplicaSet, status appsv1.ReplicaSetStatus) (*appsv1.ReplicaSet, error) {
	if statusUnchanged(rs, status) {
		return rs, nil
	}
	status.ObservedGeneration = rs.Generation
	cur := rs.DeepCopy()
	for i := 0; ; i++ {
		klog.FromContext(ctx).V(4).Info(fmt.Sprintf("Updating status for %v: %s/%s, ", r.Kind.GVK.Kind, cur.Namespace, cur.Name) +
			fmt.Sprintf("replicas %d->%d (need %d), ", cur.Status.Replicas, status.Replicas, ptr.Deref(cur.Spec.Replicas, 1)) +
			fmt.Sprintf("fullyLabeledReplicas %d->%d, ", cur.Status.FullyLabeledReplicas, status.FullyLabeledReplicas) +
			fmt.Sprintf("readyReplicas %d->%d, ", cur.Status.ReadyReplicas, status.ReadyReplicas) +
			fmt.Sprintf("availableReplicas %d->%d, ", cur.Status.AvailableReplicas, status.AvailableReplicas) +
			fmt.Sprintf("sequence No: %v->%v", cur.Status.ObservedGeneration, status.ObservedGeneration))
		cur.Status = status
		updated, err := r.Kind.updateStatus(ctx, r.Core, cur)
		if err == nil {
			return updated, nil
		}
		if i >= 1 {
			return nil, err
		}
		if cur, err = r.Kind.get(ctx, r.Core, rs.Namespace, rs.Name); err != nil {
			return nil, err
		}
	}
}
