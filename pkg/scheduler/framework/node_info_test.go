package framework

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func pod(uid string, cpu, mem string, port int32) *v1.Pod {
	c := v1.Container{Name: "c"}
	if cpu != "" {
		c.Resources.Requests = v1.ResourceList{v1.ResourceCPU: resource.MustParse(cpu), v1.ResourceMemory: resource.MustParse(mem)}
	}
	if port > 0 {
		c.Ports = []v1.ContainerPort{{HostPort: port, ContainerPort: port}}
	}
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: types.UID("uid-" + uid), Name: uid}, Spec: v1.PodSpec{Containers: []v1.Container{c}}}
}

func TestNodeInfoSums(t *testing.T) {
	n := NewNodeInfo()
	n.SetNode(&v1.Node{Status: v1.NodeStatus{Allocatable: v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), v1.ResourcePods: resource.MustParse("110"),
		"example.com/gpu": resource.MustParse("2")}}})
	a, b := pod("a", "500m", "1Gi", 80), pod("b", "", "", 0)
	n.AddPod(a)
	n.AddPod(b)
	if n.Requested.MilliCPU != 500 || n.Requested.Memory != 1<<30 {
		t.Fatalf("requested %+v", n.Requested)
	}
	if n.NonZeroRequested.MilliCPU != 600 || n.NonZeroRequested.Memory != 1<<30+DefaultMemoryRequest {
		t.Fatalf("non-zero requested %+v", n.NonZeroRequested)
	}
	if !n.UsedPorts.CheckConflict("10.0.0.1", "TCP", 80) || n.UsedPorts.CheckConflict("", "UDP", 80) {
		t.Fatalf("ports %v", n.UsedPorts)
	}
	if n.Allocatable.AllowedPodNumber != 110 || n.Allocatable.ScalarResources["example.com/gpu"] != 2 {
		t.Fatalf("allocatable %+v", n.Allocatable)
	}
	c := n.Clone()
	gen := n.Generation
	if !n.RemovePod(a) || n.RemovePod(a) {
		t.Fatal("RemovePod should succeed once")
	}
	if n.Generation == gen || n.Requested.MilliCPU != 0 || n.UsedPorts.CheckConflict("", "TCP", 80) || len(n.Pods) != 1 {
		t.Fatalf("after remove: %+v %v", n.Requested, n.UsedPorts)
	}
	if c.Requested.MilliCPU != 500 || len(c.Pods) != 2 || !c.UsedPorts.CheckConflict("", "TCP", 80) {
		t.Fatal("clone changed with the original")
	}
}

func TestScalarResourceNames(t *testing.T) {
	for name, want := range map[v1.ResourceName]bool{"example.com/gpu": true, "hugepages-2Mi": true, "kubernetes.io/foo": false,
		"cpu": false, "requests.example.com/gpu": false, "attachable-volumes-csi-x": true, "foo.kubernetes.io/bar": false} {
		if got := IsScalarResourceName(name); got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
}
