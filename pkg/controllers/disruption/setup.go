package disruption

import (
	"context"
	"fmt"

	"github.com/skiff-dev/skiff/pkg/controllers/eventrecorder"
	"github.com/skiff-dev/skiff/pkg/controllers/podutil"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// NewRecorder is upstream's event recorder of the controller (source
// component "controllermanager"), writing through core; it runs with mgr.
func NewRecorder(mgr manager.Manager, core kubernetes.Interface) (record.EventRecorder, error) {
	return eventrecorder.New(mgr, core, EventSource)
}

// SetupWithManager registers the PDB reconciler with workers: it syncs a
// PDB when it changes, when one of its pods (before or after the change)
// is added, deleted or changes what counts (labels, readiness, deletion,
// controller), and when a workload in its namespace is scaled.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	r.init()
	b := ctrl.NewControllerManagedBy(mgr).Named("disruption").
		For(&policyv1.PodDisruptionBudget{}).
		Watches(&corev1.Pod{}, handler.Funcs{
			CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.enqueueForPods(ctx, q, e.Object)
			},
			UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				if podChanged(e.ObjectOld, e.ObjectNew) {
					r.enqueueForPods(ctx, q, e.ObjectNew, e.ObjectOld)
				}
			},
			DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.enqueueForPods(ctx, q, e.Object)
			},
		})
	scaled := predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool { return replicas(e.ObjectOld) != replicas(e.ObjectNew) }}
	for _, obj := range []client.Object{&corev1.ReplicationController{}, &appsv1.ReplicaSet{}, &appsv1.Deployment{}, &appsv1.StatefulSet{}} {
		b = b.Watches(obj, handler.EnqueueRequestsFromMapFunc(r.pdbsOfNamespace), builder.WithPredicates(scaled))
	}
	return b.WithOptions(controller.Options{MaxConcurrentReconciles: max(workers, 1)}).Complete(r)
}

// podChanged: what the status depends on changed.
func podChanged(oldObj, newObj client.Object) bool {
	o, ok := oldObj.(*corev1.Pod)
	n, ok2 := newObj.(*corev1.Pod)
	if !ok || !ok2 {
		return true
	}
	return !apiequality.Semantic.DeepEqual(o.Labels, n.Labels) || podutil.IsPodReady(o) != podutil.IsPodReady(n) ||
		(o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil) ||
		!apiequality.Semantic.DeepEqual(o.OwnerReferences, n.OwnerReferences)
}

func replicas(obj client.Object) string {
	var r *int32
	switch o := obj.(type) {
	case *corev1.ReplicationController:
		r = o.Spec.Replicas
	case *appsv1.ReplicaSet:
		r = o.Spec.Replicas
	case *appsv1.Deployment:
		r = o.Spec.Replicas
	case *appsv1.StatefulSet:
		r = o.Spec.Replicas
	}
	if r == nil {
		return ""
	}
	return fmt.Sprint(*r)
}

// enqueueForPods enqueues the PDBs selecting any of the pods (the same pod
// before and after a change); more than one PDB for the first is reported
// on it, as upstream.
func (r *Reconciler) enqueueForPods(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], objs ...client.Object) {
	logger := klog.FromContext(ctx)
	var list policyv1.PodDisruptionBudgetList
	if err := r.Client.List(ctx, &list, client.InNamespace(objs[0].GetNamespace()), client.UnsafeDisableDeepCopy); err != nil {
		logger.Error(err, "Listing PodDisruptionBudgets", "namespace", objs[0].GetNamespace())
		return
	}
	for i, obj := range objs {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			continue
		}
		pdbs := PDBsForPod(pod, list.Items)
		if i == 0 && len(pdbs) > 1 {
			msg := fmt.Sprintf("Pod %q/%q matches multiple PodDisruptionBudgets.  Chose %q arbitrarily.", pod.Namespace, pod.Name, pdbs[0].Name)
			logger.Info(msg)
			r.Recorder.Event(pod, corev1.EventTypeWarning, "MultiplePodDisruptionBudgets", msg)
		}
		for _, pdb := range pdbs {
			q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(pdb)})
		}
	}
}

func (r *Reconciler) pdbsOfNamespace(ctx context.Context, obj client.Object) []reconcile.Request {
	var list policyv1.PodDisruptionBudgetList
	if err := r.Client.List(ctx, &list, client.InNamespace(obj.GetNamespace()), client.UnsafeDisableDeepCopy); err != nil {
		klog.FromContext(ctx).Error(err, "Listing PodDisruptionBudgets", "namespace", obj.GetNamespace())
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}
