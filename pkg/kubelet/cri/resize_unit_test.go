package cri

import (
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
)

func TestAdmitResize(t *testing.T) {
	allocatable := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("1Gi"), corev1.ResourcePods: resource.MustParse("110")}
	podWith := func(r corev1.ResourceRequirements) *corev1.Pod {
		p := busyboxPod("p", "true")
		p.Spec.Containers[0].Resources = r
		return p
	}
	other := map[string]corev1.ResourceRequirements{"c": requirements("1500m", "", "512Mi", "")}
	cases := []struct {
		name          string
		desired       corev1.ResourceRequirements
		others        []map[string]corev1.ResourceRequirements
		reason, msg   string
		allocatableOf corev1.ResourceList
	}{
		{"fits", requirements("500m", "", "256Mi", ""), []map[string]corev1.ResourceRequirements{other}, "", "", allocatable},
		{"beyond the node's cpu", requirements("3", "", "", ""), nil, corev1.PodReasonInfeasible,
			"Node didn't have enough capacity: cpu, requested: 3000, capacity: 2000", allocatable},
		{"beyond the node's memory (checked first)", requirements("3", "", "2Gi", ""), nil, corev1.PodReasonInfeasible,
			"Node didn't have enough capacity: memory, requested: 2147483648, capacity: 1073741824", allocatable},
		{"not next to the others", requirements("600m", "", "", ""), []map[string]corev1.ResourceRequirements{other}, corev1.PodReasonDeferred,
			"Node didn't have enough resource: cpu, requested: 600, used: 1500, capacity: 2000", allocatable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reason, msg := admitResize(podWith(tc.desired), tc.others, tc.allocatableOf)
			if reason != tc.reason || msg != tc.msg {
				t.Errorf("admitResize: %q %q, want %q %q", reason, msg, tc.reason, tc.msg)
			}
		})
	}
}

func TestActionFor(t *testing.T) {
	c := &corev1.Container{Name: "c", ResizePolicy: []corev1.ContainerResizePolicy{
		{ResourceName: corev1.ResourceCPU, RestartPolicy: corev1.NotRequired},
		{ResourceName: corev1.ResourceMemory, RestartPolicy: corev1.RestartContainer},
	}}
	base := requirements("20m", "30m", "35Mi", "45Mi")
	cases := []struct {
		name      string
		allocated corev1.ResourceRequirements
		want      resizeAction
	}{
		{"same", requirements("20m", "30m", "35Mi", "45Mi"), resizeNone},
		{"same value, other form", requirements("0.02", "30m", "35Mi", "45Mi"), resizeNone},
		{"cpu request", requirements("25m", "30m", "35Mi", "45Mi"), resizeUpdate},
		{"memory limit", requirements("20m", "30m", "35Mi", "50Mi"), resizeRestart},
		{"memory request", requirements("20m", "30m", "30Mi", "45Mi"), resizeRestart},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := actionFor(c, base, tc.allocated); got != tc.want {
				t.Errorf("actionFor: %d, want %d", got, tc.want)
			}
		})
	}
	// No policy: NotRequired, as the API defaults it.
	if got := actionFor(&corev1.Container{Name: "c"}, base, requirements("20m", "30m", "35Mi", "50Mi")); got != resizeUpdate {
		t.Errorf("without a resize policy: %d, want an update", got)
	}
	if got := actionFor(c, requirements("20m", "", "", ""), requirements("20m", "30m", "", "")); got != resizeUpdate {
		t.Errorf("cpu limit added: %d, want an update", got)
	}
}

// TestAllocationsCheckpoint: what the node granted and applied survives a
// restart of the agent; a corrupt checkpoint starts empty with an error.
func TestAllocationsCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubelet", allocationFile)
	a, err := loadAllocations(path)
	if err != nil {
		t.Fatal(err)
	}
	uid := types.UID("u1")
	if err := a.setAllocated(uid, map[string]corev1.ResourceRequirements{"c": requirements("25m", "", "40Mi", "")}); err != nil {
		t.Fatal(err)
	}
	if err := a.setActuated(uid, "c", "id1", requirements("20m", "", "40Mi", "")); err != nil {
		t.Fatal(err)
	}
	if err := a.setAllocated("u2", map[string]corev1.ResourceRequirements{"c": requirements("1", "", "", "")}); err != nil {
		t.Fatal(err)
	}
	b, err := loadAllocations(path)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := b.get(uid)
	if !ok || !equalResources(got.Allocated["c"], requirements("25m", "", "40Mi", "")) {
		t.Errorf("allocated after a reload: %+v", got.Allocated)
	}
	if act := got.Actuated["c"]; act.ID != "id1" || !equalResources(act.Resources, requirements("20m", "", "40Mi", "")) {
		t.Errorf("actuated after a reload: %+v", got.Actuated)
	}
	if others := b.others(uid, nil); len(others) != 1 || !equalResources(others[0]["c"], requirements("1", "", "", "")) {
		t.Errorf("others: %+v", others)
	}
	if others := b.others(uid, func(u types.UID) bool { return u != "u2" }); len(others) != 0 {
		t.Errorf("others not live: %+v", others)
	}
	if err := b.remove("u2"); err != nil {
		t.Fatal(err)
	}
	if c, _ := loadAllocations(path); len(c.others(uid, nil)) != 0 {
		t.Errorf("removed pod still checkpointed")
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := loadAllocations(path)
	if err == nil {
		t.Error("corrupt checkpoint read without an error")
	}
	if _, ok := d.get(uid); ok {
		t.Error("corrupt checkpoint has pods")
	}
}

// TestAllocatedRequests: a pod the node granted other resources counts
// with them (its sidecar too); one without an allocation is not known.
func TestAllocatedRequests(t *testing.T) {
	a, err := loadAllocations(filepath.Join(t.TempDir(), allocationFile))
	if err != nil {
		t.Fatal(err)
	}
	r := &Runtime{allocs: a}
	p := busyboxPod("p", "true")
	p.Spec.Containers[0].Resources = requirements("100m", "", "64Mi", "")
	if _, ok := r.AllocatedRequests(p); ok {
		t.Error("a pod without an allocation has allocated requests")
	}
	if err := a.setAllocated(p.UID, map[string]corev1.ResourceRequirements{p.Spec.Containers[0].Name: requirements("700m", "", "64Mi", "")}); err != nil {
		t.Fatal(err)
	}
	got, ok := r.AllocatedRequests(p)
	if !ok || got.Cpu().MilliValue() != 700 || got.Memory().Value() != 64<<20 {
		t.Errorf("allocated requests %v, %v; want cpu 700m, memory 64Mi", got, ok)
	}
}
