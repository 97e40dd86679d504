package autoscaling

// Defaulting as upstream's pkg/apis/autoscaling/v1 and v2 defaults.go.

import (
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/utils/ptr"
)

// DefaultScaleUpRules are the scale-up rules of a behavior that leaves
// them out: no stabilization, the larger of 4 pods or 100% per 15 s.
func DefaultScaleUpRules() *autoscalingv2.HPAScalingRules {
	return &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](0), SelectPolicy: ptr.To(autoscalingv2.MaxChangePolicySelect),
		Policies: []autoscalingv2.HPAScalingPolicy{
			{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15},
			{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
		}}
}

// DefaultScaleDownRules are the scale-down rules of a behavior that leaves
// them out: 100% per 15 s; the stabilization window stays unset (the
// controller's --horizontal-pod-autoscaler-downscale-stabilization).
func DefaultScaleDownRules() *autoscalingv2.HPAScalingRules {
	return &autoscalingv2.HPAScalingRules{SelectPolicy: ptr.To(autoscalingv2.MaxChangePolicySelect),
		Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}}}
}

// SetDefaultsHorizontalPodAutoscaler defaults an autoscaling/v2 HPA:
// minReplicas 1, 80% CPU utilization without metrics, and a behavior's
// unset rule fields. It also drops the v1 round-trip annotations, which
// upstream's v2 -> internal conversion drops while decoding (here v2 is
// the internal type: decoding converts nothing), so that managedFields
// never name them either.
func SetDefaultsHorizontalPodAutoscaler(hpa *autoscalingv2.HorizontalPodAutoscaler) {
	hpa.Annotations, _ = DropRoundTripAnnotations(hpa.Annotations)
	if hpa.Spec.MinReplicas == nil {
		hpa.Spec.MinReplicas = ptr.To[int32](1)
	}
	if len(hpa.Spec.Metrics) == 0 {
		hpa.Spec.Metrics = []autoscalingv2.MetricSpec{cpuUtilizationMetric(DefaultCPUUtilization)}
	}
	if b := hpa.Spec.Behavior; b != nil {
		b.ScaleUp = FillRules(b.ScaleUp, DefaultScaleUpRules())
		b.ScaleDown = FillRules(b.ScaleDown, DefaultScaleDownRules())
	}
}

// FillRules returns defaults with every field that from sets taken from it.
func FillRules(from, defaults *autoscalingv2.HPAScalingRules) *autoscalingv2.HPAScalingRules {
	if from == nil {
		return defaults
	}
	if from.SelectPolicy != nil {
		defaults.SelectPolicy = from.SelectPolicy
	}
	if from.StabilizationWindowSeconds != nil {
		defaults.StabilizationWindowSeconds = from.StabilizationWindowSeconds
	}
	if from.Policies != nil {
		defaults.Policies = from.Policies
	}
	if from.Tolerance != nil {
		defaults.Tolerance = from.Tolerance
	}
	return defaults
}

// SetDefaultsV1HorizontalPodAutoscaler defaults an autoscaling/v1 HPA:
// minReplicas 1 (the CPU default is applied by the conversion).
func SetDefaultsV1HorizontalPodAutoscaler(hpa *autoscalingv1.HorizontalPodAutoscaler) {
	if hpa.Spec.MinReplicas == nil {
		hpa.Spec.MinReplicas = ptr.To[int32](1)
	}
}
