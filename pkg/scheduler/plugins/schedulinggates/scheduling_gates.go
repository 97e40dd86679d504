// Package schedulinggates is the SchedulingGates plugin: a pod with
// spec.schedulingGates stays out of activeQ until the last gate is removed.
package schedulinggates

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/names"
)

// Name is the plugin's name in configuration.
const Name = names.SchedulingGates

// SchedulingGates holds gated pods at PreEnqueue.
type SchedulingGates struct{}

var (
	_ framework.PreEnqueuePlugin  = &SchedulingGates{}
	_ framework.EnqueueExtensions = &SchedulingGates{}
)

// New builds the plugin; it takes no args.
func New(_ context.Context, _ runtime.Object, _ framework.Handle) (framework.Plugin, error) {
	return &SchedulingGates{}, nil
}

// Name is the plugin's name.
func (pl *SchedulingGates) Name() string { return Name }

// PreEnqueue rejects a pod while it has scheduling gates, naming them as
// upstream does ("waiting for scheduling gates: [a b]").
func (pl *SchedulingGates) PreEnqueue(_ context.Context, p *v1.Pod) *framework.Status {
	if len(p.Spec.SchedulingGates) == 0 {
		return nil
	}
	gates := make([]string, 0, len(p.Spec.SchedulingGates))
	for _, g := range p.Spec.SchedulingGates {
		gates = append(gates, g.Name)
	}
	return framework.NewStatus(framework.UnschedulableAndUnresolvable, fmt.Sprintf("waiting for scheduling gates: %v", gates))
}

// EventsToRegister: only the pod's own update removing its gates can let
// it in (gates can only be removed, never added, after creation).
func (pl *SchedulingGates) EventsToRegister(_ context.Context) ([]framework.ClusterEventWithHint, error) {
	return []framework.ClusterEventWithHint{
		{Event: framework.ClusterEvent{Resource: framework.Pod, ActionType: framework.UpdatePodSchedulingGatesEliminated}, QueueingHintFn: pl.isSchedulableAfterGatesEliminated},
	}, nil
}

// isSchedulableAfterGatesEliminated: the event is only raised for the pod
// itself once all its gates are gone; another pod's event cannot help.
func (pl *SchedulingGates) isSchedulableAfterGatesEliminated(_ klog.Logger, pod *v1.Pod, _, newObj any) (framework.QueueingHint, error) {
	_, modified, err := framework.As[*v1.Pod](nil, newObj)
	if err != nil {
		return framework.Queue, err
	}
	if modified != nil && modified.UID != pod.UID {
		return framework.QueueSkip, nil
	}
	return framework.Queue, nil
}
