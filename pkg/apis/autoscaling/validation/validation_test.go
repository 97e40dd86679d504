package validation

import (
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

func valid() *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
		ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
		MinReplicas:    ptr.To[int32](1), MaxReplicas: 5,
		Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
			Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](50)}}}},
	}}
}

func messages(errs field.ErrorList) string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return strings.Join(out, "\n")
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		name   string
		modify func(*autoscalingv2.HorizontalPodAutoscaler)
		want   []string
	}{
		{"valid", func(*autoscalingv2.HorizontalPodAutoscaler) {}, nil},
		{"replication controller without group", func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.ScaleTargetRef = autoscalingv2.CrossVersionObjectReference{APIVersion: "v1", Kind: "ReplicationController", Name: "rc"}
		}, nil},
		// The declarative (beta) errors come last, in their words.
		{"replicas", func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.MinReplicas, h.Spec.MaxReplicas = ptr.To[int32](-1), 0
			h.Spec.ScaleTargetRef.APIVersion = "v1"
		}, []string{
			`spec.scaleTargetRef.apiVersion: Invalid value: "v1": apiVersion must specify API group`,
			`spec.minReplicas: Invalid value: -1: must be greater than or equal to 0`,
			`spec.maxReplicas: Required value`,
		}},
		{"min above max", func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.MinReplicas = ptr.To[int32](6) },
			[]string{"spec.maxReplicas: Invalid value: 5: must be greater than or equal to `minReplicas`"}},
		{"scale to zero needs object or external", func(h *autoscalingv2.HorizontalPodAutoscaler) { h.Spec.MinReplicas = ptr.To[int32](0) },
			[]string{"spec.metrics: Forbidden: must specify at least one Object or External metric to support scaling to zero replicas"}},
		{"two sources", func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Metrics[0].Pods = &autoscalingv2.PodsMetricSource{}
			h.Spec.Metrics[0].Resource.Target = autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr.To(resource.MustParse("-1"))}
		}, []string{
			`spec.metrics[0].pods.metric.name: Required value: must specify a metric name`,
			`spec.metrics[0].pods.target.type: Required value: must specify a metric target type`,
			`spec.metrics[0].pods.target.type: Invalid value: "": must be either Utilization, Value, or AverageValue`,
			`spec.metrics[0].pods.target.averageValue: Required value: must specify a positive target averageValue`,
			`spec.metrics[0].pods: Forbidden: must populate the given metric source only`,
		}},
		{"behavior", func(h *autoscalingv2.HorizontalPodAutoscaler) {
			h.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{
				StabilizationWindowSeconds: ptr.To[int32](3601), Tolerance: ptr.To(resource.MustParse("-1"))}}
		}, []string{
			`spec.behavior.scaleDown.stabilizationWindowSeconds: Invalid value: 3601: must be less than or equal to 3600`,
			`spec.behavior.scaleDown.policies: Required value: must specify at least one Policy`,
			`spec.behavior.scaleDown.tolerance: Invalid value: "-1": must be greater than or equal to 0`,
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := valid()
			c.modify(h)
			if got, want := messages(ValidateHorizontalPodAutoscaler(h)), strings.Join(c.want, "\n"); got != want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// An update keeping a bad maxReplicas is not checked again declaratively
// (ratcheting); one keeping the scale target's kind skips its apiVersion.
func TestValidateUpdate(t *testing.T) {
	old := valid()
	old.Spec.ScaleTargetRef.APIVersion = "v1"
	hpa := old.DeepCopy()
	hpa.Spec.MaxReplicas = 7
	if errs := ValidateHorizontalPodAutoscalerUpdate(hpa, old); len(errs) != 0 {
		t.Errorf("errors: %v", errs)
	}
	hpa.Spec.MaxReplicas = -2
	if got := messages(ValidateHorizontalPodAutoscalerUpdate(hpa, old)); !strings.Contains(got, "spec.maxReplicas: Invalid value: -2: must be greater than or equal to 1") {
		t.Errorf("errors: %s", got)
	}
}
