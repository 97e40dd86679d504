package printers

import (
	"fmt"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
)

var (
	hpaSpecDoc   = autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()
	hpaStatusDoc = autoscalingv2.HorizontalPodAutoscalerStatus{}.SwaggerDoc()
)

var horizontalPodAutoscalerTable = newTable(
	cols(
		nameColumn(),
		column("Reference", "string", hpaSpecDoc["scaleTargetRef"]),
		column("Targets", "string", hpaSpecDoc["metrics"]),
		column("MinPods", "string", hpaSpecDoc["minReplicas"]),
		column("MaxPods", "string", hpaSpecDoc["maxReplicas"]),
		column("Replicas", "string", hpaStatusDoc["currentReplicas"]),
		ageColumn(),
	),
	func(hpa *autoscalingv2.HorizontalPodAutoscaler) []any {
		minPods := unset
		if hpa.Spec.MinReplicas != nil {
			minPods = fmt.Sprintf("%d", *hpa.Spec.MinReplicas)
		}
		return []any{hpa.Name, hpa.Spec.ScaleTargetRef.Kind + "/" + hpa.Spec.ScaleTargetRef.Name,
			formatHPAMetrics(hpa.Spec.Metrics, hpa.Status.CurrentMetrics), minPods, int64(hpa.Spec.MaxReplicas),
			int64(hpa.Status.CurrentReplicas), age(hpa.CreationTimestamp)}
	},
)

// formatHPAMetrics is upstream's TARGETS cell: "<current>/<target>" for
// the first two metrics, then "+ N more...".
func formatHPAMetrics(specs []autoscalingv2.MetricSpec, statuses []autoscalingv2.MetricStatus) string {
	if len(specs) == 0 {
		return none
	}
	list := make([]string, 0, len(specs))
	for i, spec := range specs {
		var status *autoscalingv2.MetricStatus
		if i < len(statuses) {
			status = &statuses[i]
		}
		list = append(list, formatHPAMetric(&spec, status))
	}
	const maxShown = 2
	if len(list) > maxShown {
		return fmt.Sprintf("%s + %d more...", strings.Join(list[:maxShown], ", "), len(list)-maxShown)
	}
	return strings.Join(list, ", ")
}

func formatHPAMetric(spec *autoscalingv2.MetricSpec, status *autoscalingv2.MetricStatus) string {
	current := unknown
	switch spec.Type {
	case autoscalingv2.ExternalMetricSourceType:
		var cur *autoscalingv2.MetricValueStatus
		if status != nil && status.External != nil {
			cur = &status.External.Current
		}
		return formatValueMetric(spec.External.Target, cur)
	case autoscalingv2.PodsMetricSourceType:
		if status != nil && status.Pods != nil {
			current = quantityOr(status.Pods.Current.AverageValue, current)
		}
		return fmt.Sprintf("%s/%s", current, spec.Pods.Target.AverageValue.String())
	case autoscalingv2.ObjectMetricSourceType:
		var cur *autoscalingv2.MetricValueStatus
		if status != nil && status.Object != nil {
			cur = &status.Object.Current
		}
		return formatValueMetric(spec.Object.Target, cur)
	case autoscalingv2.ResourceMetricSourceType:
		var cur *autoscalingv2.MetricValueStatus
		if status != nil && status.Resource != nil {
			cur = &status.Resource.Current
		}
		return formatResourceMetric(string(spec.Resource.Name), spec.Resource.Target, cur)
	case autoscalingv2.ContainerResourceMetricSourceType:
		var cur *autoscalingv2.MetricValueStatus
		if status != nil && status.ContainerResource != nil {
			cur = &status.ContainerResource.Current
		}
		return formatResourceMetric(string(spec.ContainerResource.Name), spec.ContainerResource.Target, cur)
	}
	return "<unknown type>"
}

// formatValueMetric is an Object or External metric's cell: per pod
// ("(avg)") or the whole value.
func formatValueMetric(target autoscalingv2.MetricTarget, cur *autoscalingv2.MetricValueStatus) string {
	current := unknown
	if target.AverageValue != nil {
		if cur != nil {
			current = quantityOr(cur.AverageValue, current)
		}
		return fmt.Sprintf("%s/%s (avg)", current, target.AverageValue.String())
	}
	if cur != nil {
		current = quantityOr(cur.Value, current)
	}
	return fmt.Sprintf("%s/%s", current, quantityOr(target.Value, unknown))
}

func formatResourceMetric(name string, target autoscalingv2.MetricTarget, cur *autoscalingv2.MetricValueStatus) string {
	current := unknown
	if target.AverageValue != nil {
		if cur != nil {
			current = quantityOr(cur.AverageValue, current)
		}
		return fmt.Sprintf("%s: %s/%s", name, current, target.AverageValue.String())
	}
	if cur != nil && cur.AverageUtilization != nil {
		current = fmt.Sprintf("%d%%", *cur.AverageUtilization)
	}
	goal := "<auto>"
	if target.AverageUtilization != nil {
		goal = fmt.Sprintf("%d%%", *target.AverageUtilization)
	}
	return fmt.Sprintf("%s: %s/%s", name, current, goal)
}

// quantityOr is q as text, or fallback for none (a status a client wrote
// half).
func quantityOr(q *resource.Quantity, fallback string) string {
	if q == nil {
		return fallback
	}
	return q.String()
}
