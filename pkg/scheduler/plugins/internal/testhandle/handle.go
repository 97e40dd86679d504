// Package testhandle is a framework.Handle for plugin unit tests: a
// snapshot over a fixed list of NodeInfos, a fake clientset with an
// informer factory on it, a fake event recorder and a Parallelizer that
// runs the pieces one after another.
package testhandle

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/events"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

// Handle implements framework.Handle, framework.SharedLister and
// framework.NodeInfoLister. Its fields may be set after New.
type Handle struct {
	Nodes     []*framework.NodeInfo
	Client    *fake.Clientset
	Informers informers.SharedInformerFactory
	Recorder  *events.FakeRecorder
	// Nominated: pods nominated to each node (NominatedPodsForNode).
	Nominated map[string][]*framework.PodInfo
	// Filter, if set, answers RunFilterPluginsWithNominatedPods; else
	// every node passes.
	Filter func(ctx context.Context, state *framework.CycleState, pod *v1.Pod, nodeInfo *framework.NodeInfo) *framework.Status
	// AddPod and RemovePod, if set, answer the PreFilter extension runs.
	AddPod    func(ctx context.Context, state *framework.CycleState, pod *v1.Pod, pi *framework.PodInfo, nodeInfo *framework.NodeInfo) *framework.Status
	RemovePod func(ctx context.Context, state *framework.CycleState, pod *v1.Pod, pi *framework.PodInfo, nodeInfo *framework.NodeInfo) *framework.Status
}

var (
	_ framework.Handle         = &Handle{}
	_ framework.NodeInfoLister = &Handle{}
)

// New is a Handle over nodes with a fake clientset holding objects.
func New(nodes []*framework.NodeInfo, objects ...runtime.Object) *Handle {
	c := fake.NewClientset(objects...)
	return &Handle{
		Nodes:     nodes,
		Client:    c,
		Informers: informers.NewSharedInformerFactory(c, 0),
		Recorder:  events.NewFakeRecorder(100),
		Nominated: map[string][]*framework.PodInfo{},
	}
}

// NodeInfo is a NodeInfo for node holding pods.
func NodeInfo(node *v1.Node, pods ...*v1.Pod) *framework.NodeInfo {
	ni := framework.NewNodeInfo(pods...)
	if node != nil {
		ni.SetNode(node)
	}
	return ni
}

func (h *Handle) SnapshotSharedLister() framework.SharedLister { return h }
func (h *Handle) NodeInfos() framework.NodeInfoLister          { return h }
func (h *Handle) List() ([]*framework.NodeInfo, error)         { return h.Nodes, nil }

func (h *Handle) HavePodsWithAffinityList() ([]*framework.NodeInfo, error) {
	var out []*framework.NodeInfo
	for _, n := range h.Nodes {
		if len(n.PodsWithAffinity) > 0 {
			out = append(out, n)
		}
	}
	return out, nil
}

func (h *Handle) HavePodsWithRequiredAntiAffinityList() ([]*framework.NodeInfo, error) {
	var out []*framework.NodeInfo
	for _, n := range h.Nodes {
		if len(n.PodsWithRequiredAntiAffinity) > 0 {
			out = append(out, n)
		}
	}
	return out, nil
}

func (h *Handle) Get(name string) (*framework.NodeInfo, error) {
	for _, n := range h.Nodes {
		if n.Node() != nil && n.Node().Name == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("nodeinfo not found for node name %q", name)
}

func (h *Handle) ClientSet() kubernetes.Interface                        { return h.Client }
func (h *Handle) SharedInformerFactory() informers.SharedInformerFactory { return h.Informers }
func (h *Handle) EventRecorder() events.EventRecorder                    { return h.Recorder }

func (h *Handle) NominatedPodsForNode(node string) []*framework.PodInfo { return h.Nominated[node] }

func (h *Handle) RunFilterPluginsWithNominatedPods(ctx context.Context, state *framework.CycleState, pod *v1.Pod, ni *framework.NodeInfo) *framework.Status {
	if h.Filter == nil {
		return nil
	}
	return h.Filter(ctx, state, pod, ni)
}

func (h *Handle) RunPreFilterExtensionAddPod(ctx context.Context, state *framework.CycleState, pod *v1.Pod, pi *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	if h.AddPod == nil {
		return nil
	}
	return h.AddPod(ctx, state, pod, pi, ni)
}

func (h *Handle) RunPreFilterExtensionRemovePod(ctx context.Context, state *framework.CycleState, pod *v1.Pod, pi *framework.PodInfo, ni *framework.NodeInfo) *framework.Status {
	if h.RemovePod == nil {
		return nil
	}
	return h.RemovePod(ctx, state, pod, pi, ni)
}

func (h *Handle) Parallelizer() framework.Parallelizer { return Sequential{} }

// Sequential runs the pieces in order on the calling goroutine, so tests
// are deterministic.
type Sequential struct{}

func (Sequential) Until(ctx context.Context, pieces int, fn func(i int), _ string) {
	for i := 0; i < pieces && ctx.Err() == nil; i++ {
		fn(i)
	}
}
