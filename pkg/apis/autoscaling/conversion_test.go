package autoscaling_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis"
	"github.com/skiff-dev/skiff/pkg/apis/autoscaling"
)

func cpuUtilization(target int32) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
		Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(target)}}}
}

// A v2 HPA with what v1 cannot say survives v2 -> v1 -> v2 through the
// annotations, which v1 shows and v2 does not.
func TestRoundTripThroughV1(t *testing.T) {
	q := resource.MustParse
	in := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", Annotations: map[string]string{"keep": "me"}},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    ptr.To[int32](2), MaxReplicas: 10,
			Metrics: []autoscalingv2.MetricSpec{
				{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceMemory,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr.To(q("100Mi"))}}},
				{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "qps"},
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr.To(q("1k"))}}},
				cpuUtilization(60),
			},
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](60),
				SelectPolicy: ptr.To(autoscalingv2.MinChangePolicySelect), Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 1, PeriodSeconds: 30}},
				Tolerance: ptr.To(q("50m"))}},
		},
		Status: autoscalingv2.HorizontalPodAutoscalerStatus{ObservedGeneration: ptr.To[int64](3), CurrentReplicas: 2, DesiredReplicas: 4,
			CurrentMetrics: []autoscalingv2.MetricStatus{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{Name: corev1.ResourceCPU,
				Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptr.To[int32](120), AverageValue: ptr.To(q("240m"))}}}},
			Conditions: []autoscalingv2.HorizontalPodAutoscalerCondition{{Type: autoscalingv2.AbleToScale, Status: corev1.ConditionTrue,
				Reason: "SucceededRescale", Message: "the HPA controller was able to update the target scale to 4", ObservedGeneration: ptr.To[int64](3)}}},
	}
	v1 := &autoscalingv1.HorizontalPodAutoscaler{}
	if err := apis.Scheme.Convert(in, v1, nil); err != nil {
		t.Fatal(err)
	}
	if got := v1.Spec.TargetCPUUtilizationPercentage; got == nil || *got != 60 {
		t.Errorf("targetCPUUtilizationPercentage = %v, want 60", got)
	}
	if got := v1.Status.CurrentCPUUtilizationPercentage; got == nil || *got != 120 {
		t.Errorf("currentCPUUtilizationPercentage = %v, want 120", got)
	}
	wantMetrics := `[{"type":"Resource","resource":{"name":"memory","targetAverageValue":"100Mi"}},{"type":"Pods","pods":{"metricName":"qps","targetAverageValue":"1k"}}]`
	if got := v1.Annotations[autoscaling.MetricSpecsAnnotation]; got != wantMetrics {
		t.Errorf("metrics annotation = %s, want %s", got, wantMetrics)
	}
	// Upstream marshals its internal type: Go field names, nothing omitted.
	wantBehavior := `{"ScaleUp":null,"ScaleDown":{"StabilizationWindowSeconds":60,"SelectPolicy":"Min","Policies":[{"Type":"Pods","Value":1,"PeriodSeconds":30}],"Tolerance":"50m"}}`
	if got := v1.Annotations[autoscaling.BehaviorSpecsAnnotation]; got != wantBehavior {
		t.Errorf("behavior annotation = %s, want %s", got, wantBehavior)
	}
	for _, k := range []string{autoscaling.MetricStatusesAnnotation, autoscaling.HorizontalPodAutoscalerConditionsAnnotation} {
		if v1.Annotations[k] == "" {
			t.Errorf("no %s annotation", k)
		}
	}
	if in.Annotations["keep"] != "me" || len(in.Annotations) != 1 {
		t.Errorf("the v2 object's annotations changed: %v", in.Annotations)
	}

	back := &autoscalingv2.HorizontalPodAutoscaler{}
	if err := apis.Scheme.Convert(v1, back, nil); err != nil {
		t.Fatal(err)
	}
	// The CPU utilization metric comes back last (after the annotation's).
	if diff := cmp.Diff(in, back); diff != "" {
		t.Errorf("round trip (-v2 +back):\n%s", diff)
	}
}

// A v1 HPA without a CPU target gets upstream's 80%; stale round-trip
// annotations a v2 writer sent are dropped going to v1.
func TestV1Defaults(t *testing.T) {
	v1 := &autoscalingv1.HorizontalPodAutoscaler{Spec: autoscalingv1.HorizontalPodAutoscalerSpec{MaxReplicas: 3}}
	v2 := &autoscalingv2.HorizontalPodAutoscaler{}
	if err := apis.Scheme.Convert(v1, v2, nil); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]autoscalingv2.MetricSpec{cpuUtilization(80)}, v2.Spec.Metrics); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	stale := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{autoscaling.BehaviorSpecsAnnotation: "x"}},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{Metrics: []autoscalingv2.MetricSpec{cpuUtilization(50)}}}
	out := &autoscalingv1.HorizontalPodAutoscaler{}
	if err := apis.Scheme.Convert(stale, out, nil); err != nil {
		t.Fatal(err)
	}
	if len(out.Annotations) != 0 {
		t.Errorf("annotations = %v, want none", out.Annotations)
	}
}

func TestV2Defaults(t *testing.T) {
	hpa := &autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
		Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](30)}}}}
	apis.Scheme.Default(hpa)
	want := autoscalingv2.HorizontalPodAutoscalerSpec{MinReplicas: ptr.To[int32](1), Metrics: []autoscalingv2.MetricSpec{cpuUtilization(80)},
		Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
			ScaleUp: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](30), SelectPolicy: ptr.To(autoscalingv2.MaxChangePolicySelect),
				Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15}, {Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}}},
			ScaleDown: &autoscalingv2.HPAScalingRules{SelectPolicy: ptr.To(autoscalingv2.MaxChangePolicySelect),
				Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}}}}}
	if diff := cmp.Diff(want, hpa.Spec); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}
