// Package volumebinding is the basics of upstream's VolumeBinding plugin:
// PreFilter rejects pods whose PersistentVolumeClaims are missing, lost,
// being deleted, or unbound with Immediate binding; Filter checks each
// bound claim's PersistentVolume exists and its nodeAffinity admits the
// node.
//
// Not done yet (the PV controller is a later issue): claims of a
// WaitForFirstConsumer class that are still unbound are accepted on every
// node — upstream would look for a matching PV or a provisioner able to
// serve the node (allowedTopologies, CSIStorageCapacity), pick it in
// Reserve and bind it in PreBind (selected-node annotation, PV claimRef);
// no Score for static bindings, no in-tree-to-CSI translation of PVs.
package volumebinding

import (
	"context"
	"errors"
	"fmt"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/component-helpers/storage/ephemeral"
	storagehelpers "k8s.io/component-helpers/storage/volume"
	"k8s.io/klog/v2"
	configv1 "k8s.io/kube-scheduler/config/v1"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/names"
)

// Name is the plugin's name in configuration.
const Name = names.VolumeBinding

const stateKey framework.StateKey = Name

// Filter's reasons, upstream's texts.
const (
	ErrReasonBindConflict = "node(s) didn't find available persistent volumes to bind"
	ErrReasonNodeConflict = "node(s) didn't match PersistentVolume's node affinity"
	ErrReasonPVNotExist   = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
	// ErrReasonUnboundImmediate: PreFilter's for claims the PV controller
	// should have bound already.
	ErrReasonUnboundImmediate = "pod has unbound immediate PersistentVolumeClaims"
)

// VolumeBinding is the plugin.
type VolumeBinding struct {
	pvcLister corelisters.PersistentVolumeClaimLister
	pvLister  corelisters.PersistentVolumeLister
	scLister  storagelisters.StorageClassLister
}

var (
	_ framework.PreFilterPlugin   = &VolumeBinding{}
	_ framework.FilterPlugin      = &VolumeBinding{}
	_ framework.EnqueueExtensions = &VolumeBinding{}
)

// New builds the plugin from *VolumeBindingArgs (nil: defaults; its
// bindTimeoutSeconds and shape matter only to the binding not done yet).
func New(_ context.Context, args runtime.Object, h framework.Handle) (framework.Plugin, error) {
	switch a := args.(type) {
	case nil:
	case *configv1.VolumeBindingArgs:
		if a.BindTimeoutSeconds != nil && *a.BindTimeoutSeconds < 0 {
			return nil, fmt.Errorf("bindTimeoutSeconds: Invalid value: %d: invalid BindTimeoutSeconds, should not be a negative value", *a.BindTimeoutSeconds)
		}
	default:
		return nil, fmt.Errorf("want args to be of type VolumeBindingArgs, got %T", args)
	}
	f := h.SharedInformerFactory()
	if f == nil {
		return nil, fmt.Errorf("SharedInformerFactory is nil")
	}
	return &VolumeBinding{
		pvcLister: f.Core().V1().PersistentVolumeClaims().Lister(),
		pvLister:  f.Core().V1().PersistentVolumes().Lister(),
		scLister:  f.Storage().V1().StorageClasses().Lister(),
	}, nil
}

// Name is the plugin's name.
func (pl *VolumeBinding) Name() string { return Name }

// stateData: the pod's claims by kind.
type stateData struct {
	boundClaims []*v1.PersistentVolumeClaim
	// unboundDelayBinding: WaitForFirstConsumer claims not bound yet.
	unboundDelayBinding []*v1.PersistentVolumeClaim
}

// Clone: read-only after PreFilter.
func (d *stateData) Clone() framework.StateData { return d }

// claimName: the claim a volume uses ("" for none); ephemeral volumes
// use the claim the ephemeral volume controller creates.
func claimName(pod *v1.Pod, vol *v1.Volume) (string, bool) {
	switch {
	case vol.PersistentVolumeClaim != nil:
		return vol.PersistentVolumeClaim.ClaimName, false
	case vol.Ephemeral != nil:
		return ephemeral.VolumeClaimName(pod, vol), true
	}
	return "", false
}

// podClaims gets the pod's claims, with upstream's errors for the ones
// that cannot be used.
func (pl *VolumeBinding) podClaims(pod *v1.Pod) ([]*v1.PersistentVolumeClaim, error) {
	var out []*v1.PersistentVolumeClaim
	for i := range pod.Spec.Volumes {
		name, isEphemeral := claimName(pod, &pod.Spec.Volumes[i])
		if name == "" && !isEphemeral {
			continue
		}
		pvc, err := pl.pvcLister.PersistentVolumeClaims(pod.Namespace).Get(name)
		if err != nil {
			if isEphemeral && apierrors.IsNotFound(err) {
				err = fmt.Errorf("waiting for ephemeral volume controller to create the persistentvolumeclaim %q", name)
			}
			return nil, err
		}
		if pvc.Status.Phase == v1.ClaimLost {
			return nil, fmt.Errorf("persistentvolumeclaim %q bound to non-existent persistentvolume %q", pvc.Name, pvc.Spec.VolumeName)
		}
		if pvc.DeletionTimestamp != nil {
			return nil, fmt.Errorf("persistentvolumeclaim %q is being deleted", pvc.Name)
		}
		if isEphemeral {
			if err := ephemeral.VolumeIsForPod(pod, pvc); err != nil {
				return nil, err
			}
		}
		out = append(out, pvc)
	}
	return out, nil
}

// fullyBound: the PV controller finished binding (volumeName and the
// bind-completed annotation).
func fullyBound(pvc *v1.PersistentVolumeClaim) bool {
	return pvc.Spec.VolumeName != "" && metav1.HasAnnotation(pvc.ObjectMeta, storagehelpers.AnnBindCompleted)
}

// PreFilter sorts the pod's claims; Skip for a pod without any.
func (pl *VolumeBinding) PreFilter(_ context.Context, cs *framework.CycleState, pod *v1.Pod, _ []*framework.NodeInfo) (*framework.PreFilterResult, *framework.Status) {
	claims, err := pl.podClaims(pod)
	if err != nil {
		return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable, err.Error())
	}
	if len(claims) == 0 {
		cs.Write(stateKey, &stateData{})
		return nil, framework.NewStatus(framework.Skip)
	}
	s := &stateData{}
	for _, pvc := range claims {
		if fullyBound(pvc) {
			s.boundClaims = append(s.boundClaims, pvc)
			continue
		}
		delay, err := storagehelpers.IsDelayBindingMode(pvc, pl.scLister)
		if err != nil {
			return nil, framework.AsStatus(err)
		}
		// Pre-bound claims (volumeName set) count as immediate.
		if !delay || pvc.Spec.VolumeName != "" {
			return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonUnboundImmediate)
		}
		s.unboundDelayBinding = append(s.unboundDelayBinding, pvc)
	}
	cs.Write(stateKey, s)
	return nil, nil
}

// PreFilterExtensions: none.
func (pl *VolumeBinding) PreFilterExtensions() framework.PreFilterExtensions { return nil }

// Filter checks the bound claims' PVs against the node.
func (pl *VolumeBinding) Filter(ctx context.Context, cs *framework.CycleState, pod *v1.Pod, nodeInfo *framework.NodeInfo) *framework.Status {
	s, err := getStateData(cs)
	if err != nil {
		return framework.AsStatus(err)
	}
	node := nodeInfo.Node()
	if node == nil {
		return framework.NewStatus(framework.Error, "node not found")
	}
	logger := klog.FromContext(ctx)
	for _, pvc := range s.boundClaims {
		pv, err := pl.pvLister.Get(pvc.Spec.VolumeName)
		if err != nil {
			if apierrors.IsNotFound(err) {
				return framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonPVNotExist)
			}
			return framework.AsStatus(err)
		}
		if err := storagehelpers.CheckNodeAffinity(pv, node.Labels); err != nil {
			logger.V(5).Info("PersistentVolume and node mismatch for pod", "PV", klog.KRef("", pv.Name), "node", klog.KObj(node), "pod", klog.KObj(pod), "err", err)
			return framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonNodeConflict)
		}
	}
	return nil
}

func getStateData(cs *framework.CycleState) (*stateData, error) {
	s, err := cs.Read(stateKey)
	if err != nil {
		return nil, err
	}
	d, ok := s.(*stateData)
	if !ok {
		return nil, errors.New("unable to convert state into stateData")
	}
	return d, nil
}

// EventsToRegister: claims, volumes and classes appearing or changing,
// and nodes appearing or relabelled (PV node affinity).
func (pl *VolumeBinding) EventsToRegister(_ context.Context) ([]framework.ClusterEventWithHint, error) {
	return []framework.ClusterEventWithHint{
		{Event: framework.ClusterEvent{Resource: framework.StorageClass, ActionType: framework.Add | framework.Update}},
		{Event: framework.ClusterEvent{Resource: framework.PersistentVolumeClaim, ActionType: framework.Add | framework.Update}, QueueingHintFn: pl.isSchedulableAfterPVCChange},
		{Event: framework.ClusterEvent{Resource: framework.PersistentVolume, ActionType: framework.Add | framework.Update}},
		{Event: framework.ClusterEvent{Resource: framework.Node, ActionType: framework.Add | framework.UpdateNodeLabel}},
		{Event: framework.ClusterEvent{Resource: framework.CSINode, ActionType: framework.Add | framework.Update}},
	}, nil
}

// isSchedulableAfterPVCChange: only the pod's own claims matter.
func (pl *VolumeBinding) isSchedulableAfterPVCChange(_ klog.Logger, pod *v1.Pod, _, newObj any) (framework.QueueingHint, error) {
	pvc, ok := newObj.(*v1.PersistentVolumeClaim)
	if !ok {
		return framework.Queue, fmt.Errorf("unexpected object type %T, want *v1.PersistentVolumeClaim", newObj)
	}
	if pvc.Namespace != pod.Namespace {
		return framework.QueueSkip, nil
	}
	for i := range pod.Spec.Volumes {
		if name, _ := claimName(pod, &pod.Spec.Volumes[i]); name == pvc.Name {
			return framework.Queue, nil
		}
	}
	return framework.QueueSkip, nil
}
