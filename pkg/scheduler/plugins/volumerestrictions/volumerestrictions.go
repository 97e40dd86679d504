// Package volumerestrictions is the VolumeRestrictions plugin, after
// upstream's: a ReadWriteOncePod PersistentVolumeClaim in use by any pod
// keeps every other pod using it off all nodes, and inline GCE PD, AWS
// EBS, ISCSI and RBD volumes may not be mounted read-write by two pods of
// one node.
package volumerestrictions

import (
	"context"
	"fmt"
	"slices"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/names"
)

// Name is the plugin's name in configuration.
const Name = names.VolumeRestrictions

const preFilterStateKey framework.StateKey = "PreFilter" + Name

// Filter's reasons, upstream's texts.
const (
	ErrReasonDiskConflict             = "node(s) had no available disk"
	ErrReasonReadWriteOncePodConflict = "node(s) unavailable due to PersistentVolumeClaim with ReadWriteOncePod access mode already in-use by another pod"
)

// VolumeRestrictions is the plugin.
type VolumeRestrictions struct {
	handle    framework.Handle
	pvcLister corelisters.PersistentVolumeClaimLister
}

var (
	_ framework.PreFilterPlugin   = &VolumeRestrictions{}
	_ framework.FilterPlugin      = &VolumeRestrictions{}
	_ framework.EnqueueExtensions = &VolumeRestrictions{}
)

// New builds the plugin (it has no args).
func New(_ context.Context, _ runtime.Object, h framework.Handle) (framework.Plugin, error) {
	f := h.SharedInformerFactory()
	if f == nil {
		return nil, fmt.Errorf("SharedInformerFactory is nil")
	}
	return &VolumeRestrictions{handle: h, pvcLister: f.Core().V1().PersistentVolumeClaims().Lister()}, nil
}

// Name is the plugin's name.
func (pl *VolumeRestrictions) Name() string { return Name }

// preFilterState: the pod's ReadWriteOncePod claims and how many of them
// other pods use.
type preFilterState struct {
	readWriteOncePodPVCs   sets.Set[string]
	conflictingPVCRefCount int
}

func (s *preFilterState) Clone() framework.StateData {
	if s == nil {
		return nil
	}
	return &preFilterState{readWriteOncePodPVCs: s.readWriteOncePodPVCs, conflictingPVCRefCount: s.conflictingPVCRefCount}
}

func (s *preFilterState) conflictsOf(pod *v1.Pod) int {
	n := 0
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && s.readWriteOncePodPVCs.Has(v.PersistentVolumeClaim.ClaimName) {
			n++
		}
	}
	return n
}

func needsRestrictionsCheck(v *v1.Volume) bool {
	return v.GCEPersistentDisk != nil || v.AWSElasticBlockStore != nil || v.RBD != nil || v.ISCSI != nil
}

// PreFilter finds the pod's ReadWriteOncePod claims and counts those
// already in use (a missing claim is UnschedulableAndUnresolvable).
func (pl *VolumeRestrictions) PreFilter(_ context.Context, cs *framework.CycleState, pod *v1.Pod, _ []*framework.NodeInfo) (*framework.PreFilterResult, *framework.Status) {
	needsCheck := false
	for i := range pod.Spec.Volumes {
		if needsRestrictionsCheck(&pod.Spec.Volumes[i]) {
			needsCheck = true
			break
		}
	}
	pvcs := sets.New[string]()
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim == nil {
			continue
		}
		pvc, err := pl.pvcLister.PersistentVolumeClaims(pod.Namespace).Get(v.PersistentVolumeClaim.ClaimName)
		if err != nil {
			if apierrors.IsNotFound(err) {
				return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable, err.Error())
			}
			return nil, framework.AsStatus(err)
		}
		if slices.Contains(pvc.Spec.AccessModes, v1.ReadWriteOncePod) {
			pvcs.Insert(pvc.Name)
		}
	}
	s := &preFilterState{readWriteOncePodPVCs: pvcs}
	if pvcs.Len() > 0 {
		used, err := pl.claimsInUse(pod, pvcs)
		if err != nil {
			return nil, framework.AsStatus(err)
		}
		s.conflictingPVCRefCount = used.Len()
	}
	if !needsCheck && s.conflictingPVCRefCount == 0 {
		return nil, framework.NewStatus(framework.Skip)
	}
	cs.Write(preFilterStateKey, s)
	return nil, nil
}

// claimsInUse: which of claims (pod's namespace) pods in the snapshot use.
// Upstream keeps an index in the snapshot; a walk is cheap for the rare
// ReadWriteOncePod pod.
func (pl *VolumeRestrictions) claimsInUse(pod *v1.Pod, claims sets.Set[string]) (sets.Set[string], error) {
	nodes, err := pl.handle.SnapshotSharedLister().NodeInfos().List()
	if err != nil {
		return nil, err
	}
	used := sets.New[string]()
	for _, ni := range nodes {
		for _, pi := range ni.Pods {
			p := pi.Pod
			if p.Namespace != pod.Namespace || p.UID == pod.UID {
				continue
			}
			for _, v := range p.Spec.Volumes {
				if v.PersistentVolumeClaim != nil && claims.Has(v.PersistentVolumeClaim.ClaimName) {
					used.Insert(v.PersistentVolumeClaim.ClaimName)
				}
			}
		}
	}
	return used, nil
}

// PreFilterExtensions: preemption may remove the pod holding the claim.
func (pl *VolumeRestrictions) PreFilterExtensions() framework.PreFilterExtensions { return pl }

// AddPod counts podInfoToAdd's uses of the claims.
func (pl *VolumeRestrictions) AddPod(_ context.Context, cs *framework.CycleState, _ *v1.Pod, podInfoToAdd *framework.PodInfo, _ *framework.NodeInfo) *framework.Status {
	s, err := getPreFilterState(cs)
	if err != nil {
		return framework.AsStatus(err)
	}
	s.conflictingPVCRefCount += s.conflictsOf(podInfoToAdd.Pod)
	return nil
}

// RemovePod uncounts them.
func (pl *VolumeRestrictions) RemovePod(_ context.Context, cs *framework.CycleState, _ *v1.Pod, podInfoToRemove *framework.PodInfo, _ *framework.NodeInfo) *framework.Status {
	s, err := getPreFilterState(cs)
	if err != nil {
		return framework.AsStatus(err)
	}
	s.conflictingPVCRefCount -= s.conflictsOf(podInfoToRemove.Pod)
	return nil
}

func getPreFilterState(cs *framework.CycleState) (*preFilterState, error) {
	c, err := cs.Read(preFilterStateKey)
	if err != nil {
		return nil, fmt.Errorf("cannot read %q from cycleState", preFilterStateKey)
	}
	s, ok := c.(*preFilterState)
	if !ok {
		return nil, fmt.Errorf("%+v convert to volumerestrictions.state error", c)
	}
	return s, nil
}

// Filter: no inline disk conflict on the node, no ReadWriteOncePod claim
// in use.
func (pl *VolumeRestrictions) Filter(_ context.Context, cs *framework.CycleState, pod *v1.Pod, nodeInfo *framework.NodeInfo) *framework.Status {
	if !satisfyVolumeConflicts(pod, nodeInfo.Pods) {
		return framework.NewStatus(framework.Unschedulable, ErrReasonDiskConflict)
	}
	s, err := getPreFilterState(cs)
	if err != nil {
		return framework.AsStatus(err)
	}
	if s.conflictingPVCRefCount > 0 {
		return framework.NewStatus(framework.Unschedulable, ErrReasonReadWriteOncePodConflict)
	}
	return nil
}

func satisfyVolumeConflicts(pod *v1.Pod, pods []*framework.PodInfo) bool {
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if !needsRestrictionsCheck(v) {
			continue
		}
		for _, ev := range pods {
			if isVolumeConflict(v, ev.Pod) {
				return false
			}
		}
	}
	return true
}

// isVolumeConflict: the same disk twice, unless both mount it read-only
// (EBS never shares).
func isVolumeConflict(v *v1.Volume, pod *v1.Pod) bool {
	for _, ev := range pod.Spec.Volumes {
		if d, e := v.GCEPersistentDisk, ev.GCEPersistentDisk; d != nil && e != nil && d.PDName == e.PDName && !(d.ReadOnly && e.ReadOnly) {
			return true
		}
		if d, e := v.AWSElasticBlockStore, ev.AWSElasticBlockStore; d != nil && e != nil && d.VolumeID == e.VolumeID {
			return true
		}
		if d, e := v.ISCSI, ev.ISCSI; d != nil && e != nil && d.IQN == e.IQN && !(d.ReadOnly && e.ReadOnly) {
			return true
		}
		if d, e := v.RBD, ev.RBD; d != nil && e != nil && haveOverlap(d.CephMonitors, e.CephMonitors) &&
			d.RBDPool == e.RBDPool && d.RBDImage == e.RBDImage && !(d.ReadOnly && e.ReadOnly) {
			return true
		}
	}
	return false
}

func haveOverlap(a, b []string) bool {
	s := sets.New(a...)
	for _, v := range b {
		if s.Has(v) {
			return true
		}
	}
	return false
}

// EventsToRegister: a pod using the disk or claim going away, a new node,
// the claim appearing.
func (pl *VolumeRestrictions) EventsToRegister(_ context.Context) ([]framework.ClusterEventWithHint, error) {
	return []framework.ClusterEventWithHint{
		{Event: framework.ClusterEvent{Resource: framework.AssignedPod, ActionType: framework.Delete}, QueueingHintFn: pl.isSchedulableAfterAssignedPodDeleted},
		{Event: framework.ClusterEvent{Resource: framework.Node, ActionType: framework.Add}},
		{Event: framework.ClusterEvent{Resource: framework.PersistentVolumeClaim, ActionType: framework.Add}, QueueingHintFn: pl.isSchedulableAfterPVCAdded},
	}, nil
}

func (pl *VolumeRestrictions) isSchedulableAfterPVCAdded(logger klog.Logger, pod *v1.Pod, _, newObj any) (framework.QueueingHint, error) {
	pvc, ok := newObj.(*v1.PersistentVolumeClaim)
	if !ok {
		return framework.Queue, fmt.Errorf("unexpected object type %T, want *v1.PersistentVolumeClaim", newObj)
	}
	if pvc.Namespace != pod.Namespace {
		return framework.QueueSkip, nil
	}
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == pvc.Name {
			logger.V(5).Info("PVC that is referred from the pod was created, which might make this pod schedulable", "pod", klog.KObj(pod), "PVC", klog.KObj(pvc))
			return framework.Queue, nil
		}
	}
	return framework.QueueSkip, nil
}

func (pl *VolumeRestrictions) isSchedulableAfterAssignedPodDeleted(_ klog.Logger, pod *v1.Pod, oldObj, _ any) (framework.QueueingHint, error) {
	deleted, ok := oldObj.(*v1.Pod)
	if !ok {
		return framework.Queue, fmt.Errorf("unexpected object type %T, want *v1.Pod", oldObj)
	}
	if deleted.Namespace != pod.Namespace {
		return framework.QueueSkip, nil
	}
	if !satisfyVolumeConflicts(pod, []*framework.PodInfo{{Pod: deleted}}) {
		return framework.Queue, nil
	}
	claims := sets.New[string]()
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claims.Insert(v.PersistentVolumeClaim.ClaimName)
		}
	}
	for _, v := range deleted.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && claims.Has(v.PersistentVolumeClaim.ClaimName) {
			return framework.Queue, nil
		}
	}
	return framework.QueueSkip, nil
}
