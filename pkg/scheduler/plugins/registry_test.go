package plugins

import (
	"context"
	"testing"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/internal/testhandle"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/names"
)

// Every registered plugin builds with nil args (its defaults) and a
// minimal Handle, answers to its registered name, and, if it rejects
// pods, says which events can help.
func TestRegistryBuildsEveryPlugin(t *testing.T) {
	r := NewInTreeRegistry()
	for _, want := range []string{names.PrioritySort, names.SchedulingGates, names.NodeName, names.NodeUnschedulable, names.TaintToleration,
		names.NodeAffinity, names.NodePorts, names.NodeResourcesFit, names.NodeResourcesBalancedAllocation, names.ImageLocality, names.DefaultBinder} {
		if _, ok := r[want]; !ok {
			t.Errorf("%s is not registered", want)
		}
	}
	ctx := context.Background()
	for name, factory := range r {
		t.Run(name, func(t *testing.T) {
			p, err := factory(ctx, nil, testhandle.New(nil))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if p.Name() != name {
				t.Errorf("Name() = %q", p.Name())
			}
			_, filters := p.(framework.FilterPlugin)
			_, gates := p.(framework.PreEnqueuePlugin)
			if ee, ok := p.(framework.EnqueueExtensions); ok {
				evs, err := ee.EventsToRegister(ctx)
				if err != nil || len(evs) == 0 {
					t.Errorf("EventsToRegister = %v, %v", evs, err)
				}
			} else if filters || gates {
				t.Errorf("rejects pods but registers no events")
			}
		})
	}
}
