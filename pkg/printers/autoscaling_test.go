package printers

import (
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestHorizontalPodAutoscalerTable(t *testing.T) {
	gr := schema.GroupResource{Group: "autoscaling", Resource: "horizontalpodautoscalers"}
	q := resource.MustParse
	cpu := func(target *int32, value *resource.Quantity) autoscalingv2.MetricSpec {
		return autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
			Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{AverageUtilization: target, AverageValue: value}}}
	}
	pods := autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
		Target: autoscalingv2.MetricTarget{AverageValue: ptr(q("1k"))}}}
	external := autoscalingv2.MetricSpec{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
		Target: autoscalingv2.MetricTarget{Value: ptr(q("10"))}}}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web", CreationTimestamp: ago(90 * time.Second)},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "web"},
			MaxReplicas: 5, Metrics: []autoscalingv2.MetricSpec{cpu(ptr[int32](50), nil)}},
		Status: autoscalingv2.HorizontalPodAutoscalerStatus{CurrentReplicas: 3},
	}
	got := row(t, gr, hpa)
	want := map[string]any{"Name": "web", "Reference": "Deployment/web", "Targets": "cpu: <unknown>/50%", "MinPods": "<unset>",
		"MaxPods": int64(5), "Replicas": int64(3), "Age": "90s"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}

	for _, c := range []struct {
		name     string
		metrics  []autoscalingv2.MetricSpec
		statuses []autoscalingv2.MetricStatus
		want     string
	}{
		{"none", nil, nil, "<none>"},
		{"utilization", []autoscalingv2.MetricSpec{cpu(ptr[int32](50), nil)}, []autoscalingv2.MetricStatus{{Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricStatus{Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptr[int32](150)}}}},
			"cpu: 150%/50%"},
		{"average value", []autoscalingv2.MetricSpec{cpu(nil, ptr(q("100m")))}, []autoscalingv2.MetricStatus{{Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricStatus{Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageValue: ptr(q("250m"))}}}},
			"cpu: 250m/100m"},
		// A status without the current value is unknown, not a panic.
		{"half a status", []autoscalingv2.MetricSpec{cpu(nil, ptr(q("100m"))), pods}, []autoscalingv2.MetricStatus{
			{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{Name: corev1.ResourceCPU}},
			{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricStatus{}}},
			"cpu: <unknown>/100m, <unknown>/1k"},
		{"auto target", []autoscalingv2.MetricSpec{cpu(nil, nil)}, nil, "cpu: <unknown>/<auto>"},
		{"more", []autoscalingv2.MetricSpec{cpu(ptr[int32](50), nil), pods, external, external}, nil,
			"cpu: <unknown>/50%, <unknown>/1k + 2 more..."},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := formatHPAMetrics(c.metrics, c.statuses); got != c.want {
				t.Errorf("targets = %q, want %q", got, c.want)
			}
		})
	}
}
