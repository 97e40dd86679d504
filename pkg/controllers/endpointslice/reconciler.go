// Package endpointslice is upstream's endpointslice-controller: for each
// Service with a selector (not ExternalName) it keeps EndpointSlices
// (labels kubernetes.io/service-name and endpointslice.kubernetes.io/
// managed-by: endpointslice-controller.k8s.io, owned by the Service) listing
// the pods it selects: their IPs of each of the Service's families, ports
// by name (named targetPorts resolved per pod), the ready, serving and
// terminating conditions, hostname, nodeName and zone, at most
// --max-endpoints-per-slice (100) endpoints a slice. The slices are
// computed and written by k8s.io/endpointslice's Reconciler, upstream's
// own library (its topology cache, the deprecated topology-aware-hints
// annotation, off; trafficDistribution hints on).
package endpointslice

import (
	"context"
	"errors"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	endpointslicerec "k8s.io/endpointslice"
	endpointslicemetrics "k8s.io/endpointslice/metrics"
	endpointsliceutil "k8s.io/endpointslice/util"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/skiff-dev/skiff/pkg/controllers/eventrecorder"
)

// Upstream's names and defaults.
const (
	// ControllerName is the managed-by label's value on the slices.
	ControllerName = "endpointslice-controller.k8s.io"
	// Component is the source of its events.
	Component = "endpoint-slice-controller"
	// DefaultMaxEndpointsPerSlice is --max-endpoints-per-slice's default.
	DefaultMaxEndpointsPerSlice = 100
	// sliceChangeMinDelay: a Service whose slice changed underneath is
	// synced no sooner, so changes to several slices are taken together.
	sliceChangeMinDelay = time.Second
)

// Reconciler keeps the EndpointSlices of the Services with selectors.
type Reconciler struct {
	// Client reads through the manager's cache.
	Client client.Client
	// Core writes the slices (and, without Recorder, the events).
	Core kubernetes.Interface
	// Recorder gets the events; nil: SetupWithManager writes them through
	// Core.
	Recorder record.EventRecorder
	// MaxEndpointsPerSlice; 0: 100.
	MaxEndpointsPerSlice int32
	// Workers; 0: 5.
	Workers int
	// BatchPeriod delays the syncs that pod changes cause
	// (--endpointslice-updates-batch-period).
	BatchPeriod time.Duration

	services     corelisters.ServiceLister
	tracker      *endpointsliceutil.EndpointSliceTracker
	triggerTimes *endpointsliceutil.TriggerTimeTracker
	reconciler   *endpointslicerec.Reconciler
}

// SetupWithManager registers the controller for Services, the pods they
// select and their slices.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.MaxEndpointsPerSlice <= 0 {
		r.MaxEndpointsPerSlice = DefaultMaxEndpointsPerSlice
	}
	if r.Workers <= 0 {
		r.Workers = 5
	}
	if r.Recorder == nil {
		rec, err := eventrecorder.New(mgr, r.Core, Component)
		if err != nil {
			return err
		}
		r.Recorder = rec
	}
	endpointslicemetrics.RegisterMetrics()
	r.services = NewServiceLister(r.Client)
	r.tracker = endpointsliceutil.NewEndpointSliceTracker()
	r.triggerTimes = endpointsliceutil.NewTriggerTimeTracker()
	r.reconciler = endpointslicerec.NewReconciler(r.Core, NewNodeLister(r.Client), r.MaxEndpointsPerSlice, r.tracker,
		nil, r.Recorder, ControllerName, endpointslicerec.WithPreferSameTrafficDistributionEnabled(true))
	return ctrl.NewControllerManagedBy(mgr).Named("endpointslice").
		For(&corev1.Service{}).
		Watches(&corev1.Pod{}, PodHandler(r.services, r.BatchPeriod)).
		Watches(&discovery.EndpointSlice{}, SliceHandler(ControllerName, r.tracker, max(sliceChangeMinDelay, r.BatchPeriod))).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Workers, RateLimiter: RateLimiter(1000 * time.Second)}).
		Complete(r)
}

// RateLimiter is upstream's for the slice controllers: per Service 1s
// doubling up to max, all together at most 10 retries a second (burst 100).
func RateLimiter(max time.Duration) workqueue.TypedRateLimiter[reconcile.Request] {
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Second, max),
		&workqueue.TypedBucketRateLimiter[reconcile.Request]{Limiter: rate.NewLimiter(rate.Limit(10), 100)},
	)
}

// SliceHandler syncs the owner (Service or Endpoints) of a slice managed
// by controllerName that changed other than as that controller last wrote
// it (tracker), changed hands (managed-by or service-name labels) or was
// deleted unexpectedly, delay later.
func SliceHandler(controllerName string, tracker *endpointsliceutil.EndpointSliceTracker, delay time.Duration) handler.EventHandler {
	managed := func(s *discovery.EndpointSlice) bool { return s.Labels[discovery.LabelManagedBy] == controllerName }
	queue := func(s *discovery.EndpointSlice, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		QueueServiceOfSlice(s, delay, q)
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if s, ok := e.Object.(*discovery.EndpointSlice); ok && managed(s) && tracker.ShouldSync(s) {
				queue(s, q)
			}
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			prev, ok1 := e.ObjectOld.(*discovery.EndpointSlice)
			cur, ok2 := e.ObjectNew.(*discovery.EndpointSlice)
			if !ok1 || !ok2 {
				return
			}
			// Users may relabel a slice; its generation does not change.
			if prev.Labels[discovery.LabelServiceName] != cur.Labels[discovery.LabelServiceName] {
				klog.FromContext(ctx).Info("label changed", "label", discovery.LabelServiceName, "oldService", prev.Labels[discovery.LabelServiceName],
					"newService", cur.Labels[discovery.LabelServiceName], "endpointslice", klog.KObj(cur))
				queue(cur, q)
				queue(prev, q)
				return
			}
			if managed(prev) != managed(cur) || (managed(cur) && tracker.ShouldSync(cur)) {
				queue(cur, q)
			}
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			s, ok := e.Object.(*discovery.EndpointSlice)
			if ok && managed(s) && tracker.Has(s) && !tracker.HandleDeletion(s) {
				queue(s, q)
			}
		},
	}
}

// QueueServiceOfSlice queues the Service (or Endpoints) named by the
// slice's kubernetes.io/service-name label, delay later.
func QueueServiceOfSlice(s *discovery.EndpointSlice, delay time.Duration, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	name := s.Labels[discovery.LabelServiceName]
	if name == "" {
		return
	}
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: s.Namespace, Name: name}}
	if delay > 0 {
		q.AddAfter(req, delay)
	} else {
		q.Add(req)
	}
}

// errStaleCache: the cache does not hold the slices this controller wrote
// yet; the Service is synced again after a backoff.
var errStaleCache = errors.New("EndpointSlice informer cache is out of date")

// Reconcile brings the Service's slices to what its pods say.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (result reconcile.Result, err error) {
	logger := klog.FromContext(ctx)
	start := time.Now()
	defer func() {
		trackSync(err)
		logger.V(4).Info("Finished syncing service endpoint slices", "key", req.String(), "elapsedTime", time.Since(start))
	}()
	ns, name := req.Namespace, req.Name
	service := &corev1.Service{}
	if err := r.Client.Get(ctx, req.NamespacedName, service); err != nil {
		if !apierrors.IsNotFound(err) {
			return reconcile.Result{}, err
		}
		// The slices go with the Service, by the garbage collector.
		r.triggerTimes.DeleteService(ns, name)
		r.reconciler.DeleteService(ns, name)
		r.tracker.DeleteService(ns, name)
		return reconcile.Result{}, nil
	}
	if service.Spec.Type == corev1.ServiceTypeExternalName || service.Spec.Selector == nil {
		// Selector-less Services get the slices others write.
		return reconcile.Result{}, nil
	}
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels(service.Spec.Selector), client.UnsafeDisableDeepCopy); err != nil {
		r.Recorder.Eventf(service, corev1.EventTypeWarning, "FailedToListPods",
			"Error listing Pods for Service %s/%s: %v", ns, name, err)
		return reconcile.Result{}, err
	}
	podPtrs := make([]*corev1.Pod, len(pods.Items))
	for i := range pods.Items {
		podPtrs[i] = &pods.Items[i]
	}
	var slices discovery.EndpointSliceList
	if err := r.Client.List(ctx, &slices, client.InNamespace(ns), client.MatchingLabels{
		discovery.LabelServiceName: name,
		discovery.LabelManagedBy:   ControllerName,
	}); err != nil {
		r.Recorder.Eventf(service, corev1.EventTypeWarning, "FailedToListEndpointSlices",
			"Error listing Endpoint Slices for Service %s/%s: %v", ns, name, err)
		return reconcile.Result{}, err
	}
	// Slices being deleted are left out, lest they hold the sync up.
	existing := make([]*discovery.EndpointSlice, 0, len(slices.Items))
	for i := range slices.Items {
		if slices.Items[i].DeletionTimestamp == nil {
			existing = append(existing, &slices.Items[i])
		}
	}
	if r.tracker.StaleSlices(service, existing) {
		return reconcile.Result{}, errStaleCache
	}
	// Computed even when nothing is written, to keep the tracker's state.
	triggerTime := r.triggerTimes.ComputeEndpointLastChangeTriggerTime(ns, service, podPtrs)
	if err := r.reconciler.Reconcile(logger, service, podPtrs, existing, triggerTime); err != nil {
		r.Recorder.Eventf(service, corev1.EventTypeWarning, "FailedToUpdateEndpointSlices",
			"Error updating Endpoint Slices for Service %s/%s: %v", ns, name, err)
		return reconcile.Result{}, err
	}
	return reconcile.Result{}, nil
}

// trackSync counts the sync in endpoint_slice_controller_syncs by result.
func trackSync(err error) {
	result := "success"
	switch {
	case errors.Is(err, errStaleCache):
		result = "stale"
	case err != nil:
		result = "error"
	}
	endpointslicemetrics.EndpointSliceSyncs.WithLabelValues(result).Inc()
}
