package podtopologyspread

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/events"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

// fakeHandle is just enough of framework.Handle for this plugin: a
// snapshot over fixed NodeInfos and an informer factory on a fake
// clientset (its listers are filled directly through the indexers).
type fakeHandle struct {
	nodes   []*framework.NodeInfo
	client  *fake.Clientset
	factory informers.SharedInformerFactory
}

// newFakeHandle: objs (Services, ReplicationControllers, ReplicaSets,
// StatefulSets) go straight into their informers' indexers.
func newFakeHandle(nodes []*framework.NodeInfo, objs ...runtime.Object) *fakeHandle {
	c := fake.NewClientset()
	f := informers.NewSharedInformerFactory(c, 0)
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *v1.Service:
			err = f.Core().V1().Services().Informer().GetIndexer().Add(o)
		case *v1.ReplicationController:
			err = f.Core().V1().ReplicationControllers().Informer().GetIndexer().Add(o)
		case *appsv1.ReplicaSet:
			err = f.Apps().V1().ReplicaSets().Informer().GetIndexer().Add(o)
		case *appsv1.StatefulSet:
			err = f.Apps().V1().StatefulSets().Informer().GetIndexer().Add(o)
		default:
			err = fmt.Errorf("unexpected %T", o)
		}
		if err != nil {
			panic(err)
		}
	}
	return &fakeHandle{nodes: nodes, client: c, factory: f}
}

func (h *fakeHandle) SnapshotSharedLister() framework.SharedLister { return h }
func (h *fakeHandle) NodeInfos() framework.NodeInfoLister          { return h }
func (h *fakeHandle) List() ([]*framework.NodeInfo, error)         { return h.nodes, nil }
func (h *fakeHandle) HavePodsWithAffinityList() ([]*framework.NodeInfo, error) {
	var out []*framework.NodeInfo
	for _, n := range h.nodes {
		if len(n.PodsWithAffinity) > 0 {
			out = append(out, n)
		}
	}
	return out, nil
}
func (h *fakeHandle) HavePodsWithRequiredAntiAffinityList() ([]*framework.NodeInfo, error) {
	var out []*framework.NodeInfo
	for _, n := range h.nodes {
		if len(n.PodsWithRequiredAntiAffinity) > 0 {
			out = append(out, n)
		}
	}
	return out, nil
}
func (h *fakeHandle) Get(name string) (*framework.NodeInfo, error) {
	for _, n := range h.nodes {
		if n.Node().Name == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("nodeinfo not found for node name %q", name)
}
func (h *fakeHandle) ClientSet() kubernetes.Interface                        { return h.client }
func (h *fakeHandle) SharedInformerFactory() informers.SharedInformerFactory { return h.factory }
func (h *fakeHandle) EventRecorder() events.EventRecorder                    { return nil }
func (h *fakeHandle) NominatedPodsForNode(string) []*framework.PodInfo       { return nil }
func (h *fakeHandle) RunFilterPluginsWithNominatedPods(context.Context, *framework.CycleState, *v1.Pod, *framework.NodeInfo) *framework.Status {
	return nil
}
func (h *fakeHandle) RunPreFilterExtensionAddPod(context.Context, *framework.CycleState, *v1.Pod, *framework.PodInfo, *framework.NodeInfo) *framework.Status {
	return nil
}
func (h *fakeHandle) RunPreFilterExtensionRemovePod(context.Context, *framework.CycleState, *v1.Pod, *framework.PodInfo, *framework.NodeInfo) *framework.Status {
	return nil
}
func (h *fakeHandle) Parallelizer() framework.Parallelizer { return seq{} }

// seq runs the pieces one after another.
type seq struct{}

func (seq) Until(_ context.Context, pieces int, fn func(int), _ string) {
	for i := 0; i < pieces; i++ {
		fn(i)
	}
}
