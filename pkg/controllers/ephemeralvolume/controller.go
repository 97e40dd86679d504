// Package ephemeralvolume is upstream's ephemeral-volume-controller: each
// generic ephemeral volume of a pod (not being deleted) gets its
// PersistentVolumeClaim "<pod>-<volume>" from the volume's claim template
// (labels, annotations, spec), owned by the pod (controller: true,
// blockOwnerDeletion: true) so the garbage collector deletes it with the
// pod. A claim of that name not owned by the pod is an error (event
// FailedBinding on the pod, as upstream); a deleted claim whose pod still
// exists is made again.
package ephemeralvolume

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/component-helpers/storage/ephemeral"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/skiff-dev/skiff/pkg/controllers/persistentvolume/podclaims"
)

const (
	// Name is upstream's name of the controller.
	Name = "ephemeral-volume-controller"
	// Component is the source of its events, upstream's.
	Component = "ephemeral_volume"
	// DefaultWorkers is upstream's --concurrent-ephemeralvolume-syncs.
	DefaultWorkers = 5
)

// Upstream's metrics.
var (
	createAttempts = metrics.NewCounter(&metrics.CounterOpts{Subsystem: "ephemeral_volume_controller", Name: "create_total",
		Help: "Number of PersistentVolumeClaim creation requests", StabilityLevel: metrics.ALPHA})
	createFailures = metrics.NewCounter(&metrics.CounterOpts{Subsystem: "ephemeral_volume_controller", Name: "create_failures_total",
		Help: "Number of PersistentVolumeClaim creation requests", StabilityLevel: metrics.ALPHA})
)

// Reconciler creates the claims of ephemeral volumes.
type Reconciler struct {
	// Client reads pods and claims through the manager's cache.
	Client   client.Client
	Core     kubernetes.Interface
	Recorder record.EventRecorder
	// Workers: --concurrent-ephemeralvolume-syncs; 0: 5.
	Workers int
}

// SetupWithManager registers the controller: new pods with ephemeral
// volumes (the pod spec is immutable, so updates do not matter), and the
// pods of deleted claims.
func (r *Reconciler) SetupWithManager(mgr manager.Manager) error {
	if r.Workers <= 0 {
		r.Workers = DefaultWorkers
	}
	if r.Recorder == nil {
		r.Recorder = &record.FakeRecorder{}
	}
	registerMetrics()
	if err := podclaims.IndexPods(mgr); err != nil {
		return err
	}
	return builder.ControllerManagedBy(mgr).Named("ephemeralvolume").
		For(&corev1.Pod{}, builder.WithPredicates(predicate.Funcs{
			CreateFunc:  func(e event.CreateEvent) bool { return wanted(e.Object) },
			UpdateFunc:  func(event.UpdateEvent) bool { return false },
			DeleteFunc:  func(event.DeleteEvent) bool { return false },
			GenericFunc: func(e event.GenericEvent) bool { return wanted(e.Object) },
		})).
		Watches(&corev1.PersistentVolumeClaim{}, handler.EnqueueRequestsFromMapFunc(r.podsOfClaim), builder.WithPredicates(predicate.Funcs{
			CreateFunc:  func(event.CreateEvent) bool { return false },
			UpdateFunc:  func(event.UpdateEvent) bool { return false },
			DeleteFunc:  func(event.DeleteEvent) bool { return true },
			GenericFunc: func(event.GenericEvent) bool { return false },
		})).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Workers}).
		Complete(r)
}

var metricsOnce sync.Once

func registerMetrics() {
	metricsOnce.Do(func() { legacyregistry.MustRegister(createAttempts, createFailures) })
}

// wanted: a pod not being deleted with an ephemeral volume.
func wanted(o client.Object) bool {
	pod, ok := o.(*corev1.Pod)
	if !ok || pod.DeletionTimestamp != nil {
		return false
	}
	for _, v := range pod.Spec.Volumes {
		if v.Ephemeral != nil {
			return true
		}
	}
	return false
}

func (r *Reconciler) podsOfClaim(ctx context.Context, o client.Object) []reconcile.Request {
	pods, err := podclaims.PodsUsing(ctx, r.Client, o.GetNamespace(), o.GetName())
	if err != nil {
		klog.FromContext(ctx).Error(err, "Listing pods from cache")
		return nil
	}
	var reqs []reconcile.Request
	for i := range pods {
		if wanted(&pods[i]) {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: pods[i].Namespace, Name: pods[i].Name}})
		}
	}
	return reqs
}

// Reconcile creates the pod's missing ephemeral claims.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	logger := klog.FromContext(ctx)
	pod := &corev1.Pod{}
	if err := r.Client.Get(ctx, req.NamespacedName, pod); err != nil {
		if apierrors.IsNotFound(err) {
			logger.V(5).Info("Ephemeral: nothing to do for pod, it is gone", "podKey", req.String())
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	if pod.DeletionTimestamp != nil {
		logger.V(5).Info("Ephemeral: nothing to do for pod, it is marked for deletion", "podKey", req.String())
		return reconcile.Result{}, nil
	}
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		if err := r.handleVolume(ctx, pod, vol); err != nil {
			r.Recorder.Event(pod, corev1.EventTypeWarning, "FailedBinding", fmt.Sprintf("ephemeral volume %s: %v", vol.Name, err))
			return reconcile.Result{}, fmt.Errorf("pod %s, ephemeral volume %s: %w", req.String(), vol.Name, err)
		}
	}
	return reconcile.Result{}, nil
}

func (r *Reconciler) handleVolume(ctx context.Context, pod *corev1.Pod, vol *corev1.Volume) error {
	if vol.Ephemeral == nil {
		return nil
	}
	name := ephemeral.VolumeClaimName(pod, vol)
	existing := &corev1.PersistentVolumeClaim{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: pod.Namespace, Name: name}, existing)
	if err == nil {
		return ephemeral.VolumeIsForPod(pod, existing)
	}
	if !apierrors.IsNotFound(err) {
		return err
	}
	tmpl := vol.Ephemeral.VolumeClaimTemplate
	if tmpl == nil {
		return fmt.Errorf("volumeClaimTemplate is missing")
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}},
			Annotations: tmpl.Annotations,
			Labels:      tmpl.Labels,
		},
		Spec: tmpl.Spec,
	}
	createAttempts.Inc()
	if _, err := r.Core.CoreV1().PersistentVolumeClaims(pod.Namespace).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
		createFailures.Inc()
		return fmt.Errorf("create PVC %s: %w", name, err)
	}
	return nil
}
