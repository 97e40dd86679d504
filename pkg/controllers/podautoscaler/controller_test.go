package podautoscaler

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/scale"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlfake "sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// scales is a ScalesGetter over one Deployment's scale.
type scales struct{ s *autoscalingv1.Scale }

func (f *scales) Scales(string) scale.ScaleInterface { return f }
func (f *scales) Get(context.Context, schema.GroupResource, string, metav1.GetOptions) (*autoscalingv1.Scale, error) {
	return f.s.DeepCopy(), nil
}
func (f *scales) Update(_ context.Context, _ schema.GroupResource, s *autoscalingv1.Scale, _ metav1.UpdateOptions) (*autoscalingv1.Scale, error) {
	f.s.Spec.Replicas = s.Spec.Replicas
	return f.s.DeepCopy(), nil
}
func (f *scales) Patch(context.Context, schema.GroupVersionResource, string, types.PatchType, []byte, metav1.PatchOptions) (*autoscalingv1.Scale, error) {
	return nil, fmt.Errorf("not supported")
}

// usage is a MetricsClient: each pod's CPU in millicores.
type usage struct {
	cpu map[string]int64
	at  time.Time
}

func (u *usage) GetResourceMetric(_ context.Context, _ corev1.ResourceName, _ string, _ labels.Selector, _ string) (PodMetricsInfo, time.Time, error) {
	if len(u.cpu) == 0 {
		return nil, time.Time{}, fmt.Errorf("no metrics returned from resource metrics API")
	}
	out := PodMetricsInfo{}
	for name, v := range u.cpu {
		out[name] = PodMetric{Timestamp: u.at, Window: 15 * time.Second, Value: v}
	}
	return out, u.at, nil
}

type fixture struct {
	r      *Reconciler
	scale  *scales
	usage  *usage
	events *record.FakeRecorder
	now    time.Time
	hpa    *autoscalingv2.HorizontalPodAutoscaler
	core   *fake.Clientset
	cache  client.Client
}

// newFixture: n Ready pods requesting 100m started an hour ago, each using
// cpu, behind a Deployment at n replicas, and hpa over it.
func newFixture(t *testing.T, n int, cpu int64, hpa *autoscalingv2.HorizontalPodAutoscaler) *fixture {
	t.Helper()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	f := &fixture{now: now, events: record.NewFakeRecorder(100), usage: &usage{cpu: map[string]int64{}, at: now},
		scale: &scales{&autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: int32(n)}, Status: autoscalingv1.ScaleStatus{Replicas: int32(n), Selector: "app=web"}}}}
	builder := ctrlfake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(hpa.DeepCopy()).WithStatusSubresource(&autoscalingv2.HorizontalPodAutoscaler{}, &corev1.Pod{})
	for i := range n {
		name := fmt.Sprintf("web-%d", i)
		started := metav1.NewTime(now.Add(-time.Hour))
		builder = builder.WithObjects(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &started,
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: started}}}})
		f.usage.cpu[name] = cpu
	}
	f.cache = builder.Build()
	f.core = fake.NewClientset(hpa.DeepCopy())
	mapper := meta.NewDefaultRESTMapper([]schema.GroupVersion{{Group: "apps", Version: "v1"}})
	mapper.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace)
	f.hpa = hpa
	f.r = &Reconciler{Client: f.cache, Core: f.core, Scales: f.scale, Mapper: mapper, Metrics: f.usage, Recorder: f.events,
		Config: DefaultConfig(), Now: func() time.Time { return f.now }}
	return f
}

func cpuHPA(target int32, behavior *autoscalingv2.HorizontalPodAutoscalerBehavior) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", Generation: 1},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas: ptr.To[int32](1), MaxReplicas: 10, Behavior: behavior,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU,
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(target)}}}}}}
}

// sync runs one sync and returns the HPA's written status.
func (f *fixture) sync(t *testing.T) *autoscalingv2.HorizontalPodAutoscaler {
	t.Helper()
	if _, err := f.r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "web"}}); err != nil {
		t.Logf("sync: %v", err)
	}
	hpa, err := f.core.AutoscalingV2().HorizontalPodAutoscalers("ns").Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The cache sees what was written, as the informer would.
	if err := f.cache.Status().Update(context.Background(), hpa.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	return hpa
}

func (f *fixture) setUsage(cpu int64) {
	for name := range f.usage.cpu {
		f.usage.cpu[name] = cpu
	}
}

func condition(hpa *autoscalingv2.HorizontalPodAutoscaler, typ autoscalingv2.HorizontalPodAutoscalerConditionType) string {
	for _, c := range hpa.Status.Conditions {
		if c.Type == typ {
			return string(c.Status) + " " + c.Reason + ": " + c.Message
		}
	}
	return ""
}

func drain(events *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-events.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// 3 pods at 100% of a 50% target: 6 replicas, upstream's event, status and
// conditions.
func TestScaleUp(t *testing.T) {
	f := newFixture(t, 3, 100, cpuHPA(50, nil))
	hpa := f.sync(t)
	if got := f.scale.s.Spec.Replicas; got != 6 {
		t.Errorf("replicas = %d, want 6", got)
	}
	if got := strings.Join(drain(f.events), "\n"); got != "Normal SuccessfulRescale New size: 6; reason: cpu resource utilization (percentage of request) above target" {
		t.Errorf("events: %s", got)
	}
	if s := hpa.Status; s.CurrentReplicas != 3 || s.DesiredReplicas != 6 || s.LastScaleTime == nil || s.ObservedGeneration == nil || *s.ObservedGeneration != 1 ||
		len(s.CurrentMetrics) != 1 || *s.CurrentMetrics[0].Resource.Current.AverageUtilization != 100 || s.CurrentMetrics[0].Resource.Current.AverageValue.String() != "100m" {
		t.Errorf("status: %+v", s)
	}
	for typ, want := range map[autoscalingv2.HorizontalPodAutoscalerConditionType]string{
		autoscalingv2.AbleToScale:    "True SucceededRescale: the HPA controller was able to update the target scale to 6",
		autoscalingv2.ScalingActive:  "True ValidMetricFound: the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)",
		autoscalingv2.ScalingLimited: "False DesiredWithinRange: the desired count is within the acceptable range",
		autoscalingv2.ScaledToZero:   "False NotScaledToZero: the HPA controller did not scale the workload to zero",
	} {
		if got := condition(hpa, typ); got != want {
			t.Errorf("%s = %q, want %q", typ, got, want)
		}
	}
}

// Within the 10% tolerance nothing scales; beyond max(2x, 4) it is limited.
func TestToleranceAndScaleUpLimit(t *testing.T) {
	f := newFixture(t, 2, 54, cpuHPA(50, nil))
	f.sync(t)
	if got := f.scale.s.Spec.Replicas; got != 2 {
		t.Errorf("replicas at 108%% of target = %d, want 2", got)
	}
	f.setUsage(500)
	hpa := f.sync(t)
	if got := f.scale.s.Spec.Replicas; got != 4 {
		t.Errorf("replicas at 10x = %d, want 4 (max(2*2, 4))", got)
	}
	if got := condition(hpa, autoscalingv2.ScalingLimited); got != "True ScaleUpLimit: the desired replica count is increasing faster than the maximum scale rate" {
		t.Errorf("ScalingLimited = %q", got)
	}
}

// Without a behavior a scale-down waits for the downscale stabilization
// window (the highest recommendation of the last 5 minutes).
func TestDownscaleStabilization(t *testing.T) {
	f := newFixture(t, 4, 50, cpuHPA(50, nil))
	f.sync(t) // recommends 4
	f.setUsage(10)
	f.now = f.now.Add(time.Minute)
	hpa := f.sync(t)
	if got := f.scale.s.Spec.Replicas; got != 4 {
		t.Errorf("replicas a minute later = %d, want 4", got)
	}
	if got := condition(hpa, autoscalingv2.AbleToScale); !strings.HasPrefix(got, "True ScaleDownStabilized:") {
		t.Errorf("AbleToScale = %q", got)
	}
	f.now = f.now.Add(5 * time.Minute)
	f.sync(t)
	if got := f.scale.s.Spec.Replicas; got != 1 {
		t.Errorf("replicas after the window = %d, want 1", got)
	}
	if ev := drain(f.events); len(ev) != 1 || ev[0] != "Normal SuccessfulRescale New size: 1; reason: All metrics below target" {
		t.Errorf("events: %q", ev)
	}
}

// A behavior's policy bounds the rate: 1 pod per 60 s up.
func TestBehaviorPolicies(t *testing.T) {
	up := &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](0), SelectPolicy: ptr.To(autoscalingv2.MaxChangePolicySelect),
		Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 1, PeriodSeconds: 60}}}
	down := &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To[int32](0), SelectPolicy: ptr.To(autoscalingv2.MaxChangePolicySelect),
		Policies: []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}}}
	f := newFixture(t, 2, 200, cpuHPA(50, &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: up, ScaleDown: down}))
	hpa := f.sync(t)
	if got := f.scale.s.Spec.Replicas; got != 3 {
		t.Errorf("replicas = %d, want 3", got)
	}
	if got := condition(hpa, autoscalingv2.ScalingLimited); got != "True ScaleUpLimit: the desired replica count is increasing faster than the maximum scale rate" {
		t.Errorf("ScalingLimited = %q", got)
	}
	// 30 s later the period still holds the +1.
	f.now = f.now.Add(30 * time.Second)
	f.sync(t)
	if got := f.scale.s.Spec.Replicas; got != 3 {
		t.Errorf("replicas within the period = %d, want 3", got)
	}
	f.now = f.now.Add(31 * time.Second)
	f.sync(t)
	if got := f.scale.s.Spec.Replicas; got != 4 {
		t.Errorf("replicas after the period = %d, want 4", got)
	}
}

// No metrics: ScalingActive False with upstream's reason, the scale
// untouched.
func TestNoMetrics(t *testing.T) {
	f := newFixture(t, 2, 0, cpuHPA(50, nil))
	f.usage.cpu = nil
	hpa := f.sync(t)
	if got := f.scale.s.Spec.Replicas; got != 2 {
		t.Errorf("replicas = %d, want 2", got)
	}
	want := "False FailedGetResourceMetric: the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API"
	if got := condition(hpa, autoscalingv2.ScalingActive); got != want {
		t.Errorf("ScalingActive = %q, want %q", got, want)
	}
	ev := drain(f.events)
	if len(ev) != 2 || !strings.HasPrefix(ev[0], "Warning FailedGetResourceMetric ") || !strings.HasPrefix(ev[1], "Warning FailedComputeMetricsReplicas invalid metrics (1 invalid out of 1), first error is: ") {
		t.Errorf("events: %q", ev)
	}
}

// Newly started pods measured less than a window after becoming ready
// count as 0% on a scale-up: here no change.
func TestUnreadyPodsOnScaleUp(t *testing.T) {
	f := newFixture(t, 2, 150, cpuHPA(50, nil))
	pod := &corev1.Pod{}
	if err := f.cache.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "web-1"}, pod); err != nil {
		t.Fatal(err)
	}
	started := metav1.NewTime(f.now.Add(-20 * time.Second))
	pod.Status.StartTime, pod.Status.Conditions[0].LastTransitionTime = &started, metav1.NewTime(f.now.Add(-10*time.Second))
	if err := f.cache.Status().Update(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	f.usage.cpu["web-0"] = 60
	f.sync(t)
	// ready web-0 at 60% alone says 2 (ratio 1.2); with web-1 at 0 the
	// ratio is 0.6: the direction flips, so the count stays.
	if got := f.scale.s.Spec.Replicas; got != 2 {
		t.Errorf("replicas = %d, want 2", got)
	}
}
