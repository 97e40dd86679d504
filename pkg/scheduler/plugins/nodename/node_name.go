// Package nodename is the NodeName plugin: a pod with spec.nodeName set
// fits only that node.
package nodename

import (
	"context"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/names"
)

const (
	// Name is the plugin's name in configuration.
	Name = names.NodeName
	// ErrReason is upstream's reason.
	ErrReason = "node(s) didn't match the requested node name"
)

// NodeName checks spec.nodeName.
type NodeName struct{}

var (
	_ framework.PreFilterPlugin   = &NodeName{}
	_ framework.FilterPlugin      = &NodeName{}
	_ framework.EnqueueExtensions = &NodeName{}
)

// New builds the plugin; it takes no args.
func New(_ context.Context, _ runtime.Object, _ framework.Handle) (framework.Plugin, error) {
	return &NodeName{}, nil
}

// Name is the plugin's name.
func (pl *NodeName) Name() string { return Name }

// EventsToRegister: only a new node (the named one appearing) can help.
func (pl *NodeName) EventsToRegister(_ context.Context) ([]framework.ClusterEventWithHint, error) {
	return []framework.ClusterEventWithHint{
		{Event: framework.ClusterEvent{Resource: framework.Node, ActionType: framework.Add}},
	}, nil
}

// PreFilter narrows the nodes to the named one.
func (pl *NodeName) PreFilter(_ context.Context, _ *framework.CycleState, pod *v1.Pod, _ []*framework.NodeInfo) (*framework.PreFilterResult, *framework.Status) {
	if pod.Spec.NodeName != "" {
		return &framework.PreFilterResult{NodeNames: sets.New(pod.Spec.NodeName)}, nil
	}
	return nil, nil
}

// PreFilterExtensions: none, the answer does not depend on other pods.
func (pl *NodeName) PreFilterExtensions() framework.PreFilterExtensions { return nil }

// Filter rejects every node but the named one.
func (pl *NodeName) Filter(_ context.Context, _ *framework.CycleState, pod *v1.Pod, nodeInfo *framework.NodeInfo) *framework.Status {
	if !Fits(pod, nodeInfo) {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReason)
	}
	return nil
}

// Fits: the pod names no node or this one.
func Fits(pod *v1.Pod, nodeInfo *framework.NodeInfo) bool {
	return pod.Spec.NodeName == "" || (nodeInfo.Node() != nil && pod.Spec.NodeName == nodeInfo.Node().Name)
}
