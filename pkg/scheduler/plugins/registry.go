// Package plugins assembles the scheduler's in-tree plugins.
package plugins

import (
	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/defaultbinder"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/defaultpreemption"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/imagelocality"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/interpodaffinity"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/names"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/nodeaffinity"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/nodename"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/nodeports"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/noderesources"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/nodeunschedulable"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/nodevolumelimits"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/podtopologyspread"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/queuesort"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/schedulinggates"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/tainttoleration"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/volumebinding"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/volumerestrictions"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/volumezone"
)

// NewInTreeRegistry maps upstream's in-tree plugin names to skiff's
// factories. One entry per line, so adding a plugin is a one-line change.
func NewInTreeRegistry() framework.Registry {
	return framework.Registry{
		names.PrioritySort:                    queuesort.New,
		names.SchedulingGates:                 schedulinggates.New,
		names.NodeName:                        nodename.New,
		names.NodeUnschedulable:               nodeunschedulable.New,
		names.TaintToleration:                 tainttoleration.New,
		names.NodeAffinity:                    nodeaffinity.New,
		names.NodePorts:                       nodeports.New,
		names.NodeResourcesFit:                noderesources.New,
		names.NodeResourcesBalancedAllocation: noderesources.NewBalancedAllocation,
		names.ImageLocality:                   imagelocality.New,
		names.DefaultBinder:                   defaultbinder.New,
		names.InterPodAffinity:                interpodaffinity.New,
		names.PodTopologySpread:               podtopologyspread.New,
		names.DefaultPreemption:               defaultpreemption.New,
		names.VolumeRestrictions:              volumerestrictions.New,
		names.VolumeBinding:                   volumebinding.New,
		names.VolumeZone:                      volumezone.New,
		names.NodeVolumeLimits:                nodevolumelimits.New,
	}
}
