// Package endpointslicemirroring is upstream's
// endpointslice-mirroring-controller: the Endpoints of a Service without a
// selector (written by hand or by another controller) are mirrored to
// EndpointSlices (labels kubernetes.io/service-name and
// endpointslice.kubernetes.io/managed-by:
// endpointslicemirroring-controller.k8s.io plus the Endpoints' own, its
// annotations but last-change-trigger-time and last-applied-configuration,
// owned by the Endpoints): one slice per address family and set of ports,
// at most --mirroring-max-endpoints-per-subset (1000) addresses a subset
// (event TooManyAddressesToMirror beyond), invalid IPs skipped (event
// InvalidIPAddress). Endpoints labeled
// endpointslice.kubernetes.io/skip-mirror: "true" (the API server's
// `kubernetes`), leader-election records, and those of Services with a
// selector or of no Service are not mirrored, their mirrored slices
// deleted.
package endpointslicemirroring

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	endpointsliceutil "k8s.io/endpointslice/util"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/skiff-dev/skiff/pkg/controllers/endpointslice"
	"github.com/skiff-dev/skiff/pkg/controllers/eventrecorder"
)

// Upstream's names and defaults.
const (
	// ControllerName is the managed-by label's value on the slices.
	ControllerName = "endpointslicemirroring-controller.k8s.io"
	// Component is the source of its events.
	Component = "endpoint-slice-mirroring-controller"
	// DefaultMaxEndpointsPerSubset is
	// --mirroring-max-endpoints-per-subset's default.
	DefaultMaxEndpointsPerSubset = 1000
	// Event reasons.
	ReasonInvalidIPAddress         = "InvalidIPAddress"
	ReasonTooManyAddressesToMirror = "TooManyAddressesToMirror"
)

// Reconciler mirrors selector-less Services' Endpoints to EndpointSlices.
type Reconciler struct {
	// Client reads through the manager's cache.
	Client client.Client
	// Core writes the slices (and, without Recorder, the events).
	Core kubernetes.Interface
	// Recorder gets the events; nil: SetupWithManager writes them through
	// Core.
	Recorder record.EventRecorder
	// MaxEndpointsPerSubset; 0: 1000.
	MaxEndpointsPerSubset int32
	// Workers; 0: 5.
	Workers int
	// BatchPeriod delays the syncs that slice changes cause
	// (--mirroring-endpointslice-updates-batch-period).
	BatchPeriod time.Duration

	tracker *endpointsliceutil.EndpointSliceTracker
}

// SetupWithManager registers the controller for Endpoints, the Services
// without selectors and the mirrored slices.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.MaxEndpointsPerSubset <= 0 {
		r.MaxEndpointsPerSubset = DefaultMaxEndpointsPerSubset
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
	r.tracker = endpointsliceutil.NewEndpointSliceTracker()
	registerAll()
	mirrored := predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return shouldMirror(e.Object) },
		DeleteFunc: func(e event.DeleteEvent) bool { return shouldMirror(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool { return shouldMirror(e.ObjectOld) || shouldMirror(e.ObjectNew) },
	}
	return ctrl.NewControllerManagedBy(mgr).Named("endpointslicemirroring").
		For(&corev1.Endpoints{}, builder.WithPredicates(mirrored)).
		Watches(&corev1.Service{}, serviceHandler()).
		Watches(&discovery.EndpointSlice{}, endpointslice.SliceHandler(ControllerName, r.tracker, r.BatchPeriod)).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Workers, RateLimiter: endpointslice.RateLimiter(100 * time.Second)}).
		Complete(r)
}

// shouldMirror: not marked skip-mirror, no leader-election record.
func shouldMirror(o client.Object) bool {
	if o == nil || o.GetLabels()[discovery.LabelSkipMirror] == "true" {
		return false
	}
	_, le := o.GetAnnotations()[resourcelock.LeaderElectionRecordAnnotationKey]
	return !le
}

// serviceHandler syncs the Endpoints of a selector-less Service added or
// deleted, and of one whose selector came or went.
func serviceHandler() handler.EventHandler {
	add := func(o client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)})
	}
	selectorless := func(o client.Object) bool {
		s, ok := o.(*corev1.Service)
		return ok && s.Spec.Selector == nil
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if selectorless(e.Object) {
				add(e.Object, q)
			}
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if selectorless(e.ObjectOld) != selectorless(e.ObjectNew) {
				add(e.ObjectNew, q)
			}
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if selectorless(e.Object) {
				add(e.Object, q)
			}
		},
	}
}

var errStaleCache = errors.New("EndpointSlice informer cache is out of date")

// Reconcile mirrors the Endpoints req names, or deletes its mirrored
// slices if it is not to be mirrored (any more).
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	logger := klog.FromContext(ctx)
	start := time.Now()
	defer func() {
		endpointsSyncDuration.WithLabelValues().Observe(float64(time.Since(start).Milliseconds()) / 1000)
		logger.V(4).Info("Finished syncing EndpointSlices for Endpoints", "key", req.String(), "elapsedTime", time.Since(start))
	}()
	ns, name := req.Namespace, req.Name
	cleanUp := func(msg string) (reconcile.Result, error) {
		logger.V(4).Info(msg, "endpoints", req.NamespacedName)
		r.tracker.DeleteService(ns, name)
		return reconcile.Result{}, r.deleteMirroredSlices(ctx, ns, name)
	}
	endpoints := &corev1.Endpoints{}
	if err := r.Client.Get(ctx, req.NamespacedName, endpoints); err != nil {
		if apierrors.IsNotFound(err) {
			return cleanUp("Endpoints not found, cleaning up any mirrored EndpointSlices")
		}
		return reconcile.Result{}, err
	}
	if !shouldMirror(endpoints) {
		return cleanUp("Endpoints should not be mirrored, cleaning up any mirrored EndpointSlices")
	}
	svc := &corev1.Service{}
	if err := r.Client.Get(ctx, req.NamespacedName, svc); err != nil {
		if apierrors.IsNotFound(err) {
			return cleanUp("Service not found, cleaning up any mirrored EndpointSlices")
		}
		return reconcile.Result{}, err
	}
	if svc.Spec.Selector != nil {
		return cleanUp("Service now has selector, cleaning up any mirrored EndpointSlices")
	}
	slices, err := r.mirroredSlices(ctx, ns, name)
	if err != nil {
		return reconcile.Result{}, err
	}
	if r.tracker.StaleSlices(svc, slices) {
		return reconcile.Result{}, errStaleCache
	}
	return reconcile.Result{}, r.reconcile(ctx, endpoints, slices)
}

// mirroredSlices are the slices this controller wrote for the Endpoints.
func (r *Reconciler) mirroredSlices(ctx context.Context, ns, name string) ([]*discovery.EndpointSlice, error) {
	var list discovery.EndpointSliceList
	if err := r.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{
		discovery.LabelServiceName: name,
		discovery.LabelManagedBy:   ControllerName,
	}); err != nil {
		return nil, err
	}
	out := make([]*discovery.EndpointSlice, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

func (r *Reconciler) deleteMirroredSlices(ctx context.Context, ns, name string) error {
	slices, err := r.mirroredSlices(ctx, ns, name)
	if err != nil {
		return err
	}
	r.tracker.DeleteService(ns, name)
	var errs []error
	for _, s := range slices {
		if err := r.Core.DiscoveryV1().EndpointSlices(ns).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("error(s) deleting %d/%d EndpointSlices for %s/%s Endpoints, including: %s", len(errs), len(slices), ns, name, errs[0])
	}
	return nil
}
