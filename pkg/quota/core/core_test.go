package core

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	quota "k8s.io/apiserver/pkg/quota/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
)

func list(kv ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i+1 < len(kv); i += 2 {
		l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return l
}

func TestPodUsage(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "a", Resources: corev1.ResourceRequirements{Requests: list("cpu", "100m", "memory", "1Gi"), Limits: list("cpu", "200m")}},
		{Name: "b", Resources: corev1.ResourceRequirements{Requests: list("cpu", "300m")}},
	}}}
	got, err := PodUsage(pod, clock.RealClock{})
	if err != nil {
		t.Fatal(err)
	}
	want := list("count/pods", "1", "pods", "1", "cpu", "400m", "requests.cpu", "400m", "limits.cpu", "200m", "memory", "1Gi", "requests.memory", "1Gi")
	if !quota.Equals(got, want) {
		t.Errorf("usage %v, want %v", got, want)
	}
	pod.Status.Phase = corev1.PodSucceeded
	got, _ = PodUsage(pod, clock.RealClock{})
	if !quota.Equals(got, list("count/pods", "1")) {
		t.Errorf("terminal pod usage %v", got)
	}
}

func TestPodScopes(t *testing.T) {
	e := NewPodEvaluator(nil, clock.RealClock{})
	best := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}
	burst := &corev1.Pod{Spec: corev1.PodSpec{ActiveDeadlineSeconds: ptr.To[int64](10), PriorityClassName: "high",
		Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: list("cpu", "1")}}}}}
	q := func(scopes ...corev1.ResourceQuotaScope) *corev1.ResourceQuota {
		return &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "q"}, Spec: corev1.ResourceQuotaSpec{Hard: list("pods", "1"), Scopes: scopes},
			Status: corev1.ResourceQuotaStatus{Hard: list("pods", "1")}}
	}
	for _, tc := range []struct {
		pod   *corev1.Pod
		scope corev1.ResourceQuotaScope
		want  bool
	}{
		{best, corev1.ResourceQuotaScopeBestEffort, true},
		{best, corev1.ResourceQuotaScopeNotBestEffort, false},
		{best, corev1.ResourceQuotaScopeNotTerminating, true},
		{burst, corev1.ResourceQuotaScopeTerminating, true},
		{burst, corev1.ResourceQuotaScopeBestEffort, false},
	} {
		got, err := e.Matches(q(tc.scope), tc.pod)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %v, %v; want %v", tc.scope, got, err, tc.want)
		}
	}
	pq := q()
	pq.Spec.ScopeSelector = &corev1.ScopeSelector{MatchExpressions: []corev1.ScopedResourceSelectorRequirement{
		{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpIn, Values: []string{"high"}}}}
	if ok, _ := e.Matches(pq, burst); !ok {
		t.Error("PriorityClass In [high] does not match a high pod")
	}
	if ok, _ := e.Matches(pq, best); ok {
		t.Error("PriorityClass In [high] matches a pod without class")
	}
	if err := e.Constraints([]corev1.ResourceName{"requests.memory"}, burst); err == nil || err.Error() != "must specify requests.memory for: c" {
		t.Errorf("constraints: %v", err)
	}
}

func TestServiceAndClaimUsage(t *testing.T) {
	svc := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 1}, {Port: 2}}}}
	got, _ := NewServiceEvaluator(nil).Usage(svc)
	if !quota.Equals(got, list("count/services", "1", "services", "1", "services.loadbalancers", "1", "services.nodeports", "2")) {
		t.Errorf("service usage %v", got)
	}
	pvc := &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To("gold"),
		Resources: corev1.VolumeResourceRequirements{Requests: list("storage", "1500m")}}}
	got, _ = NewPersistentVolumeClaimEvaluator(nil).Usage(pvc)
	want := list("count/persistentvolumeclaims", "1", "persistentvolumeclaims", "1", "requests.storage", "2",
		"gold.storageclass.storage.k8s.io/persistentvolumeclaims", "1", "gold.storageclass.storage.k8s.io/requests.storage", "2")
	if !quota.Equals(got, want) {
		t.Errorf("claim usage %v, want %v", got, want)
	}
}
