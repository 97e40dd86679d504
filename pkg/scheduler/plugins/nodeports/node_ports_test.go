package nodeports

import (
	"context"
	"strconv"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/internal/testhandle"
)

// pod makes a pod with host ports given as "proto/ip/port".
func pod(specs ...string) *v1.Pod {
	var ports []v1.ContainerPort
	for _, s := range specs {
		f := strings.Split(s, "/")
		p, _ := strconv.Atoi(f[2])
		ports = append(ports, v1.ContainerPort{Protocol: v1.Protocol(f[0]), HostIP: f[1], HostPort: int32(p)})
	}
	return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "p"}, Spec: v1.PodSpec{NodeName: "n", Containers: []v1.Container{{Ports: ports}}}}
}

var noFree = framework.NewStatus(framework.Unschedulable, "node(s) didn't have free ports for the requested pod ports")

func TestFilter(t *testing.T) {
	tests := []struct {
		name     string
		pod      *v1.Pod
		existing *v1.Pod
		want     *framework.Status
	}{
		{"same port other protocol", pod("UDP/127.0.0.1/8080"), pod("TCP/127.0.0.1/8080"), nil},
		{"same port same protocol same ip", pod("UDP/127.0.0.1/8080"), pod("UDP/127.0.0.1/8080"), noFree},
		{"same port other ip", pod("TCP/127.0.0.1/8001"), pod("TCP/127.0.0.2/8001"), nil},
		{"second port conflicts", pod("TCP/127.0.0.1/8001", "UDP/127.0.0.1/8002"), pod("TCP/127.0.0.1/8002", "UDP/127.0.0.1/8002"), noFree},
		{"wanted 0.0.0.0 collides with a specific ip", pod("TCP/0.0.0.0/8001"), pod("TCP/127.0.0.1/8001"), noFree},
		{"specific ip collides with taken 0.0.0.0", pod("TCP/127.0.0.1/8001"), pod("TCP/0.0.0.0/8001"), noFree},
		{"empty ip and protocol mean 0.0.0.0 TCP", pod("//8001"), pod("TCP/10.0.0.1/8001"), noFree},
		{"0.0.0.0 UDP vs TCP", pod("UDP/0.0.0.0/8001"), pod("TCP/127.0.0.1/8001"), nil},
	}
	p, _ := New(context.Background(), nil, nil)
	pl := p.(*NodePorts)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			state := framework.NewCycleState()
			ni := testhandle.NodeInfo(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}}, tt.existing)
			if _, st := pl.PreFilter(ctx, state, tt.pod, nil); !st.IsSuccess() {
				t.Fatalf("PreFilter: %v", st)
			}
			if got := pl.Filter(ctx, state, tt.pod, ni); !got.Equal(tt.want) {
				t.Errorf("Filter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPreFilterSkip(t *testing.T) {
	p, _ := New(context.Background(), nil, nil)
	pl := p.(*NodePorts)
	noPorts := &v1.Pod{Spec: v1.PodSpec{Containers: []v1.Container{{Ports: []v1.ContainerPort{{ContainerPort: 80}}}}}}
	if _, st := pl.PreFilter(context.Background(), framework.NewCycleState(), noPorts, nil); !st.IsSkip() {
		t.Errorf("PreFilter without host ports = %v, want Skip", st)
	}
	// Filter without PreFilter's state is an error, not a pass.
	if st := pl.Filter(context.Background(), framework.NewCycleState(), noPorts, framework.NewNodeInfo()); st.Code() != framework.Error {
		t.Errorf("Filter without state = %v, want Error", st)
	}
	// A sidecar's host port counts; a plain init container's does not.
	always := v1.ContainerRestartPolicyAlways
	sidecar := &v1.Pod{Spec: v1.PodSpec{InitContainers: []v1.Container{
		{Name: "init", Ports: []v1.ContainerPort{{HostPort: 1}}},
		{Name: "side", RestartPolicy: &always, Ports: []v1.ContainerPort{{HostPort: 2}}},
	}}}
	state := framework.NewCycleState()
	if _, st := pl.PreFilter(context.Background(), state, sidecar, nil); !st.IsSuccess() {
		t.Fatalf("PreFilter with a sidecar port = %v", st)
	}
	d, _ := state.Read(preFilterStateKey)
	if got := d.(preFilterState); len(got) != 1 || got[0].HostPort != 2 {
		t.Errorf("ports = %v, want the sidecar's 2", got)
	}
}

func TestDeleteHint(t *testing.T) {
	p, _ := New(context.Background(), nil, nil)
	pl := p.(*NodePorts)
	want := pod("TCP/0.0.0.0/80")
	unscheduled := pod("TCP/0.0.0.0/80")
	unscheduled.Spec.NodeName = ""
	for _, c := range []struct {
		name    string
		deleted *v1.Pod
		want    framework.QueueingHint
	}{
		{"held the port", pod("TCP/10.0.0.1/80"), framework.Queue},
		{"other port", pod("TCP/10.0.0.1/81"), framework.QueueSkip},
		{"no ports", pod(), framework.QueueSkip},
		{"unscheduled", unscheduled, framework.QueueSkip},
	} {
		if got, err := pl.isSchedulableAfterPodDeleted(klog.Background(), want, c.deleted, nil); err != nil || got != c.want {
			t.Errorf("%s: %v, %v; want %v", c.name, got, err, c.want)
		}
	}
}

// An existing pod's sidecar holds its host port on the node.
func TestExistingSidecarPort(t *testing.T) {
	always := v1.ContainerRestartPolicyAlways
	existing := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "e", UID: "e"}, Spec: v1.PodSpec{
		InitContainers: []v1.Container{{Name: "side", RestartPolicy: &always, Ports: []v1.ContainerPort{{HostPort: 9000}}}},
		Containers:     []v1.Container{{Name: "app"}},
	}}
	p, _ := New(context.Background(), nil, nil)
	pl := p.(*NodePorts)
	want := pod("TCP/0.0.0.0/9000")
	state := framework.NewCycleState()
	pl.PreFilter(context.Background(), state, want, nil)
	ni := testhandle.NodeInfo(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}}, existing)
	if got := pl.Filter(context.Background(), state, want, ni); !got.Equal(noFree) {
		t.Errorf("Filter = %v, want %v", got, noFree)
	}
	ni.RemovePod(existing)
	if got := pl.Filter(context.Background(), state, want, ni); !got.IsSuccess() {
		t.Errorf("after removal Filter = %v, want success", got)
	}
}
