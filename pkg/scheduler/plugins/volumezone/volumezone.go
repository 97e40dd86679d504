// Package volumezone is the VolumeZone plugin, after upstream's: a pod's
// bound PersistentVolumes carrying zone or region labels only go to nodes
// in one of those zones or regions.
package volumezone

import (
	"context"
	"errors"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	storagehelpers "k8s.io/component-helpers/storage/volume"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/names"
)

// Name is the plugin's name in configuration.
const Name = names.VolumeZone

const preFilterStateKey framework.StateKey = "PreFilter" + Name

// ErrReasonConflict is upstream's Filter reason.
const ErrReasonConflict = "node(s) had no available volume zone"

// topologyLabels: the PV labels that constrain nodes (beta and GA).
var topologyLabels = []string{
	v1.LabelFailureDomainBetaZone,
	v1.LabelFailureDomainBetaRegion,
	v1.LabelTopologyZone,
	v1.LabelTopologyRegion,
}

// multiZoneDelimiter separates zones in one PV label value.
const multiZoneDelimiter = "__"

func translateToGALabel(l string) string {
	switch l {
	case v1.LabelFailureDomainBetaRegion:
		return v1.LabelTopologyRegion
	case v1.LabelFailureDomainBetaZone:
		return v1.LabelTopologyZone
	}
	return l
}

// VolumeZone is the plugin.
type VolumeZone struct {
	pvLister  corelisters.PersistentVolumeLister
	pvcLister corelisters.PersistentVolumeClaimLister
	scLister  storagelisters.StorageClassLister
}

var (
	_ framework.PreFilterPlugin   = &VolumeZone{}
	_ framework.FilterPlugin      = &VolumeZone{}
	_ framework.EnqueueExtensions = &VolumeZone{}
)

// New builds the plugin (it has no args).
func New(_ context.Context, _ runtime.Object, h framework.Handle) (framework.Plugin, error) {
	f := h.SharedInformerFactory()
	if f == nil {
		return nil, fmt.Errorf("SharedInformerFactory is nil")
	}
	return &VolumeZone{
		pvLister:  f.Core().V1().PersistentVolumes().Lister(),
		pvcLister: f.Core().V1().PersistentVolumeClaims().Lister(),
		scLister:  f.Storage().V1().StorageClasses().Lister(),
	}, nil
}

// Name is the plugin's name.
func (pl *VolumeZone) Name() string { return Name }

type pvTopology struct {
	pvName string
	key    string
	values sets.Set[string]
}

type stateData struct {
	podPVTopologies []pvTopology
}

// Clone: read-only after PreFilter.
func (d *stateData) Clone() framework.StateData { return d }

// PreFilter collects the topology labels of the pod's bound PVs.
func (pl *VolumeZone) PreFilter(ctx context.Context, cs *framework.CycleState, pod *v1.Pod, _ []*framework.NodeInfo) (*framework.PreFilterResult, *framework.Status) {
	tops, st := pl.getPVbyPod(klog.FromContext(ctx), pod)
	if !st.IsSuccess() {
		return nil, st
	}
	if len(tops) == 0 {
		return nil, framework.NewStatus(framework.Skip)
	}
	cs.Write(preFilterStateKey, &stateData{podPVTopologies: tops})
	return nil, nil
}

func asStatus(err error) *framework.Status {
	if err == nil {
		return nil
	}
	if apierrors.IsNotFound(err) {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, err.Error())
	}
	return framework.AsStatus(err)
}

func (pl *VolumeZone) getPVbyPod(logger klog.Logger, pod *v1.Pod) ([]pvTopology, *framework.Status) {
	var out []pvTopology
	for _, vol := range pod.Spec.Volumes {
		if vol.PersistentVolumeClaim == nil {
			continue
		}
		name := vol.PersistentVolumeClaim.ClaimName
		if name == "" {
			return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable, "PersistentVolumeClaim had no name")
		}
		pvc, err := pl.pvcLister.PersistentVolumeClaims(pod.Namespace).Get(name)
		if st := asStatus(err); !st.IsSuccess() {
			return nil, st
		}
		pvName := pvc.Spec.VolumeName
		if pvName == "" {
			scName := storagehelpers.GetPersistentVolumeClaimClass(pvc)
			if scName == "" {
				return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable, "PersistentVolumeClaim had no pv name and storageClass name")
			}
			class, err := pl.scLister.Get(scName)
			if st := asStatus(err); !st.IsSuccess() {
				return nil, st
			}
			if class.VolumeBindingMode == nil {
				return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable, fmt.Sprintf("VolumeBindingMode not set for StorageClass %q", scName))
			}
			// Bound later, on the node chosen: no constraint yet.
			if *class.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer {
				continue
			}
			return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable, "PersistentVolume had no name")
		}
		pv, err := pl.pvLister.Get(pvName)
		if st := asStatus(err); !st.IsSuccess() {
			return nil, st
		}
		out = append(out, pvTopologies(logger, pv)...)
	}
	return out, nil
}

func pvTopologies(logger klog.Logger, pv *v1.PersistentVolume) []pvTopology {
	var out []pvTopology
	for _, key := range topologyLabels {
		value, ok := pv.Labels[key]
		if !ok {
			continue
		}
		zones, err := labelZonesToSet(value)
		if err != nil {
			logger.V(5).Info("Failed to parse PV's topology label, ignoring the label", "label", key+":"+value, "err", err)
			continue
		}
		out = append(out, pvTopology{pvName: pv.Name, key: key, values: zones})
	}
	return out
}

// labelZonesToSet splits a "__"-separated zone list (cloud-provider's
// LabelZonesToSet).
func labelZonesToSet(value string) (sets.Set[string], error) {
	out := sets.New[string]()
	for _, z := range strings.Split(value, multiZoneDelimiter) {
		z = strings.TrimSpace(z)
		if z == "" {
			return nil, fmt.Errorf("%q separated list (%q) must not contain an empty string", multiZoneDelimiter, value)
		}
		out.Insert(z)
	}
	return out, nil
}

// PreFilterExtensions: none; other pods do not matter.
func (pl *VolumeZone) PreFilterExtensions() framework.PreFilterExtensions { return nil }

// Filter: a node with any zone or region label must carry each PV's
// topology label (beta or GA) with one of its values.
func (pl *VolumeZone) Filter(ctx context.Context, cs *framework.CycleState, pod *v1.Pod, nodeInfo *framework.NodeInfo) *framework.Status {
	if len(pod.Spec.Volumes) == 0 {
		return nil
	}
	logger := klog.FromContext(ctx)
	var tops []pvTopology
	if s, err := getStateData(cs); err == nil {
		tops = s.podPVTopologies
	} else {
		var st *framework.Status
		if tops, st = pl.getPVbyPod(logger, pod); !st.IsSuccess() {
			return st
		}
	}
	node := nodeInfo.Node()
	if node == nil {
		return framework.NewStatus(framework.Error, "node not found")
	}
	constrained := false
	for _, l := range topologyLabels {
		if _, ok := node.Labels[l]; ok {
			constrained = true
			break
		}
	}
	// Nodes without any zone label: upstream lets them take any volume.
	if !constrained {
		return nil
	}
	for _, t := range tops {
		v, ok := node.Labels[t.key]
		if !ok {
			v, ok = node.Labels[translateToGALabel(t.key)]
		}
		if !ok || !t.values.Has(v) {
			logger.V(10).Info("Won't schedule pod onto node due to volume (mismatch on label key)", "pod", klog.KObj(pod), "node", klog.KObj(node), "PV", klog.KRef("", t.pvName), "PVLabelKey", t.key)
			return framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonConflict)
		}
	}
	return nil
}

func getStateData(cs *framework.CycleState) (*stateData, error) {
	s, err := cs.Read(preFilterStateKey)
	if err != nil {
		return nil, err
	}
	d, ok := s.(*stateData)
	if !ok {
		return nil, errors.New("unable to convert state into stateData")
	}
	return d, nil
}

// EventsToRegister: the objects that decide the topologies, and nodes
// appearing or relabelled.
func (pl *VolumeZone) EventsToRegister(_ context.Context) ([]framework.ClusterEventWithHint, error) {
	return []framework.ClusterEventWithHint{
		{Event: framework.ClusterEvent{Resource: framework.StorageClass, ActionType: framework.Add}},
		{Event: framework.ClusterEvent{Resource: framework.Node, ActionType: framework.Add | framework.UpdateNodeLabel}},
		{Event: framework.ClusterEvent{Resource: framework.PersistentVolumeClaim, ActionType: framework.Add | framework.Update}},
		{Event: framework.ClusterEvent{Resource: framework.PersistentVolume, ActionType: framework.Add | framework.Update}},
	}, nil
}
