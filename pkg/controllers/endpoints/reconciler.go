// Package endpoints is upstream's endpoints-controller: each Service with
// a selector (not ExternalName) gets an Endpoints of its name listing the
// pods it selects, ready ones under addresses and the others under
// notReadyAddresses (all under addresses with publishNotReadyAddresses),
// with the ports of the Service (named targetPorts resolved per pod),
// hostname (pods of its subdomain), nodeName and targetRef; its labels are
// the Service's, plus endpoints.kubernetes.io/managed-by:
// endpoint-controller and service.kubernetes.io/headless for headless
// Services. More than 1000 addresses are truncated (ready ones kept first)
// and marked endpoints.kubernetes.io/over-capacity: truncated; the
// endpoints.kubernetes.io/last-change-trigger-time annotation says when
// the last change that it reflects happened. Selector-less Services (the
// API server's own `kubernetes`, custom Endpoints) are left alone; the
// Endpoints of a Service gone is deleted, also those left over from
// Services deleted while the controller was not running (except
// leader-election records).
package endpoints

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	endpointslicelib "k8s.io/endpointslice"
	endpointsliceutil "k8s.io/endpointslice/util"
	"k8s.io/klog/v2"
	utilnet "k8s.io/utils/net"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/skiff-dev/skiff/pkg/controllers/endpointslice"
	"github.com/skiff-dev/skiff/pkg/controllers/eventrecorder"
)

// Upstream's names and limits.
const (
	// ControllerName is the managed-by label's value and the events'
	// source.
	ControllerName = "endpoint-controller"
	// LabelManagedBy marks the Endpoints this controller writes.
	LabelManagedBy = "endpoints.kubernetes.io/managed-by"
	// MaxCapacity is the most addresses an Endpoints gets.
	MaxCapacity = 1000
	// truncated is the over-capacity annotation's value.
	truncated = "truncated"
)

// Reconciler keeps the Endpoints of the Services with selectors.
type Reconciler struct {
	// Client reads through the manager's cache.
	Client client.Client
	// Core writes the Endpoints (and, without Recorder, the events).
	Core kubernetes.Interface
	// Recorder gets the events; nil: SetupWithManager writes them through
	// Core.
	Recorder record.EventRecorder
	// Workers; 0: 5.
	Workers int
	// BatchPeriod delays the syncs that pod changes cause
	// (--endpoint-updates-batch-period).
	BatchPeriod time.Duration

	triggerTimes *endpointsliceutil.TriggerTimeTracker
	stale        staleTracker
}

// SetupWithManager registers the controller for Services, the pods they
// select and deleted Endpoints (and, at start, every Endpoints, to delete
// those whose Service is gone).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Workers <= 0 {
		r.Workers = 5
	}
	if r.Recorder == nil {
		rec, err := eventrecorder.New(mgr, r.Core, ControllerName)
		if err != nil {
			return err
		}
		r.Recorder = rec
	}
	r.triggerTimes = endpointsliceutil.NewTriggerTimeTracker()
	r.stale = staleTracker{versions: map[types.NamespacedName]string{}}
	return ctrl.NewControllerManagedBy(mgr).Named("endpoints").
		For(&corev1.Service{}).
		Watches(&corev1.Pod{}, endpointslice.PodHandler(endpointslice.NewServiceLister(r.Client), r.BatchPeriod)).
		Watches(&corev1.Endpoints{}, endpointsHandler()).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Workers}).
		Complete(r)
}

// endpointsHandler syncs the Service of a deleted Endpoints, and, for the
// Endpoints of the initial list, that of each (the leftovers' check).
// Endpoints created by others for Services that do not exist (yet) are
// left alone, as upstream's.
func endpointsHandler() handler.EventHandler {
	add := func(o client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)})
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			// Leader election used to keep records in Endpoints without a
			// Service; deleting them would cause re-elections.
			if _, ok := e.Object.GetAnnotations()[resourcelock.LeaderElectionRecordAnnotationKey]; e.IsInInitialList && !ok {
				add(e.Object, q)
			}
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(e.Object, q)
		},
	}
}

// Reconcile writes the Service's Endpoints as its pods say.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	logger := klog.FromContext(ctx)
	start := time.Now()
	defer func() {
		logger.V(4).Info("Finished syncing service endpoints", "service", req.NamespacedName, "startTime", time.Since(start))
	}()
	ns, name := req.Namespace, req.Name
	service := &corev1.Service{}
	if err := r.Client.Get(ctx, req.NamespacedName, service); err != nil {
		if !apierrors.IsNotFound(err) {
			return reconcile.Result{}, err
		}
		// The Service is gone: so is its Endpoints.
		if err := r.Core.CoreV1().Endpoints(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return reconcile.Result{}, err
		}
		r.triggerTimes.DeleteService(ns, name)
		r.stale.forget(req.NamespacedName)
		return reconcile.Result{}, nil
	}
	if service.Spec.Type == corev1.ServiceTypeExternalName || service.Spec.Selector == nil {
		// Selector-less Services get the Endpoints others write.
		return reconcile.Result{}, nil
	}
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels(service.Spec.Selector), client.UnsafeDisableDeepCopy); err != nil {
		return reconcile.Result{}, err
	}
	podPtrs := make([]*corev1.Pod, len(pods.Items))
	for i := range pods.Items {
		podPtrs[i] = &pods.Items[i]
	}
	// Computed even when nothing is written, to keep the tracker's state.
	triggerTime := r.triggerTimes.ComputeEndpointLastChangeTriggerTime(ns, service, podPtrs)
	subsets, ready, notReady := desiredSubsets(logger, service, podPtrs)

	current := &corev1.Endpoints{}
	if err := r.Client.Get(ctx, req.NamespacedName, current); err != nil {
		if !apierrors.IsNotFound(err) {
			return reconcile.Result{}, err
		}
		current = &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: service.Labels}}
	} else if r.stale.isStale(current) {
		return reconcile.Result{}, fmt.Errorf("endpoints informer cache is out of date, resource version %s already processed for endpoints %s", current.ResourceVersion, req)
	}
	create := current.ResourceVersion == ""
	// Pods' resourceVersions in targetRefs do not count; Endpoints written
	// by others are compared in canonical form too.
	if !create && (subsetsEqual(current.Subsets, subsets) || subsetsEqual(RepackSubsets(current.Subsets), subsets)) &&
		labelsCorrect(current.Labels, service.Labels) && capacityAnnotationCorrect(current.Annotations, current.Subsets) {
		logger.V(5).Info("endpoints are equal, skipping update", "service", klog.KObj(service))
		return reconcile.Result{}, nil
	}
	desired := current.DeepCopy()
	desired.Subsets = subsets
	desired.Labels = map[string]string{}
	for k, v := range service.Labels {
		desired.Labels[k] = v
	}
	if desired.Annotations == nil {
		desired.Annotations = map[string]string{}
	}
	if !triggerTime.IsZero() {
		desired.Annotations[corev1.EndpointsLastChangeTriggerTime] = triggerTime.UTC().Format(time.RFC3339Nano)
	} else {
		delete(desired.Annotations, corev1.EndpointsLastChangeTriggerTime)
	}
	if truncate(desired) {
		desired.Annotations[corev1.EndpointsOverCapacity] = truncated
	} else {
		delete(desired.Annotations, corev1.EndpointsOverCapacity)
	}
	if service.Spec.ClusterIP == corev1.ClusterIPNone || service.Spec.ClusterIP == "" {
		desired.Labels[corev1.IsHeadlessService] = ""
	} else {
		delete(desired.Labels, corev1.IsHeadlessService)
	}
	desired.Labels[LabelManagedBy] = ControllerName

	logger.V(4).Info("Update endpoints", "service", klog.KObj(service), "readyEndpoints", ready, "notreadyEndpoints", notReady)
	var updated *corev1.Endpoints
	var err error
	if create {
		_, err = r.Core.CoreV1().Endpoints(ns).Create(ctx, desired, metav1.CreateOptions{})
	} else {
		updated, err = r.Core.CoreV1().Endpoints(ns).Update(ctx, desired, metav1.UpdateOptions{})
	}
	if err != nil {
		if create && apierrors.IsForbidden(err) {
			logger.V(5).Info("Forbidden from creating endpoints", "error", err)
			// A terminating namespace refuses them for good.
			if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				return reconcile.Result{}, nil
			}
		}
		if create {
			r.Recorder.Eventf(desired, corev1.EventTypeWarning, "FailedToCreateEndpoint", "Failed to create endpoint for service %v/%v: %v", ns, name, err)
		} else {
			r.Recorder.Eventf(desired, corev1.EventTypeWarning, "FailedToUpdateEndpoint", "Failed to update endpoint %v/%v: %v", ns, name, err)
		}
		return reconcile.Result{}, err
	}
	// The cache's copy at the old version is out of date from now on.
	if updated != nil && updated.ResourceVersion != current.ResourceVersion {
		r.stale.mark(current)
	}
	return reconcile.Result{}, nil
}

// desiredSubsets are the Service's pods as repacked subsets, with the
// counts of ready and not ready addresses.
func desiredSubsets(logger klog.Logger, service *corev1.Service, pods []*corev1.Pod) (subsets []corev1.EndpointSubset, ready, notReady int) {
	subsets = []corev1.EndpointSubset{}
	for _, pod := range pods {
		if !endpointsliceutil.ShouldPodBeInEndpoints(pod, service.Spec.PublishNotReadyAddresses) {
			logger.V(5).Info("Pod is not included on endpoints for Service", "pod", klog.KObj(pod), "service", klog.KObj(service))
			continue
		}
		addr, err := podAddress(service, pod)
		if err != nil {
			logger.V(2).Info("Failed to find endpoint for service with ClusterIP on pod with error", "service", klog.KObj(service), "clusterIP", service.Spec.ClusterIP, "pod", klog.KObj(pod), "error", err)
			continue
		}
		if endpointsliceutil.ShouldSetHostname(pod, service) {
			addr.Hostname = pod.Spec.Hostname
		}
		isReady := service.Spec.PublishNotReadyAddresses || endpointsliceutil.IsPodReady(pod)
		add := func(port *corev1.EndpointPort) {
			s := corev1.EndpointSubset{Ports: []corev1.EndpointPort{}}
			if port != nil {
				s.Ports = append(s.Ports, *port)
			}
			if isReady {
				s.Addresses = []corev1.EndpointAddress{addr}
				ready++
			} else {
				logger.V(5).Info("Pod is out of service", "pod", klog.KObj(pod))
				s.NotReadyAddresses = []corev1.EndpointAddress{addr}
				notReady++
			}
			subsets = append(subsets, s)
		}
		// A headless Service may have no ports.
		if len(service.Spec.Ports) == 0 {
			if service.Spec.ClusterIP == corev1.ClusterIPNone {
				add(nil)
			}
			continue
		}
		for i := range service.Spec.Ports {
			sp := &service.Spec.Ports[i]
			num, err := endpointslicelib.FindPort(pod, sp)
			if err != nil {
				logger.V(4).Info("Failed to find port for service", "service", klog.KObj(service), "error", err)
				continue
			}
			add(&corev1.EndpointPort{Name: sp.Name, Port: int32(num), Protocol: sp.Protocol, AppProtocol: sp.AppProtocol})
		}
	}
	return RepackSubsets(subsets), ready, notReady
}

// podAddress is the pod's address of the Service's primary family.
func podAddress(service *corev1.Service, pod *corev1.Pod) (corev1.EndpointAddress, error) {
	// IPFamilies is defaulted by the API server; without it, the
	// ClusterIP's family, else the pod's.
	wantIPv6 := false
	switch {
	case len(service.Spec.IPFamilies) > 0:
		wantIPv6 = service.Spec.IPFamilies[0] == corev1.IPv6Protocol
	case service.Spec.ClusterIP != "" && service.Spec.ClusterIP != corev1.ClusterIPNone:
		wantIPv6 = utilnet.IsIPv6String(service.Spec.ClusterIP)
	default:
		wantIPv6 = utilnet.IsIPv6String(pod.Status.PodIP)
	}
	for _, podIP := range pod.Status.PodIPs {
		// Re-printed, in case the pod's is irregular.
		if ip := utilnet.ParseIPSloppy(podIP.IP); ip != nil && utilnet.IsIPv6(ip) == wantIPv6 {
			nodeName := pod.Spec.NodeName
			return corev1.EndpointAddress{
				IP:       ip.String(),
				NodeName: &nodeName,
				TargetRef: &corev1.ObjectReference{
					Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
				},
			}, nil
		}
	}
	return corev1.EndpointAddress{}, fmt.Errorf("failed to find a matching endpoint for service %v", service.Name)
}

// semanticIgnoreResourceVersion compares targetRefs without their
// resourceVersion.
var semanticIgnoreResourceVersion = conversion.EqualitiesOrDie(
	func(a, b corev1.ObjectReference) bool {
		a.ResourceVersion, b.ResourceVersion = "", ""
		return a == b
	},
)

func subsetsEqual(a, b []corev1.EndpointSubset) bool {
	return semanticIgnoreResourceVersion.DeepEqual(a, b)
}

// labelsCorrect: the Endpoints' labels are the Service's plus this
// controller's own (managed-by, headless).
func labelsCorrect(epLabels, svcLabels map[string]string) bool {
	if epLabels[LabelManagedBy] != ControllerName {
		return false
	}
	skipped := 0
	for k, v := range epLabels {
		if k == corev1.IsHeadlessService || k == LabelManagedBy {
			skipped++
		} else if sv, ok := svcLabels[k]; !ok || sv != v {
			return false
		}
	}
	return len(svcLabels) == len(epLabels)-skipped
}

// capacityAnnotationCorrect: not over capacity and without the
// over-capacity annotation.
func capacityAnnotationCorrect(annotations map[string]string, subsets []corev1.EndpointSubset) bool {
	n := 0
	for _, s := range subsets {
		n += len(s.Addresses) + len(s.NotReadyAddresses)
	}
	if n > MaxCapacity {
		return false
	}
	_, ok := annotations[corev1.EndpointsOverCapacity]
	return !ok
}

// truncate keeps at most MaxCapacity addresses, ready ones first, each
// subset keeping its share (rounded up, the last ones getting what is
// left); false if there was no need.
func truncate(ep *corev1.Endpoints) bool {
	totalReady, totalNotReady := 0, 0
	for _, s := range ep.Subsets {
		totalReady += len(s.Addresses)
		totalNotReady += len(s.NotReadyAddresses)
	}
	if totalReady+totalNotReady <= MaxCapacity {
		return false
	}
	truncateReady := totalReady > MaxCapacity
	limit, total := MaxCapacity-totalReady, totalNotReady
	if truncateReady {
		limit, total = MaxCapacity, totalReady
	}
	left := limit
	for i := range ep.Subsets {
		s := &ep.Subsets[i]
		n := len(s.NotReadyAddresses)
		if truncateReady {
			n = len(s.Addresses)
		}
		share := min(int(math.Ceil(float64(n)/float64(total)*float64(limit))), left)
		if truncateReady {
			s.Addresses = s.Addresses[:min(len(s.Addresses), share)]
			s.NotReadyAddresses = []corev1.EndpointAddress{}
			left -= len(s.Addresses)
		} else {
			s.NotReadyAddresses = s.NotReadyAddresses[:min(len(s.NotReadyAddresses), share)]
			left -= len(s.NotReadyAddresses)
		}
	}
	return true
}

// staleTracker remembers the resourceVersion each Endpoints had before
// this controller last updated it: the cache still holding that version
// is out of date (an update may be a no-op on the server and keep the
// version, so the new one proves nothing).
type staleTracker struct {
	mu       sync.Mutex
	versions map[types.NamespacedName]string
}

func (t *staleTracker) mark(ep *corev1.Endpoints) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.versions[client.ObjectKeyFromObject(ep)] = ep.ResourceVersion
}

func (t *staleTracker) isStale(ep *corev1.Endpoints) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	v, ok := t.versions[client.ObjectKeyFromObject(ep)]
	return ok && v == ep.ResourceVersion
}

func (t *staleTracker) forget(key types.NamespacedName) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.versions, key)
}
