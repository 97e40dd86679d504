// Package podautoscaler is the horizontal-pod-autoscaler-controller, as
// upstream's pkg/controller/podautoscaler: every sync period each
// HorizontalPodAutoscaler's target is read through its scale subresource,
// its pods' resource metrics (metrics.k8s.io) give a replica proposal per
// metric (utilization of requests or average value, within a tolerance),
// the largest is stabilized and limited (behavior: windows and policies;
// without one the downscale stabilization and max(2x, 4) up) and written
// to the scale; status, the AbleToScale/ScalingActive/ScalingLimited
// conditions and events are upstream's. Custom and external metrics
// (custom.metrics.k8s.io, external.metrics.k8s.io) have no adapter here:
// such metrics fail as on a cluster without one.
package podautoscaler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/scale"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Name is the controller's event source, upstream's.
const Name = "horizontal-pod-autoscaler"

// Config is upstream's --horizontal-pod-autoscaler-* flags.
type Config struct {
	SyncPeriod              time.Duration
	DownscaleStabilization  time.Duration
	Tolerance               float64
	CPUInitializationPeriod time.Duration
	InitialReadinessDelay   time.Duration
}

// DefaultConfig is upstream's defaults.
func DefaultConfig() Config {
	return Config{SyncPeriod: 15 * time.Second, DownscaleStabilization: 5 * time.Minute, Tolerance: 0.1,
		CPUInitializationPeriod: 5 * time.Minute, InitialReadinessDelay: 30 * time.Second}
}

// Validate refuses a sync period that is not positive (upstream takes
// any; 0 would sync without pause).
func (c Config) Validate() []error {
	if c.SyncPeriod <= 0 {
		return []error{fmt.Errorf("horizontal-pod-autoscaler-sync-period must be greater than 0, but got %v", c.SyncPeriod)}
	}
	return nil
}

// Reconciler syncs HorizontalPodAutoscalers.
type Reconciler struct {
	// Client reads through the manager's cache (HPAs, pods).
	Client client.Client
	// Core writes HPA status with the controller's identity.
	Core kubernetes.Interface
	// Scales reads and writes the targets' scale subresource; Mapper finds
	// a target kind's resources.
	Scales scale.ScalesGetter
	Mapper meta.RESTMapper
	// Metrics reads metrics.k8s.io.
	Metrics  MetricsClient
	Recorder record.EventRecorder
	Config   Config
	// Workers is --concurrent-horizontal-pod-autoscaler-syncs; 0: 5.
	Workers int
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time

	mu        sync.Mutex
	histories map[types.NamespacedName]*history
	// selectors are the HPAs' last target selectors, to find pods two
	// HPAs control.
	selectors map[types.NamespacedName]labels.Selector
}

func (r *Reconciler) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

func (r *Reconciler) recorder() record.EventRecorder {
	if r.Recorder == nil {
		return &record.FakeRecorder{}
	}
	return r.Recorder
}

// SetupWithManager registers the controller: a new HPA or a spec change
// is synced at once, every HPA again each sync period (upstream's fixed
// interval queue).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Config == (Config{}) {
		r.Config = DefaultConfig()
	}
	workers := r.Workers
	if workers <= 0 {
		workers = 5
	}
	request := func(o client.Object) reconcile.Request {
		return reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)}
	}
	return ctrl.NewControllerManagedBy(mgr).Named("horizontalpodautoscaler").
		Watches(&autoscalingv2.HorizontalPodAutoscaler{}, handler.Funcs{
			CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				q.Add(request(e.Object))
			},
			UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				if e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() {
					q.Add(request(e.ObjectNew))
					return
				}
				q.AddRateLimited(request(e.ObjectNew))
			},
			DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				q.Add(request(e.Object))
			},
		}).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers,
			RateLimiter: fixedInterval{r.Config.SyncPeriod}}).
		Complete(r)
}

// fixedInterval requeues every item after the sync period, failed or not.
type fixedInterval struct{ interval time.Duration }

func (f fixedInterval) When(reconcile.Request) time.Duration { return f.interval }
func (fixedInterval) NumRequeues(reconcile.Request) int      { return 1 }
func (fixedInterval) Forget(reconcile.Request)               {}

// Reconcile syncs one HPA and comes back after the sync period.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	hpa := &autoscalingv2.HorizontalPodAutoscaler{}
	if err := r.Client.Get(ctx, req.NamespacedName, hpa); err != nil {
		if apierrors.IsNotFound(err) {
			klog.FromContext(ctx).Info("Horizontal Pod Autoscaler has been deleted", "HPA", klog.KRef(req.Namespace, req.Name))
			r.forget(req.NamespacedName)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	if err := r.reconcileAutoscaler(ctx, hpa.DeepCopy(), req.NamespacedName); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{RequeueAfter: r.Config.SyncPeriod}, nil
}

func (r *Reconciler) forget(key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.histories, key)
	delete(r.selectors, key)
}

// historyOf is key's history, started with current as its first
// recommendation; the caller holds r.mu.
func (r *Reconciler) historyOf(key types.NamespacedName, current int32) *history {
	if r.histories == nil {
		r.histories = map[types.NamespacedName]*history{}
	}
	h := r.histories[key]
	if h == nil {
		h = &history{recommendations: []timestampedRecommendation{{current, r.now()}}}
		r.histories[key] = h
	}
	return h
}

func (r *Reconciler) listPods(ctx context.Context, namespace string, selector labels.Selector) ([]*corev1.Pod, error) {
	list := &corev1.PodList{}
	if err := r.Client.List(ctx, list, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return nil, err
	}
	pods := make([]*corev1.Pod, len(list.Items))
	for i := range list.Items {
		pods[i] = &list.Items[i]
	}
	return pods, nil
}

// getScale reads the target's scale, trying each of its kind's resources.
func (r *Reconciler) getScale(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler) (*autoscalingv1.Scale, schema.GroupResource, error) {
	ref := hpa.Spec.ScaleTargetRef
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, schema.GroupResource{}, err
	}
	mappings, err := r.Mapper.RESTMappings(schema.GroupKind{Group: gv.Group, Kind: ref.Kind})
	if err != nil {
		return nil, schema.GroupResource{}, err
	}
	var first error
	for i, m := range mappings {
		gr := m.Resource.GroupResource()
		s, err := r.Scales.Scales(hpa.Namespace).Get(ctx, gr, ref.Name, metav1.GetOptions{})
		if err == nil {
			return s, gr, nil
		}
		if i == 0 {
			first = err
		}
	}
	if first == nil {
		first = errors.New("unrecognized resource")
	}
	return nil, schema.GroupResource{}, first
}

func (r *Reconciler) reconcileAutoscaler(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler, key types.NamespacedName) (retErr error) {
	logger := klog.FromContext(ctx)
	original := hpa.Status.DeepCopy()
	reference := fmt.Sprintf("%s/%s/%s", hpa.Spec.ScaleTargetRef.Kind, hpa.Namespace, hpa.Spec.ScaleTargetRef.Name)

	target, targetGR, err := r.getScale(ctx, hpa)
	if err != nil {
		r.recorder().Event(hpa, corev1.EventTypeWarning, "FailedGetScale", err.Error())
		setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionFalse, "FailedGetScale", "the HPA controller was unable to get the target's current scale: %v", err)
		r.updateStatusIfNeeded(ctx, original, hpa)
		return fmt.Errorf("failed to query scale subresource for %s: %w", reference, err)
	}
	setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, "SucceededGetScale", "the HPA controller was able to get the target's current scale")
	current := target.Spec.Replicas

	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.historyOf(key, current)

	minReplicas := int32(1)
	if hpa.Spec.MinReplicas != nil {
		minReplicas = *hpa.Spec.MinReplicas
	}
	hasObjectOrExternal := hasObjectOrExternalMetrics(hpa)
	scaledToZero := conditionTrue(hpa, autoscalingv2.ScaledToZero)

	var (
		desired    int32
		reason     string
		statuses   []autoscalingv2.MetricStatus
		rescale    = true
		useMetrics = true
	)
	switch {
	case current == 0:
		if !(minReplicas != 0 && scaledToZero) && !(scaledToZero && hasObjectOrExternal) {
			useMetrics, rescale = false, false
			setCondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionFalse, "ScalingDisabled", "scaling is disabled since the replica count of the target is zero")
		}
	case current > hpa.Spec.MaxReplicas:
		reason, desired, useMetrics = "Current number of replicas above Spec.MaxReplicas", hpa.Spec.MaxReplicas, false
	case current < minReplicas:
		reason, desired, useMetrics = "Current number of replicas below Spec.MinReplicas", minReplicas, false
	}
	if useMetrics {
		proposal, metric, st, timestamp, err := r.computeReplicasForMetrics(ctx, hpa, target, key)
		statuses = st
		if err != nil && proposal == -1 {
			r.setStatus(hpa, current, hpa.Status.DesiredReplicas, statuses, false)
			r.updateStatusIfNeeded(ctx, original, hpa)
			r.recorder().Event(hpa, corev1.EventTypeWarning, "FailedComputeMetricsReplicas", err.Error())
			return fmt.Errorf("failed to compute desired number of replicas based on listed metrics for %s: %w", reference, err)
		}
		if err != nil {
			retErr = err
		}
		logger.V(4).Info("Proposing desired replicas", "desiredReplicas", proposal, "metric", metric,
			"tolerances", r.tolerancesFor(hpa), "timestamp", timestamp, "scaleTarget", reference)
		rescaleMetric := ""
		if proposal > desired {
			desired, rescaleMetric = proposal, metric
		}
		if desired > current {
			reason = fmt.Sprintf("%s above target", rescaleMetric)
		}
		if desired < current {
			reason = "All metrics below target"
		}
		if hpa.Spec.Behavior == nil {
			desired = r.normalizeDesiredReplicas(hpa, h, current, desired, minReplicas)
		} else {
			desired = r.normalizeDesiredReplicasWithBehaviors(hpa, h, current, desired, minReplicas)
		}
		if current == 0 && minReplicas != 0 && scaledToZero && desired < minReplicas {
			desired = minReplicas
			if reason == "" {
				reason = "Current number of replicas below Spec.MinReplicas"
			}
		}
		rescale = desired != current
	}

	if rescale {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			target.Spec.Replicas = desired
			_, err := r.Scales.Scales(hpa.Namespace).Update(ctx, targetGR, target, metav1.UpdateOptions{})
			if err == nil {
				return nil
			}
			if latest, getErr := r.Scales.Scales(hpa.Namespace).Get(ctx, targetGR, hpa.Spec.ScaleTargetRef.Name, metav1.GetOptions{}); getErr == nil {
				target = latest
			} else {
				logger.Error(getErr, "Error getting the latest scale during conflict retry", "scaleTarget", reference)
			}
			return err
		})
		if err != nil {
			r.recorder().Eventf(hpa, corev1.EventTypeWarning, "FailedRescale", "New size: %d; reason: %s; error: %v", desired, reason, err.Error())
			setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionFalse, "FailedUpdateScale", "the HPA controller was unable to update the target scale: %v", err)
			r.setStatus(hpa, current, hpa.Status.DesiredReplicas, statuses, false)
			r.updateStatusIfNeeded(ctx, original, hpa)
			return fmt.Errorf("failed to rescale %s: %w", reference, err)
		}
		setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, "SucceededRescale", "the HPA controller was able to update the target scale to %d", desired)
		r.recorder().Eventf(hpa, corev1.EventTypeNormal, "SuccessfulRescale", "New size: %d; reason: %s", desired, reason)
		r.storeScaleEvent(h, hpa.Spec.Behavior, current, desired)
		logger.Info("Successfully rescaled", "HPA", klog.KObj(hpa), "currentReplicas", current, "desiredReplicas", desired, "reason", reason)
		// HPAScaleToZero (beta, on in 1.37): the condition on every rescale.
		if current > 0 && desired == 0 && minReplicas == 0 && hasObjectOrExternal {
			setCondition(hpa, autoscalingv2.ScaledToZero, corev1.ConditionTrue, "ScaledToZero", "the HPA controller scaled the workload to zero")
		} else {
			setCondition(hpa, autoscalingv2.ScaledToZero, corev1.ConditionFalse, "NotScaledToZero", "the HPA controller did not scale the workload to zero")
		}
	} else {
		logger.V(4).Info("Decided not to scale", "scaleTarget", reference, "desiredReplicas", desired, "lastScaleTime", hpa.Status.LastScaleTime)
		desired = current
	}
	r.setStatus(hpa, current, desired, statuses, rescale)
	if err := r.updateStatusIfNeeded(ctx, original, hpa); err != nil {
		return err
	}
	return retErr
}

// computeReplicasForMetrics is the largest proposal of the metrics; -1
// with an error when all fail, or some fail and the rest would scale down.
func (r *Reconciler) computeReplicasForMetrics(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler, target *autoscalingv1.Scale, key types.NamespacedName) (int32, string, []autoscalingv2.MetricStatus, time.Time, error) {
	selector, err := r.validateAndParseSelector(ctx, hpa, target.Status.Selector, key)
	if err != nil {
		return -1, "", nil, time.Time{}, err
	}
	specs := hpa.Spec.Metrics
	statuses := make([]autoscalingv2.MetricStatus, len(specs))
	var (
		replicas     int32
		metric       string
		timestamp    time.Time
		invalid      int
		firstErr     error
		firstInvalid *autoscalingv2.HorizontalPodAutoscalerCondition
	)
	for i, spec := range specs {
		n, name, ts, condition, err := r.computeReplicasForMetric(ctx, hpa, spec, target.Spec.Replicas, selector, &statuses[i])
		if err != nil {
			if invalid == 0 {
				firstInvalid, firstErr = condition, err
			}
			invalid++
			continue
		}
		if replicas == 0 || n > replicas {
			timestamp, replicas, metric = ts, n, name
		}
	}
	if firstErr != nil {
		firstErr = fmt.Errorf("invalid metrics (%v invalid out of %v), first error is: %w", invalid, len(specs), firstErr)
	}
	if invalid >= len(specs) || (invalid > 0 && replicas < target.Spec.Replicas) {
		if firstInvalid != nil {
			setCondition(hpa, firstInvalid.Type, firstInvalid.Status, firstInvalid.Reason, "%s", firstInvalid.Message)
		}
		return -1, "", statuses, time.Time{}, firstErr
	}
	setCondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionTrue, "ValidMetricFound", "the HPA was able to successfully calculate a replica count from %s", metric)
	return replicas, metric, statuses, timestamp, firstErr
}

// validateAndParseSelector: the target's selector is set, parses, and no
// other HPA controls its pods. The caller holds r.mu.
func (r *Reconciler) validateAndParseSelector(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler, selector string, key types.NamespacedName) (labels.Selector, error) {
	if selector == "" {
		msg := "selector is required"
		r.recorder().Event(hpa, corev1.EventTypeWarning, "SelectorRequired", msg)
		setCondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionFalse, "InvalidSelector", "the HPA target's scale is missing a selector")
		return nil, errors.New(msg)
	}
	parsed, err := labels.Parse(selector)
	if err != nil {
		msg := fmt.Sprintf("couldn't convert selector into a corresponding internal selector object: %v", err)
		r.recorder().Event(hpa, corev1.EventTypeWarning, "InvalidSelector", msg)
		setCondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionFalse, "InvalidSelector", "%s", msg)
		return nil, errors.New(msg)
	}
	if r.selectors == nil {
		r.selectors = map[types.NamespacedName]labels.Selector{}
	}
	r.selectors[key] = parsed
	pods, err := r.listPods(ctx, hpa.Namespace, parsed)
	if err != nil {
		return nil, err
	}
	selecting := []string{key.Name}
	for other, sel := range r.selectors {
		if other == key || other.Namespace != key.Namespace {
			continue
		}
		for _, pod := range pods {
			if sel.Matches(labels.Set(pod.Labels)) {
				selecting = append(selecting, other.Name)
				break
			}
		}
		if len(selecting) > 1 {
			break
		}
	}
	if len(selecting) > 1 {
		msg := fmt.Sprintf("pods by selector %v are controlled by more than one HPA (e.g. %v)", selector, selecting)
		r.recorder().Event(hpa, corev1.EventTypeWarning, "AmbiguousSelector", msg)
		setCondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionFalse, "AmbiguousSelector", "%s", msg)
		return nil, errors.New(msg)
	}
	return parsed, nil
}

func (r *Reconciler) setStatus(hpa *autoscalingv2.HorizontalPodAutoscaler, current, desired int32, statuses []autoscalingv2.MetricStatus, rescale bool) {
	generation := hpa.Generation
	hpa.Status = autoscalingv2.HorizontalPodAutoscalerStatus{CurrentReplicas: current, DesiredReplicas: desired,
		LastScaleTime: hpa.Status.LastScaleTime, CurrentMetrics: statuses, Conditions: hpa.Status.Conditions,
		// HPAGeneration (beta, on in 1.37).
		ObservedGeneration: &generation}
	if rescale {
		now := metav1.NewTime(r.now())
		hpa.Status.LastScaleTime = &now
	}
}

// updateStatusIfNeeded writes the status if it changed; a failure is a
// FailedUpdateStatus event (and the returned error).
func (r *Reconciler) updateStatusIfNeeded(ctx context.Context, original *autoscalingv2.HorizontalPodAutoscalerStatus, hpa *autoscalingv2.HorizontalPodAutoscaler) error {
	if apiequality.Semantic.DeepEqual(original, &hpa.Status) {
		return nil
	}
	if _, err := r.Core.AutoscalingV2().HorizontalPodAutoscalers(hpa.Namespace).UpdateStatus(ctx, hpa, metav1.UpdateOptions{}); err != nil {
		r.recorder().Event(hpa, corev1.EventTypeWarning, "FailedUpdateStatus", err.Error())
		err = fmt.Errorf("failed to update status for %s: %w", hpa.Name, err)
		klog.FromContext(ctx).Error(err, "Updating HPA status", "HPA", klog.KObj(hpa))
		return err
	}
	klog.FromContext(ctx).V(2).Info("Successfully updated status", "HPA", klog.KObj(hpa))
	return nil
}

func hasObjectOrExternalMetrics(hpa *autoscalingv2.HorizontalPodAutoscaler) bool {
	for _, m := range hpa.Spec.Metrics {
		if m.Type == autoscalingv2.ObjectMetricSourceType || m.Type == autoscalingv2.ExternalMetricSourceType {
			return true
		}
	}
	return false
}

func conditionTrue(hpa *autoscalingv2.HorizontalPodAutoscaler, t autoscalingv2.HorizontalPodAutoscalerConditionType) bool {
	for _, c := range hpa.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// setCondition sets (or adds) a condition; lastTransitionTime moves only
// with the status.
func setCondition(hpa *autoscalingv2.HorizontalPodAutoscaler, t autoscalingv2.HorizontalPodAutoscalerConditionType, status corev1.ConditionStatus, reason, message string, args ...any) {
	var c *autoscalingv2.HorizontalPodAutoscalerCondition
	for i := range hpa.Status.Conditions {
		if hpa.Status.Conditions[i].Type == t {
			c = &hpa.Status.Conditions[i]
			break
		}
	}
	if c == nil {
		hpa.Status.Conditions = append(hpa.Status.Conditions, autoscalingv2.HorizontalPodAutoscalerCondition{Type: t})
		c = &hpa.Status.Conditions[len(hpa.Status.Conditions)-1]
	}
	if c.Status != status {
		c.LastTransitionTime = metav1.Now()
	}
	c.Status, c.Reason, c.Message = status, reason, fmt.Sprintf(message, args...)
}
