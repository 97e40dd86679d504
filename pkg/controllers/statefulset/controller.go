// Package statefulset is upstream's statefulset-controller as a
// controller-runtime reconciler:
//
//   - pods <set>-<ordinal> for the ordinals .spec.ordinals.start ..
//     start+replicas-1, with hostname <pod> and subdomain serviceName, the
//     labels statefulset.kubernetes.io/pod-name, apps.kubernetes.io/pod-index
//     and controller-revision-hash;
//   - claims <template>-<set>-<ordinal> from volumeClaimTemplates, created
//     before their pod and owned as persistentVolumeClaimRetentionPolicy
//     says (whenDeleted: the set, whenScaled: the scaled-down pod);
//   - OrderedReady: one pod at a time in ordinal order, each only once the
//     ones before are Running, Ready and available, deleted from the
//     highest ordinal; Parallel: all at once;
//   - RollingUpdate from the highest ordinal down to the partition within
//     maxUnavailable, OnDelete; ControllerRevisions <set>-<hash> with
//     revisionHistoryLimit; status with currentRevision/updateRevision,
//     collisionCount, observedGeneration;
//   - orphan pods and revisions matching the selector adopted, pods whose
//     labels stop matching released; upstream's events.
package statefulset

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

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

	"github.com/skiff-dev/skiff/pkg/controllers/history"
	"github.com/skiff-dev/skiff/pkg/controllers/podutil"
)

// Name is upstream's name of the controller (and its events' source).
const Name = "statefulset-controller"

// DefaultWorkers is upstream's --concurrent-statefulset-syncs.
const DefaultWorkers = 5

const (
	podIndex      = "statefulset.controller"
	orphanIndexed = "<orphan>"
)

// Reconciler syncs StatefulSets.
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
	exp     *writes
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
		r.exp = newWrites(r.Clock)
		r.history = &history.History{Client: r.Client, Core: r.Core}
	})
}

// IndexPods adds the pod index by controlling StatefulSet to mgr's cache.
func IndexPods(mgr ctrl.Manager) error {
	return mgr.GetFieldIndexer().IndexField(context.Background(), &corev1.Pod{}, podIndex, func(o client.Object) []string {
		ref := metav1.GetControllerOfNoCopy(o)
		switch {
		case ref == nil:
			return []string{orphanIndexed}
		case ref.Kind == controllerKind.Kind && ref.APIVersion == controllerKind.GroupVersion().String():
			return []string{string(ref.UID)}
		}
		return nil
	})
}

// SetupWithManager registers the controller: StatefulSets, and the pods
// they control or may adopt.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.init()
	if err := IndexPods(mgr); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).Named("statefulset").
		For(&appsv1.StatefulSet{}).
		Watches(&corev1.Pod{}, handler.Funcs{
			CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				if p, ok := e.Object.(*corev1.Pod); ok {
					r.podChanged(ctx, nil, p, q)
				}
			},
			UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				o, ok1 := e.ObjectOld.(*corev1.Pod)
				n, ok2 := e.ObjectNew.(*corev1.Pod)
				if ok1 && ok2 && o.ResourceVersion != n.ResourceVersion {
					r.podChanged(ctx, o, n, q)
				}
			},
			DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				if p, ok := e.Object.(*corev1.Pod); ok {
					if ref := metav1.GetControllerOfNoCopy(p); ref != nil {
						if set := r.resolveControllerRef(ctx, p.Namespace, ref); set != nil {
							q.Add(requestFor(set))
						}
					}
				}
			},
		}).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Workers}).
		Complete(r)
}

func requestFor(set *appsv1.StatefulSet) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: set.Namespace, Name: set.Name}}
}

// resolveControllerRef is the StatefulSet ref names, if it exists with
// ref's UID.
func (r *Reconciler) resolveControllerRef(ctx context.Context, namespace string, ref *metav1.OwnerReference) *appsv1.StatefulSet {
	if ref.Kind != controllerKind.Kind {
		return nil
	}
	var set appsv1.StatefulSet
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.Name}, &set); err != nil || set.UID != ref.UID {
		return nil
	}
	return &set
}

// setsForPod are the StatefulSets whose selectors match the pod.
func (r *Reconciler) setsForPod(ctx context.Context, pod *corev1.Pod) []*appsv1.StatefulSet {
	var list appsv1.StatefulSetList
	if err := r.Client.List(ctx, &list, client.InNamespace(pod.Namespace)); err != nil {
		return nil
	}
	var out []*appsv1.StatefulSet
	for i := range list.Items {
		sel, err := metav1.LabelSelectorAsSelector(list.Items[i].Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		out = append(out, &list.Items[i])
	}
	if len(out) > 1 {
		var names []string
		for _, s := range out {
			names = append(names, s.Name)
		}
		klog.FromContext(ctx).Error(nil, "More than one StatefulSet is selecting pods with same labels", "podLabels", pod.Labels, "sets", names)
	}
	return out
}

// podChanged wakes the pod's set (and its former one), or, for an orphan
// that is new or changed labels, the sets that may adopt it; once ready,
// its set again after minReadySeconds.
func (r *Reconciler) podChanged(ctx context.Context, old, cur *corev1.Pod, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	curRef := metav1.GetControllerOfNoCopy(cur)
	var oldRef *metav1.OwnerReference
	if old != nil {
		oldRef = metav1.GetControllerOfNoCopy(old)
		if oldRef != nil && !reflect.DeepEqual(curRef, oldRef) {
			if set := r.resolveControllerRef(ctx, old.Namespace, oldRef); set != nil {
				q.Add(requestFor(set))
			}
		}
	}
	if curRef != nil {
		set := r.resolveControllerRef(ctx, cur.Namespace, curRef)
		if set == nil {
			return
		}
		q.Add(requestFor(set))
		if old != nil && !podutil.IsPodReady(old) && podutil.IsPodReady(cur) && set.Spec.MinReadySeconds > 0 {
			q.AddAfter(requestFor(set), time.Duration(set.Spec.MinReadySeconds)*time.Second)
		}
		return
	}
	if old == nil || !reflect.DeepEqual(old.Labels, cur.Labels) || !reflect.DeepEqual(curRef, oldRef) {
		if cur.DeletionTimestamp != nil {
			return
		}
		for _, set := range r.setsForPod(ctx, cur) {
			q.Add(requestFor(set))
		}
	}
}

// Reconcile syncs one StatefulSet.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	r.init()
	logger := klog.FromContext(ctx)
	start := r.Clock.Now()
	defer func() {
		logger.V(4).Info("Finished syncing statefulset", "key", req.NamespacedName, "time", r.Clock.Since(start))
	}()
	var set appsv1.StatefulSet
	if err := r.Client.Get(ctx, req.NamespacedName, &set); err != nil {
		if apierrors.IsNotFound(err) {
			r.exp.forget(req.String())
			logger.Info("StatefulSet has been deleted", "key", req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !r.exp.observed(ctx, r.Client, &set) {
		// Its own writes are not in the cache yet: their events wake it.
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	selector, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil {
		logger.Error(err, "Error converting StatefulSet selector", "key", req.NamespacedName)
		return ctrl.Result{}, nil
	}
	if err := r.adoptOrphanRevisions(ctx, &set, selector); err != nil {
		return ctrl.Result{}, err
	}
	pods, err := r.claimPods(ctx, &set, selector)
	if err != nil {
		return ctrl.Result{}, err
	}
	logger.V(4).Info("Syncing StatefulSet with pods", "statefulSet", klog.KObj(&set), "pods", len(pods))
	now := r.Clock.Now()
	status, err := r.syncSet(ctx, &set, pods, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	var result ctrl.Result
	if set.Spec.MinReadySeconds > 0 && status != nil && status.ReadyReplicas != status.AvailableReplicas {
		result.RequeueAfter = time.Duration(set.Spec.MinReadySeconds) * time.Second
		if d := nextAvailabilityCheck(pods, set.Spec.MinReadySeconds, now); d != nil {
			result.RequeueAfter = max(*d, time.Millisecond)
		}
	}
	return result, nil
}

// claimer is the set's: adoption needs it to exist with its UID and not
// be being deleted (an uncached read).
func (r *Reconciler) claimer(set *appsv1.StatefulSet, selector labels.Selector, patch func(ctx context.Context, obj client.Object, patch []byte) error) history.Claimer {
	return history.Claimer{Owner: set, Kind: controllerKind, Selector: selector, Patch: patch,
		Recheck: history.Recheck(set, "StatefulSet", func(ctx context.Context) (metav1.Object, error) {
			return r.Core.AppsV1().StatefulSets(set.Namespace).Get(ctx, set.Name, metav1.GetOptions{})
		})}
}

func (r *Reconciler) adoptOrphanRevisions(ctx context.Context, set *appsv1.StatefulSet, selector labels.Selector) error {
	revisions, err := r.history.List(ctx, set, selector)
	if err != nil {
		return err
	}
	var orphans []*appsv1.ControllerRevision
	for _, rev := range revisions {
		if metav1.GetControllerOfNoCopy(rev) == nil {
			orphans = append(orphans, rev)
		}
	}
	if len(orphans) == 0 {
		return nil
	}
	if err := r.claimer(set, selector, nil).Recheck(ctx); err != nil {
		return fmt.Errorf("can't adopt ControllerRevisions: %v", err)
	}
	for _, rev := range orphans {
		if _, err := r.history.Adopt(ctx, set, controllerKind, rev); err != nil {
			return err
		}
	}
	return nil
}

// claimPods are the set's pods: those it controls whose labels match and
// whose names are its members', plus the matching orphans it adopts;
// controlled pods that no longer match are released.
func (r *Reconciler) claimPods(ctx context.Context, set *appsv1.StatefulSet, selector labels.Selector) ([]*corev1.Pod, error) {
	var pods []*corev1.Pod
	for _, v := range []string{string(set.UID), orphanIndexed} {
		var list corev1.PodList
		if err := r.Client.List(ctx, &list, client.InNamespace(set.Namespace), client.MatchingFields{podIndex: v}, client.UnsafeDisableDeepCopy); err != nil {
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
	return history.Claim(ctx, r.claimer(set, selector, patch), pods, func(p *corev1.Pod) bool { return isMemberOf(set, p) })
}
