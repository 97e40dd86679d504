// Package nodevolumelimits is the CSI part of upstream's NodeVolumeLimits
// plugin: a node's CSINode says how many volumes of each CSI driver it can
// attach (allocatable.count); a pod whose new CSI volumes would exceed
// that, counting the volumes its pods and VolumeAttachments already use,
// does not fit. Nodes without a CSINode, or drivers without a count, are
// not limited. In-tree volumes migrated to CSI (csi-translation-lib) are
// not counted.
package nodevolumelimits

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/rand"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-helpers/storage/ephemeral"
	storagehelpers "k8s.io/component-helpers/storage/volume"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/names"
)

// Name is the plugin's name in configuration.
const Name = names.NodeVolumeLimits

// ErrReasonMaxVolumeCountExceeded is upstream's Filter reason.
const ErrReasonMaxVolumeCountExceeded = "node(s) exceed max volume count"

const vaIndexKey = "va.spec.nodename"

// CSILimits is the plugin.
type CSILimits struct {
	csiNodeLister storagelisters.CSINodeLister
	pvLister      corelisters.PersistentVolumeLister
	pvcLister     corelisters.PersistentVolumeClaimLister
	scLister      storagelisters.StorageClassLister
	vaIndexer     cache.Indexer
	// randomVolumeIDPrefix names volumes still to be provisioned, so two
	// pods' unprovisioned claims never look like one volume.
	randomVolumeIDPrefix string
}

var (
	_ framework.PreFilterPlugin   = &CSILimits{}
	_ framework.FilterPlugin      = &CSILimits{}
	_ framework.EnqueueExtensions = &CSILimits{}
)

// New builds the plugin (it has no args).
func New(_ context.Context, _ runtime.Object, h framework.Handle) (framework.Plugin, error) {
	f := h.SharedInformerFactory()
	if f == nil {
		return nil, fmt.Errorf("SharedInformerFactory is nil")
	}
	va := f.Storage().V1().VolumeAttachments().Informer()
	if err := va.AddIndexers(cache.Indexers{vaIndexKey: func(obj any) ([]string, error) {
		if a, ok := obj.(*storagev1.VolumeAttachment); ok {
			return []string{a.Spec.NodeName}, nil
		}
		return nil, nil
	}}); err != nil && va.GetIndexer().GetIndexers()[vaIndexKey] == nil {
		return nil, fmt.Errorf("failed to add index to VA informer: %w", err)
	}
	return &CSILimits{
		csiNodeLister:        f.Storage().V1().CSINodes().Lister(),
		pvLister:             f.Core().V1().PersistentVolumes().Lister(),
		pvcLister:            f.Core().V1().PersistentVolumeClaims().Lister(),
		scLister:             f.Storage().V1().StorageClasses().Lister(),
		vaIndexer:            va.GetIndexer(),
		randomVolumeIDPrefix: rand.String(32),
	}, nil
}

// Name is the plugin's name.
func (pl *CSILimits) Name() string { return Name }

// PreFilter: Skip for pods without claims.
func (pl *CSILimits) PreFilter(_ context.Context, _ *framework.CycleState, pod *v1.Pod, _ []*framework.NodeInfo) (*framework.PreFilterResult, *framework.Status) {
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil || v.Ephemeral != nil {
			return nil, nil
		}
	}
	return nil, framework.NewStatus(framework.Skip)
}

// PreFilterExtensions: none (Filter reads the NodeInfo's pods).
func (pl *CSILimits) PreFilterExtensions() framework.PreFilterExtensions { return nil }

// Filter compares the pod's new CSI volumes per driver with the node's
// CSINode limits.
func (pl *CSILimits) Filter(ctx context.Context, _ *framework.CycleState, pod *v1.Pod, nodeInfo *framework.NodeInfo) *framework.Status {
	if len(pod.Spec.Volumes) == 0 {
		return nil
	}
	node := nodeInfo.Node()
	if node == nil {
		return framework.NewStatus(framework.Error, "node not found")
	}
	logger := klog.FromContext(ctx)
	csiNode, err := pl.csiNodeLister.Get(node.Name)
	if err != nil {
		logger.V(5).Info("Could not get a CSINode object for the node", "node", klog.KObj(node), "err", err)
		return nil
	}
	limits := volumeLimits(csiNode)
	if len(limits) == 0 {
		return nil
	}
	newVolumes := map[string]string{}
	if err := pl.attachableVolumes(logger, pod, true, newVolumes); err != nil {
		if apierrors.IsNotFound(err) {
			return framework.NewStatus(framework.UnschedulableAndUnresolvable, err.Error())
		}
		return framework.AsStatus(err)
	}
	if len(newVolumes) == 0 {
		return nil
	}
	attached := map[string]string{}
	for _, pi := range nodeInfo.Pods {
		if err := pl.attachableVolumes(logger, pi.Pod, false, attached); err != nil {
			return framework.AsStatus(err)
		}
	}
	count := map[string]int{}
	for id, driver := range attached {
		// Already on the node: attaching again costs nothing.
		delete(newVolumes, id)
		count[driver]++
	}
	vas, err := pl.nodeVolumeAttachments(logger, node.Name)
	if err != nil {
		return framework.AsStatus(err)
	}
	for id, driver := range vas {
		if _, ok := attached[id]; !ok {
			count[driver]++
		}
	}
	want := map[string]int{}
	for _, driver := range newVolumes {
		want[driver]++
	}
	for driver, n := range want {
		if limit, ok := limits[driver]; ok && count[driver]+n > int(limit) {
			logger.V(5).Info("Node volume limit exceeded", "node", klog.KObj(node), "driverName", driver, "maxLimits", limit,
				"currentVolumeCount", count[driver], "newVolumeCount", n, "pod", klog.KObj(pod))
			return framework.NewStatus(framework.Unschedulable, ErrReasonMaxVolumeCountExceeded)
		}
	}
	return nil
}

func volumeLimits(csiNode *storagev1.CSINode) map[string]int64 {
	out := map[string]int64{}
	for _, d := range csiNode.Spec.Drivers {
		if d.Allocatable != nil && d.Allocatable.Count != nil {
			out[d.Name] = int64(*d.Allocatable.Count)
		}
	}
	return out
}

// attachableVolumes adds pod's CSI volumes (unique name → driver) to out.
// A missing claim is an error for the incoming pod only.
func (pl *CSILimits) attachableVolumes(logger klog.Logger, pod *v1.Pod, newPod bool, out map[string]string) error {
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		var name string
		isEphemeral := false
		switch {
		case vol.PersistentVolumeClaim != nil:
			name = vol.PersistentVolumeClaim.ClaimName
		case vol.Ephemeral != nil:
			name = ephemeral.VolumeClaimName(pod, vol)
			isEphemeral = true
		default:
			continue
		}
		if name == "" {
			return fmt.Errorf("PersistentVolumeClaim had no name")
		}
		pvc, err := pl.pvcLister.PersistentVolumeClaims(pod.Namespace).Get(name)
		if err != nil {
			if newPod {
				return fmt.Errorf("looking up PVC %s/%s: %w", pod.Namespace, name, err)
			}
			logger.V(5).Info("Unable to look up PVC info", "pod", klog.KObj(pod), "PVC", klog.KRef(pod.Namespace, name))
			continue
		}
		if isEphemeral {
			if err := ephemeral.VolumeIsForPod(pod, pvc); err != nil {
				return err
			}
		}
		driver, handle := pl.csiDriverInfo(logger, pvc)
		if driver == "" || handle == "" {
			continue
		}
		out[driver+"/"+handle] = driver
	}
	return nil
}

// csiDriverInfo: the claim's PV's CSI driver and handle, or for a claim
// not bound yet its class's provisioner and a made-up handle.
func (pl *CSILimits) csiDriverInfo(logger klog.Logger, pvc *v1.PersistentVolumeClaim) (string, string) {
	if pvName := pvc.Spec.VolumeName; pvName != "" {
		pv, err := pl.pvLister.Get(pvName)
		if err == nil {
			if pv.Spec.CSI == nil {
				return "", ""
			}
			return pv.Spec.CSI.Driver, pv.Spec.CSI.VolumeHandle
		}
		logger.V(5).Info("Unable to look up PV info for PVC and PV", "PVC", klog.KObj(pvc), "PV", klog.KRef("", pvName))
	}
	scName := storagehelpers.GetPersistentVolumeClaimClass(pvc)
	if scName == "" {
		return "", ""
	}
	sc, err := pl.scLister.Get(scName)
	if err != nil {
		logger.V(5).Info("Could not get StorageClass for PVC", "PVC", klog.KObj(pvc), "err", err)
		return "", ""
	}
	return sc.Provisioner, fmt.Sprintf("%s-%s/%s", pl.randomVolumeIDPrefix, pvc.Namespace, pvc.Name)
}

// nodeVolumeAttachments: CSI volumes attached to the node by
// VolumeAttachments (unique name → attacher).
func (pl *CSILimits) nodeVolumeAttachments(logger klog.Logger, node string) (map[string]string, error) {
	objs, err := pl.vaIndexer.ByIndex(vaIndexKey, node)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, o := range objs {
		va, ok := o.(*storagev1.VolumeAttachment)
		if !ok || va.Spec.NodeName != node || va.Spec.Attacher == "" || va.Spec.Source.PersistentVolumeName == nil {
			continue
		}
		pv, err := pl.pvLister.Get(*va.Spec.Source.PersistentVolumeName)
		if err != nil || pv.Spec.CSI == nil {
			logger.V(5).Info("VolumeAttachment without a CSI PV", "VolumeAttachment", klog.KObj(va), "err", err)
			continue
		}
		out[va.Spec.Attacher+"/"+pv.Spec.CSI.VolumeHandle] = va.Spec.Attacher
	}
	return out, nil
}

// EventsToRegister: pods freeing volumes, claims appearing, CSINodes
// changing (and VolumeAttachments, which the framework has no resource
// for yet).
func (pl *CSILimits) EventsToRegister(_ context.Context) ([]framework.ClusterEventWithHint, error) {
	return []framework.ClusterEventWithHint{
		{Event: framework.ClusterEvent{Resource: framework.CSINode, ActionType: framework.Add | framework.Update}},
		{Event: framework.ClusterEvent{Resource: framework.AssignedPod, ActionType: framework.Delete}},
		{Event: framework.ClusterEvent{Resource: framework.PersistentVolumeClaim, ActionType: framework.Add}},
	}, nil
}
