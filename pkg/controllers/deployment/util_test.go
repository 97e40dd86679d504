package deployment

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestComputeHash(t *testing.T) {
	tmpl := &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx"}}},
	}
	// Pinned: a change of the hashing would give every existing
	// Deployment a new ReplicaSet.
	if got := ComputeHash(tmpl, nil); got != "5dcbb55d4b" {
		t.Errorf("hash %q", got)
	}
	one, two := ComputeHash(tmpl, ptr.To[int32](1)), ComputeHash(tmpl, ptr.To[int32](2))
	if one == two || one == ComputeHash(tmpl, nil) {
		t.Errorf("collisionCount does not change the hash: %s %s", one, two)
	}
	if strings.ContainsAny(ComputeHash(tmpl, nil)+one+two, "aeiou013") {
		t.Errorf("hash not in the safe alphabet: %s %s", one, two)
	}
}

func TestReplicaSetName(t *testing.T) {
	if got := replicaSetName("web", "abc"); got != "web-abc" {
		t.Errorf("got %q", got)
	}
	long := strings.Repeat("x", 260)
	if got := replicaSetName(long, "abcde"); len(got) != 253 || !strings.HasSuffix(got, "x-abcde") {
		t.Errorf("got %d chars %q", len(got), got[240:])
	}
}

func TestFenceposts(t *testing.T) {
	pct := func(s string) *intstr.IntOrString { return ptr.To(intstr.FromString(s)) }
	num := func(n int) *intstr.IntOrString { return ptr.To(intstr.FromInt(n)) }
	for _, c := range []struct {
		surge, unavail      *intstr.IntOrString
		desired             int32
		wantSurge, wantUnav int32
	}{
		{pct("25%"), pct("25%"), 5, 2, 1},
		{pct("25%"), pct("25%"), 1, 1, 0},
		{num(0), num(0), 3, 0, 1},
		{nil, nil, 3, 0, 1},
		{num(3), num(2), 10, 3, 2},
		{pct("50%"), pct("50%"), 3, 2, 1},
	} {
		s, u, err := resolveFenceposts(c.surge, c.unavail, c.desired)
		if err != nil || s != c.wantSurge || u != c.wantUnav {
			t.Errorf("%v %v of %d: %d %d %v, want %d %d", c.surge, c.unavail, c.desired, s, u, err, c.wantSurge, c.wantUnav)
		}
	}
	d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2),
		Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: num(0), MaxUnavailable: num(5)}}}}
	if got := maxUnavailable(d); got != 2 {
		t.Errorf("maxUnavailable beyond replicas: %d", got)
	}
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	if maxUnavailable(d) != 0 || maxSurge(d) != 0 {
		t.Error("Recreate has surge or unavailability")
	}
}

func TestRevisions(t *testing.T) {
	rs := func(rev string) *appsv1.ReplicaSet {
		return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{RevisionAnnotation: rev}}}
	}
	all := []*appsv1.ReplicaSet{rs("3"), rs("x"), rs("7"), rs("5")}
	if maxRevision(all) != 7 || lastRevision(all) != 5 {
		t.Errorf("max %d last %d", maxRevision(all), lastRevision(all))
	}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"kubernetes.io/change-cause": "x",
		corev1.LastAppliedConfigAnnotation: "{}"}}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1)}}
	r := rs("2")
	r.Annotations[RevisionHistoryAnnotation] = "1"
	if !setNewReplicaSetAnnotations(d, r, "4", true, 2000) {
		t.Error("no change")
	}
	if a := r.Annotations; a[RevisionAnnotation] != "4" || a[RevisionHistoryAnnotation] != "1,2" || a["kubernetes.io/change-cause"] != "x" ||
		a[corev1.LastAppliedConfigAnnotation] != "" || a[DesiredReplicasAnnotation] != "" {
		t.Errorf("annotations %v", a)
	}
	// The history keeps its newest entries within the limit.
	r.Annotations[RevisionHistoryAnnotation] = "10,11,12"
	appendRevisionHistory(r, "13", 8)
	if got := r.Annotations[RevisionHistoryAnnotation]; got != "11,12,13" {
		t.Errorf("history %q", got)
	}
}
