package podautoscaler

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned/typed/metrics/v1beta1"
)

// PodMetric is one pod's usage of a resource (milli-units).
type PodMetric struct {
	Timestamp time.Time
	Window    time.Duration
	Value     int64
}

// PodMetricsInfo is the usage by pod name.
type PodMetricsInfo map[string]PodMetric

// MetricsClient reads resource metrics (metrics.k8s.io).
type MetricsClient interface {
	// GetResourceMetric is the usage of resource by the pods selector
	// picks (of container only, when set) and the first one's timestamp.
	GetResourceMetric(ctx context.Context, resource corev1.ResourceName, namespace string, selector labels.Selector, container string) (PodMetricsInfo, time.Time, error)
}

// RESTMetricsClient reads metrics.k8s.io/v1beta1 PodMetrics, as upstream's
// resource metrics client.
type RESTMetricsClient struct {
	Client metricsclient.PodMetricsesGetter
}

// GetResourceMetric lists the pods' metrics; a pod missing the resource in
// a container (or the container) is left out.
func (c RESTMetricsClient) GetResourceMetric(ctx context.Context, res corev1.ResourceName, namespace string, selector labels.Selector, container string) (PodMetricsInfo, time.Time, error) {
	list, err := c.Client.PodMetricses(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("unable to fetch metrics from resource metrics API: %w", err)
	}
	if len(list.Items) == 0 {
		return nil, time.Time{}, fmt.Errorf("no metrics returned from resource metrics API")
	}
	out := make(PodMetricsInfo, len(list.Items))
	for _, m := range list.Items {
		sum, missing, found := int64(0), len(m.Containers) == 0 && container == "", false
		for _, c := range m.Containers {
			if container != "" && c.Name != container {
				continue
			}
			found = true
			v, ok := c.Usage[res]
			if !ok {
				missing = true
				klog.FromContext(ctx).V(2).Info("Missing resource metric", "resourceMetric", res, "pod", klog.KRef(m.Namespace, m.Name))
				break
			}
			sum += v.MilliValue()
		}
		if container != "" && !found {
			klog.FromContext(ctx).V(2).Info("Missing container metric", "container", container, "pod", klog.KRef(m.Namespace, m.Name))
			continue
		}
		if !missing {
			out[m.Name] = PodMetric{Timestamp: m.Timestamp.Time, Window: m.Window.Duration, Value: sum}
		}
	}
	return out, list.Items[0].Timestamp.Time, nil
}

// tolerances are the usage ratio's bounds within which nothing scales.
type tolerances struct{ scaleDown, scaleUp float64 }

func (t tolerances) String() string {
	return fmt.Sprintf("[down:%.1f%%, up:%.1f%%]", t.scaleDown*100., t.scaleUp*100.)
}

func (t tolerances) isWithin(ratio float64) bool {
	return 1.0-t.scaleDown <= ratio && ratio <= 1.0+t.scaleUp
}

func (r *Reconciler) tolerancesFor(hpa *autoscalingv2.HorizontalPodAutoscaler) tolerances {
	t := tolerances{r.Config.Tolerance, r.Config.Tolerance}
	if b := hpa.Spec.Behavior; b != nil {
		if b.ScaleDown != nil && b.ScaleDown.Tolerance != nil {
			t.scaleDown = b.ScaleDown.Tolerance.AsApproximateFloat64()
		}
		if b.ScaleUp != nil && b.ScaleUp.Tolerance != nil {
			t.scaleUp = b.ScaleUp.Tolerance.AsApproximateFloat64()
		}
	}
	return t
}

// groupPods sorts the pods as upstream: ignored (deleted, failed),
// unready (pending; for CPU, not ready or not measured a full window since
// becoming ready, while starting), missing a metric, and ready.
func (r *Reconciler) groupPods(pods []*corev1.Pod, metrics PodMetricsInfo, res corev1.ResourceName) (ready int, unready, missing, ignored sets.Set[string]) {
	unready, missing, ignored = sets.New[string](), sets.New[string](), sets.New[string]()
	now := r.now()
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodFailed {
			ignored.Insert(pod.Name)
			continue
		}
		if pod.Status.Phase == corev1.PodPending {
			unready.Insert(pod.Name)
			continue
		}
		metric, found := metrics[pod.Name]
		if !found {
			missing.Insert(pod.Name)
			continue
		}
		if res == corev1.ResourceCPU {
			var condition *corev1.PodCondition
			for i := range pod.Status.Conditions {
				if pod.Status.Conditions[i].Type == corev1.PodReady {
					condition = &pod.Status.Conditions[i]
				}
			}
			notReady := true
			if condition != nil && pod.Status.StartTime != nil {
				if pod.Status.StartTime.Add(r.Config.CPUInitializationPeriod).After(now) {
					notReady = condition.Status == corev1.ConditionFalse || metric.Timestamp.Before(condition.LastTransitionTime.Add(metric.Window))
				} else {
					notReady = condition.Status == corev1.ConditionFalse && pod.Status.StartTime.Add(r.Config.InitialReadinessDelay).After(condition.LastTransitionTime.Time)
				}
			}
			if notReady {
				unready.Insert(pod.Name)
				continue
			}
		}
		ready++
	}
	return ready, unready, missing, ignored
}

// requests are the pods' requests of res (milli-units): of container, or
// of all containers and sidecars; a missing one is an error.
func requests(pods []*corev1.Pod, container string, res corev1.ResourceName) (map[string]int64, error) {
	out := make(map[string]int64, len(pods))
	for _, pod := range pods {
		if container == "" && pod.Spec.Resources != nil && len(pod.Spec.Resources.Requests) > 0 {
			q, ok := pod.Spec.Resources.Requests[res]
			if !ok {
				return nil, fmt.Errorf("missing pod-level request for %s in Pod %s", res, pod.Name)
			}
			out[pod.Name] = q.MilliValue()
			continue
		}
		containers := append([]corev1.Container{}, pod.Spec.Containers...)
		for _, c := range pod.Spec.InitContainers {
			if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
				containers = append(containers, c)
			}
		}
		var sum int64
		found := false
		for _, c := range containers {
			if container != "" && c.Name != container {
				continue
			}
			q, ok := c.Resources.Requests[res]
			if !ok {
				return nil, fmt.Errorf("missing request for %s in container %s of Pod %s", res, c.Name, pod.Name)
			}
			sum += q.MilliValue()
			found = true
			if container != "" {
				break
			}
		}
		if container != "" && !found {
			return nil, fmt.Errorf("container %s not found in Pod %s", container, pod.Name)
		}
		out[pod.Name] = sum
	}
	return out, nil
}

func utilizationRatio(metrics PodMetricsInfo, reqs map[string]int64, target int32) (float64, int32, int64, error) {
	var total, requested int64
	n := 0
	for name, m := range metrics {
		req, ok := reqs[name]
		if !ok {
			continue
		}
		total += m.Value
		requested += req
		n++
	}
	if requested == 0 {
		return 0, 0, 0, fmt.Errorf("no metrics returned matched known pods")
	}
	utilization := int32(total * 100 / requested)
	return float64(utilization) / float64(target), utilization, total / int64(n), nil
}

func usageRatio(metrics PodMetricsInfo, target int64) (float64, int64) {
	var total int64
	for _, m := range metrics {
		total += m.Value
	}
	usage := total / int64(len(metrics))
	return float64(usage) / float64(target), usage
}

// replicasFor finishes upstream's calculation given a ratio function over
// the (adjusted) metrics: missing pods count as fallback on a scale-down
// and 0 on a scale-up, unready ones as 0 on a scale-up; no change within
// the tolerance or when the adjustment flips the direction.
func replicasFor(current int32, ready int, unready, missing sets.Set[string], metrics PodMetricsInfo, t tolerances,
	ratio func(PodMetricsInfo) (float64, error), fallback func(pod string) int64) (int32, error) {
	r, err := ratio(metrics)
	if err != nil {
		return 0, err
	}
	scaleUpWithUnready := unready.Len() > 0 && r > 1.0
	if !scaleUpWithUnready && missing.Len() == 0 {
		if t.isWithin(r) {
			return current, nil
		}
		return int32(math.Ceil(r * float64(ready))), nil
	}
	if missing.Len() > 0 {
		for pod := range missing {
			switch {
			case r < 1.0:
				metrics[pod] = PodMetric{Value: fallback(pod)}
			case r > 1.0:
				metrics[pod] = PodMetric{Value: 0}
			}
		}
	}
	if scaleUpWithUnready {
		for pod := range unready {
			metrics[pod] = PodMetric{Value: 0}
		}
	}
	adjusted, err := ratio(metrics)
	if err != nil {
		return 0, err
	}
	if t.isWithin(adjusted) || (r < 1.0 && adjusted > 1.0) || (r > 1.0 && adjusted < 1.0) {
		return current, nil
	}
	n := int32(math.Ceil(adjusted * float64(len(metrics))))
	if (adjusted < 1.0 && n > current) || (adjusted > 1.0 && n < current) {
		return current, nil
	}
	return n, nil
}

// podsFor lists the selector's pods of namespace from the cache.
func (r *Reconciler) podsFor(ctx context.Context, namespace string, selector labels.Selector) ([]*corev1.Pod, error) {
	pods, err := r.listPods(ctx, namespace, selector)
	if err != nil {
		return nil, fmt.Errorf("unable to get pods while calculating replica count: %w", err)
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("no pods returned by selector while calculating replica count")
	}
	return pods, nil
}

// resourceReplicas is upstream's GetResourceReplicas (utilization of
// requests) and GetRawResourceReplicas (average value, targetUtilization
// nil): the proposal, the utilization and the raw average.
func (r *Reconciler) resourceReplicas(ctx context.Context, current int32, target autoscalingv2.MetricTarget, res corev1.ResourceName, t tolerances,
	namespace string, selector labels.Selector, container string) (int32, int32, int64, time.Time, error) {
	metrics, timestamp, err := r.Metrics.GetResourceMetric(ctx, res, namespace, selector, container)
	if err != nil {
		return 0, 0, 0, time.Time{}, fmt.Errorf("unable to get metrics for resource %s: %w", res, err)
	}
	pods, err := r.podsFor(ctx, namespace, selector)
	if err != nil {
		return 0, 0, 0, time.Time{}, err
	}
	ready, unready, missing, ignored := r.groupPods(pods, metrics, res)
	for pod := range ignored.Union(unready) {
		delete(metrics, pod)
	}
	if len(metrics) == 0 {
		return 0, 0, 0, time.Time{}, fmt.Errorf("did not receive metrics for targeted pods (pods might be unready)")
	}
	if target.AverageValue != nil {
		goal := target.AverageValue.MilliValue()
		_, usage := usageRatio(metrics, goal)
		n, err := replicasFor(current, ready, unready, missing, metrics, t,
			func(m PodMetricsInfo) (float64, error) { ratio, _ := usageRatio(m, goal); return ratio, nil },
			func(string) int64 { return goal })
		return n, 0, usage, timestamp, err
	}
	goal := *target.AverageUtilization
	reqs, err := requests(pods, container, res)
	if err != nil {
		return 0, 0, 0, time.Time{}, err
	}
	_, utilization, raw, err := utilizationRatio(metrics, reqs, goal)
	if err != nil {
		return 0, 0, 0, time.Time{}, err
	}
	fallback := int64(max(100, goal))
	n, err := replicasFor(current, ready, unready, missing, metrics, t,
		func(m PodMetricsInfo) (float64, error) {
			ratio, _, _, err := utilizationRatio(m, reqs, goal)
			return ratio, err
		},
		func(pod string) int64 { return reqs[pod] * fallback / 100 })
	if err != nil {
		return 0, utilization, raw, time.Time{}, err
	}
	return n, utilization, raw, timestamp, nil
}

// quantityOf is how upstream reports a raw value: memory in binary units.
func quantityOf(res corev1.ResourceName, milli int64) resource.Quantity {
	format := resource.DecimalSI
	if res == corev1.ResourceMemory {
		format = resource.BinarySI
	}
	return *resource.NewMilliQuantity(milli, format)
}

// errNoCustomMetrics: skiff serves no custom.metrics.k8s.io or
// external.metrics.k8s.io (no adapter), as a cluster without one.
var (
	errNoCustomMetrics   = errors.New("no custom metrics API (custom.metrics.k8s.io) registered")
	errNoExternalMetrics = errors.New("the server could not find the requested resource")
)

// computeReplicasForMetric is one metric's proposal, filling status.
func (r *Reconciler) computeReplicasForMetric(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler, spec autoscalingv2.MetricSpec,
	specReplicas int32, selector labels.Selector, status *autoscalingv2.MetricStatus) (int32, string, time.Time, *autoscalingv2.HorizontalPodAutoscalerCondition, error) {
	unable := func(reason string, err error) *autoscalingv2.HorizontalPodAutoscalerCondition {
		r.recorder().Event(hpa, corev1.EventTypeWarning, reason, err.Error())
		return &autoscalingv2.HorizontalPodAutoscalerCondition{Type: autoscalingv2.ScalingActive, Status: corev1.ConditionFalse, Reason: reason,
			Message: fmt.Sprintf("the HPA was unable to compute the replica count: %v", err)}
	}
	switch spec.Type {
	case autoscalingv2.ResourceMetricSourceType, autoscalingv2.ContainerResourceMetricSourceType:
		var (
			res       corev1.ResourceName
			target    autoscalingv2.MetricTarget
			container string
			reason    = "FailedGetResourceMetric"
			what      string
		)
		if spec.Type == autoscalingv2.ResourceMetricSourceType && spec.Resource != nil {
			res, target, what = spec.Resource.Name, spec.Resource.Target, fmt.Sprintf("%s resource metric value", spec.Resource.Name)
		} else if spec.ContainerResource != nil {
			res, target, container = spec.ContainerResource.Name, spec.ContainerResource.Target, spec.ContainerResource.Container
			reason, what = "FailedGetContainerResourceMetric", fmt.Sprintf("%s container metric value", container)
		} else {
			err := fmt.Errorf("invalid resource metric source: the %s source is missing", spec.Type)
			return 0, "", time.Time{}, unable(reason, err), err
		}
		if target.AverageValue == nil && target.AverageUtilization == nil {
			err := errors.New("invalid resource metric source: neither an average utilization target nor an average value (usage) target was set")
			return 0, "", time.Time{}, unable(reason, err), fmt.Errorf("failed to get %s: %w", what, err)
		}
		n, utilization, raw, timestamp, err := r.resourceReplicas(ctx, specReplicas, target, res, r.tolerancesFor(hpa), hpa.Namespace, selector, container)
		if err != nil {
			kind := "utilization"
			if target.AverageValue != nil {
				kind = "usage"
			}
			err = fmt.Errorf("failed to get %s %s: %w", res, kind, err)
			return 0, "", time.Time{}, unable(reason, err), fmt.Errorf("failed to get %s: %w", what, err)
		}
		q := quantityOf(res, raw)
		current := autoscalingv2.MetricValueStatus{AverageValue: &q}
		name := fmt.Sprintf("%s resource", res)
		if target.AverageValue == nil {
			current.AverageUtilization = &utilization
			name = fmt.Sprintf("%s resource utilization (percentage of request)", res)
			if container != "" {
				name = fmt.Sprintf("%s container resource utilization (percentage of request)", res)
			}
		}
		if container != "" {
			*status = autoscalingv2.MetricStatus{Type: spec.Type, ContainerResource: &autoscalingv2.ContainerResourceMetricStatus{Name: res, Container: container, Current: current}}
		} else {
			*status = autoscalingv2.MetricStatus{Type: spec.Type, Resource: &autoscalingv2.ResourceMetricStatus{Name: res, Current: current}}
		}
		return n, name, timestamp, nil, nil
	case autoscalingv2.PodsMetricSourceType:
		name := ""
		if spec.Pods != nil {
			name = spec.Pods.Metric.Name
		}
		err := fmt.Errorf("unable to get metric %s: unable to fetch metrics from custom metrics API: %w", name, errNoCustomMetrics)
		return 0, "", time.Time{}, unable("FailedGetPodsMetric", err), fmt.Errorf("failed to get pods metric value: %w", err)
	case autoscalingv2.ObjectMetricSourceType:
		name := ""
		if spec.Object != nil {
			name = spec.Object.Metric.Name
		}
		err := fmt.Errorf("unable to get metric %s: %w", name, errNoCustomMetrics)
		return 0, "", time.Time{}, unable("FailedGetObjectMetric", err), fmt.Errorf("failed to get object metric value: %w", err)
	case autoscalingv2.ExternalMetricSourceType:
		name := ""
		if spec.External != nil {
			name = spec.External.Metric.Name
		}
		err := fmt.Errorf("unable to get external metric %s/%s: unable to fetch metrics from external metrics API: %w", hpa.Namespace, name, errNoExternalMetrics)
		return 0, "", time.Time{}, unable("FailedGetExternalMetric", err), fmt.Errorf("failed to get %s external metric value: %w", name, err)
	}
	err := fmt.Errorf("unknown metric source type %q", string(spec.Type))
	return 0, "", time.Time{}, unable("InvalidMetricSourceType", err), err
}
