// Package deployment is upstream's deployment-controller: a Deployment's
// pods are run by ReplicaSets it owns, one per pod template
// (<deployment>-<pod-template-hash>, with that label and selector), the
// newest one scaled up and the older ones down by the RollingUpdate
// strategy (maxSurge/maxUnavailable, proportional scaling of every active
// ReplicaSet when the Deployment is scaled during a rollout) or Recreate
// (all old pods gone first). It keeps upstream's revision annotations and
// revisionHistoryLimit, pause, the deprecated rollback annotation,
// progressDeadlineSeconds, the Progressing and Available conditions, the
// status counts and upstream's ScalingReplicaSet events.
//
// State is read from the manager's cache. Writes to ReplicaSets carry the
// resourceVersion read, and new ReplicaSets have a name derived from their
// template, so a stale cache costs a conflict and a retry, never a
// duplicate.
package deployment

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/skiff-dev/skiff/pkg/controllers/eventrecorder"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Name is upstream's name of the controller and its events' source.
const Name = "deployment-controller"

// DefaultWorkers is upstream's --concurrent-deployment-syncs.
const DefaultWorkers = 5

// podOwnerIndex indexes the cache's pods by their controller's UID.
const podOwnerIndex = "deployment.controllerUID"

var controllerKind = appsv1.SchemeGroupVersion.WithKind("Deployment")

// Reconciler syncs Deployments with their ReplicaSets.
type Reconciler struct {
	// Client reads Deployments, ReplicaSets and Pods through the manager's
	// cache (with the pod index of SetupWithManager).
	Client client.Client
	// Core writes, with the controller's identity.
	Core kubernetes.Interface
	// Recorder gets the events; nil: SetupWithManager sends them through
	// Core.
	Recorder record.EventRecorder
	// Workers is the number of Deployments synced at once; 0: 5.
	Workers int
	// Clock is the time (tests); nil: the real one.
	Clock clock.PassiveClock

	once sync.Once
}

func (r *Reconciler) init() {
	r.once.Do(func() {
		if r.Clock == nil {
			r.Clock = clock.RealClock{}
		}
		if r.Recorder == nil {
			r.Recorder = &record.FakeRecorder{}
		}
	})
}

// SetupWithManager registers the reconciler for Deployments, the
// ReplicaSets they own or may adopt, and pod deletions (which a Recreate
// rollout waits for).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &corev1.Pod{}, podOwnerIndex, func(o client.Object) []string {
		if ref := metav1.GetControllerOfNoCopy(o); ref != nil {
			return []string{string(ref.UID)}
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
	r.init()
	workers := r.Workers
	if workers <= 0 {
		workers = DefaultWorkers
	}
	return ctrl.NewControllerManagedBy(mgr).Named("deployment").
		For(&appsv1.Deployment{}).
		Watches(&appsv1.ReplicaSet{}, handler.Funcs{
			CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.replicaSetAdded(ctx, e.Object, q)
			},
			UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.replicaSetUpdated(ctx, e.ObjectOld, e.ObjectNew, q)
			},
			DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.enqueueOwner(ctx, e.Object, q)
			},
		}).
		Watches(&corev1.Pod{}, handler.Funcs{
			DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.podDeleted(ctx, e.Object, q)
			},
		}).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

func enqueue(q workqueue.TypedRateLimitingInterface[reconcile.Request], d *appsv1.Deployment) {
	q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: d.Namespace, Name: d.Name}})
}

// resolveControllerRef is the Deployment ref names, if it is that one.
func (r *Reconciler) resolveControllerRef(ctx context.Context, namespace string, ref *metav1.OwnerReference) *appsv1.Deployment {
	if ref == nil || ref.Kind != controllerKind.Kind {
		return nil
	}
	d := &appsv1.Deployment{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ref.Name}, d); err != nil || d.UID != ref.UID {
		return nil
	}
	return d
}

// enqueueOwner sends the Deployment controlling the ReplicaSet.
func (r *Reconciler) enqueueOwner(ctx context.Context, obj client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	if d := r.resolveControllerRef(ctx, obj.GetNamespace(), metav1.GetControllerOfNoCopy(obj)); d != nil {
		enqueue(q, d)
	}
}

func (r *Reconciler) replicaSetAdded(ctx context.Context, obj client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	if obj.GetDeletionTimestamp() != nil || metav1.GetControllerOfNoCopy(obj) != nil {
		r.enqueueOwner(ctx, obj, q)
		return
	}
	// An orphan: whoever selects it may adopt it.
	for _, d := range r.deploymentsSelecting(ctx, obj) {
		enqueue(q, d)
	}
}

func (r *Reconciler) replicaSetUpdated(ctx context.Context, old, cur client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	if old.GetResourceVersion() == cur.GetResourceVersion() {
		return
	}
	oldRef, curRef := metav1.GetControllerOfNoCopy(old), metav1.GetControllerOfNoCopy(cur)
	refChanged := !reflect.DeepEqual(oldRef, curRef)
	if refChanged && oldRef != nil {
		r.enqueueOwner(ctx, old, q)
	}
	if curRef != nil {
		r.enqueueOwner(ctx, cur, q)
		return
	}
	if refChanged || !reflect.DeepEqual(old.GetLabels(), cur.GetLabels()) {
		for _, d := range r.deploymentsSelecting(ctx, cur) {
			enqueue(q, d)
		}
	}
}

// deploymentsSelecting are the Deployments of the ReplicaSet's namespace
// whose (non-empty) selector matches its labels.
func (r *Reconciler) deploymentsSelecting(ctx context.Context, rs client.Object) []*appsv1.Deployment {
	if len(rs.GetLabels()) == 0 {
		return nil
	}
	var list appsv1.DeploymentList
	if err := r.Client.List(ctx, &list, client.InNamespace(rs.GetNamespace()), client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	var out []*appsv1.Deployment
	for i := range list.Items {
		sel, err := metav1.LabelSelectorAsSelector(list.Items[i].Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(rs.GetLabels())) {
			continue
		}
		out = append(out, &list.Items[i])
	}
	return out
}

// podDeleted wakes a Recreate Deployment whose old pods may now be gone.
func (r *Reconciler) podDeleted(ctx context.Context, pod client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || ref.Kind != "ReplicaSet" {
		return
	}
	rs := &appsv1.ReplicaSet{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: pod.GetNamespace(), Name: ref.Name}, rs); err != nil || rs.UID != ref.UID {
		return
	}
	if d := r.resolveControllerRef(ctx, rs.Namespace, metav1.GetControllerOfNoCopy(rs)); d != nil &&
		d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		enqueue(q, d)
	}
}

// Reconcile syncs one Deployment, as upstream's syncDeployment.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	r.init()
	logger := klog.FromContext(ctx).WithValues("deployment", klog.KRef(req.Namespace, req.Name))
	ctx = klog.NewContext(ctx, logger)
	start := r.Clock.Now()
	logger.V(4).Info("Started syncing deployment", "startTime", start)
	defer func() { logger.V(4).Info("Finished syncing deployment", "duration", r.Clock.Since(start)) }()

	d := &appsv1.Deployment{}
	if err := r.Client.Get(ctx, req.NamespacedName, d); err != nil {
		if apierrors.IsNotFound(err) {
			logger.V(2).Info("Deployment has been deleted")
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if d.Spec.Replicas == nil {
		d.Spec.Replicas = new(int32)
		*d.Spec.Replicas = 1
	}
	res, err := r.sync(ctx, d)
	switch {
	case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return ctrl.Result{}, nil
	case apierrors.IsConflict(err):
		// A write raced the cache (often this controller's own previous
		// write): the next sync, rate-limited, reads anew. Upstream logs
		// every sync error at this level.
		logger.V(2).Info("Error syncing deployment", "err", err)
		return ctrl.Result{Requeue: true}, nil
	}
	return res, err
}

func (r *Reconciler) sync(ctx context.Context, d *appsv1.Deployment) (ctrl.Result, error) {
	if d.Spec.Selector == nil || (len(d.Spec.Selector.MatchLabels) == 0 && len(d.Spec.Selector.MatchExpressions) == 0) {
		r.Recorder.Eventf(d, corev1.EventTypeWarning, SelectingAll, "This deployment is selecting all pods. A non-empty selector is required.")
		if d.Status.ObservedGeneration < d.Generation {
			d.Status.ObservedGeneration = d.Generation
			_ = r.updateStatus(ctx, d)
		}
		return ctrl.Result{}, nil
	}
	rsList, err := r.claimReplicaSets(ctx, d)
	if err != nil {
		return ctrl.Result{}, err
	}
	if d.DeletionTimestamp != nil {
		return ctrl.Result{}, r.syncStatusOnly(ctx, d, rsList)
	}
	// Paused and resumed Deployments get an Unknown Progressing condition,
	// so that the time spent paused does not count towards the deadline.
	if err := r.checkPausedConditions(ctx, d); err != nil {
		return ctrl.Result{}, err
	}
	if d.Spec.Paused {
		return ctrl.Result{}, r.syncScale(ctx, d, rsList)
	}
	if rollbackTo(d) != nil {
		return ctrl.Result{}, r.rollback(ctx, d, rsList)
	}
	scaling, err := r.isScalingEvent(ctx, d, rsList)
	if err != nil {
		return ctrl.Result{}, err
	}
	if scaling {
		return ctrl.Result{}, r.syncScale(ctx, d, rsList)
	}
	switch d.Spec.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		pods, err := r.podsByReplicaSet(ctx, d, rsList)
		if err != nil {
			return ctrl.Result{}, err
		}
		return r.rolloutRecreate(ctx, d, rsList, pods)
	case appsv1.RollingUpdateDeploymentStrategyType:
		return r.rolloutRolling(ctx, d, rsList)
	}
	return ctrl.Result{}, fmt.Errorf("unexpected deployment strategy type: %s", d.Spec.Strategy.Type)
}

// podsByReplicaSet are the pods each ReplicaSet controls, by its UID.
func (r *Reconciler) podsByReplicaSet(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) (map[types.UID][]*corev1.Pod, error) {
	out := make(map[types.UID][]*corev1.Pod, len(rsList))
	for _, rs := range rsList {
		var pods corev1.PodList
		if err := r.Client.List(ctx, &pods, client.InNamespace(d.Namespace), client.MatchingFields{podOwnerIndex: string(rs.UID)}, client.UnsafeDisableDeepCopy); err != nil {
			return nil, err
		}
		list := make([]*corev1.Pod, 0, len(pods.Items))
		for i := range pods.Items {
			list = append(list, &pods.Items[i])
		}
		out[rs.UID] = list
	}
	return out, nil
}

// updateStatus writes d's status; d becomes what the server returned.
func (r *Reconciler) updateStatus(ctx context.Context, d *appsv1.Deployment) error {
	got, err := r.Core.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
	if err == nil {
		keep(d, got)
	}
	return err
}

// update writes d; d becomes what the server returned.
func (r *Reconciler) update(ctx context.Context, d *appsv1.Deployment) error {
	got, err := r.Core.AppsV1().Deployments(d.Namespace).Update(ctx, d, metav1.UpdateOptions{})
	if err == nil {
		keep(d, got)
	}
	return err
}

func keep(d, got *appsv1.Deployment) {
	*d = *got
	if d.Spec.Replicas == nil {
		d.Spec.Replicas = new(int32)
		*d.Spec.Replicas = 1
	}
}

func (r *Reconciler) now() time.Time { return r.Clock.Now() }
