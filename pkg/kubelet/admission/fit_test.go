package admission

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func list(pairs ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i+1 < len(pairs); i += 2 {
		l[corev1.ResourceName(pairs[i])] = resource.MustParse(pairs[i+1])
	}
	return l
}

func TestFit(t *testing.T) {
	alloc := list("cpu", "2", "memory", "1Gi", "pods", "3", "example.com/gpu", "1")
	for _, c := range []struct {
		name     string
		req      corev1.ResourceList
		used     corev1.ResourceList
		admitted int
		want     string
	}{
		{"fits", list("cpu", "1", "memory", "512Mi"), list("cpu", "1"), 1, ""},
		{"best effort always fits", nil, list("cpu", "2", "memory", "1Gi"), 2, ""},
		{"cpu", list("cpu", "1500m"), list("cpu", "1"), 1, "OutOfcpu Node didn't have enough resource: cpu, requested: 1500, used: 1000, capacity: 2000"},
		{"memory", list("memory", "1Gi"), list("memory", "1"), 0, "OutOfmemory Node didn't have enough resource: memory, requested: 1073741824, used: 1, capacity: 1073741824"},
		{"pods first", list("cpu", "3"), nil, 3, "OutOfpods Node didn't have enough resource: pods, requested: 1, used: 3, capacity: 3"},
		{"extended", list("example.com/gpu", "2"), nil, 0, "OutOfexample.com/gpu Node didn't have enough resource: example.com/gpu, requested: 2, used: 0, capacity: 1"},
		// As upstream: a cluster-level resource, not the node's to check.
		{"extended the node lacks", list("example.com/fpga", "1"), nil, 0, ""},
		{"hugepages the node lacks", list("hugepages-2Mi", "2Mi"), nil, 0, "OutOfhugepages-2Mi Node didn't have enough resource: hugepages-2Mi, requested: 2097152, used: 0, capacity: 0"},
	} {
		r := Fit(c.req, c.used, c.admitted, alloc)
		got := ""
		if r != nil {
			got = r.Reason() + " " + r.Error()
		}
		if got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestRequestsCountInitContainersAndOverhead(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "i", Resources: corev1.ResourceRequirements{Requests: list("cpu", "2")}}},
		Containers:     []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Requests: list("cpu", "1")}}},
		Overhead:       list("cpu", "100m"),
	}}
	if got := Requests(pod)[corev1.ResourceCPU]; got.MilliValue() != 2100 {
		t.Errorf("cpu requests %s, want 2100m (the init container's 2 plus overhead)", got.String())
	}
	used := list("cpu", "1")
	Add(used, list("cpu", "500m", "memory", "1Mi"))
	Sub(used, list("cpu", "1"))
	if used.Cpu().MilliValue() != 500 || used.Memory().Value() != 1<<20 {
		t.Errorf("Add/Sub: %v", used)
	}
}

func TestAllocatableTakesTheNodesExtendedResources(t *testing.T) {
	own := list("cpu", "2", "pods", "110")
	node := &corev1.Node{Status: corev1.NodeStatus{Allocatable: list("cpu", "64", "scheduling.k8s.io/foo", "5", "hugepages-2Mi", "1Gi")}}
	got := Allocatable(own, node)
	want := list("cpu", "2", "pods", "110", "scheduling.k8s.io/foo", "5")
	if len(got) != len(want) {
		t.Fatalf("allocatable %v, want %v", got, want)
	}
	for k, v := range want {
		if g := got[k]; g.Cmp(v) != 0 {
			t.Errorf("%s: %v, want %v", k, g.String(), v.String())
		}
	}
	if _, ok := own["scheduling.k8s.io/foo"]; ok {
		t.Error("the host's own allocatable was written")
	}
	if got := Allocatable(own, nil); len(got) != 2 {
		t.Errorf("without a node: %v", got)
	}
	// Admitted against it: 2 of 5 fit twice, not a third time.
	used := list()
	req := list("scheduling.k8s.io/foo", "2")
	for i := 0; i < 2; i++ {
		if r := Fit(req, used, i, got); r != nil {
			t.Fatalf("pod %d: %v", i, r)
		}
		Add(used, req)
	}
	if r := Fit(req, used, 2, got); r == nil || r.Reason() != "OutOfscheduling.k8s.io/foo" {
		t.Errorf("third pod: %v", r)
	}
}
