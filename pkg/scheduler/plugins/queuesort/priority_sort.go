// Package queuesort is the PrioritySort plugin: activeQ pops the pod of
// highest priority first, and among equals the one queued earliest.
package queuesort

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/names"
)

// Name is the plugin's name in configuration.
const Name = names.PrioritySort

// PrioritySort orders by spec.priority, then by queue timestamp.
type PrioritySort struct{}

var _ framework.QueueSortPlugin = &PrioritySort{}

// New builds the plugin; it takes no args.
func New(_ context.Context, _ runtime.Object, _ framework.Handle) (framework.Plugin, error) {
	return &PrioritySort{}, nil
}

// Name is the plugin's name.
func (pl *PrioritySort) Name() string { return Name }

// Less: a goes before b.
func (pl *PrioritySort) Less(a, b *framework.QueuedPodInfo) bool {
	p1 := corev1helpers.PodPriority(a.Pod)
	p2 := corev1helpers.PodPriority(b.Pod)
	return p1 > p2 || (p1 == p2 && a.Timestamp.Before(b.Timestamp))
}
