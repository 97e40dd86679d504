// Package volumebinding is upstream's VolumeBinding plugin. PreFilter
// rejects pods whose PersistentVolumeClaims are missing, lost, being
// deleted, or unbound with Immediate binding; Filter checks each bound
// claim's PersistentVolume exists and its nodeAffinity admits the node,
// and finds for the unbound WaitForFirstConsumer claims an available PV
// that matches them there (size, access modes, node affinity; upstream's
// FindMatchingVolume) or a class that can provision for the node (a
// provisioner, allowedTopologies).
//
// Score (StorageCapacityScoring, beta and on in v1.37) ranks nodes by how
// full the chosen static PVs would be, on the args' shape. Reserve assumes
// the node's choice in the plugin's assume caches, so that the next
// scheduling cycles see the PVs taken and the claims' selected node:
// the chosen PVs get their claimRef, the claims to provision
// volume.kubernetes.io/selected-node. PreBind writes them and waits (up to
// bindTimeoutSeconds, 600 s by default) until the PV controller and the
// provisioners have bound every claim; the cycle fails (Unreserve,
// requeue) on timeout, when a PV's claimRef is dropped, when a
// provisioner removes the selected-node annotation (it cannot provision
// there: the pod is scheduled again) or when the pod goes.
//
// Not done: CSIStorageCapacity checks (and so no score for dynamic
// provisioning) and in-tree-to-CSI translation of PVs.
package volumebinding

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
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

// DefaultBindTimeout is upstream's bindTimeoutSeconds default.
const DefaultBindTimeout = 600 * time.Second

// VolumeBinding is the plugin.
type VolumeBinding struct {
	client     kubernetes.Interface
	pvcCache   *assumeCache[*v1.PersistentVolumeClaim]
	pvCache    *assumeCache[*v1.PersistentVolume]
	scLister   storagelisters.StorageClassLister
	nodeLister corelisters.NodeLister
	podLister  corelisters.PodLister
	// bindTimeout bounds PreBind's wait for the claims to be bound.
	bindTimeout time.Duration
	// pollInterval: PreBind also looks again at this interval, besides
	// at every claim or PV event.
	pollInterval time.Duration
	scorer       func(classResources map[string]*storageResource) int64
}

var (
	_ framework.PreFilterPlugin   = &VolumeBinding{}
	_ framework.FilterPlugin      = &VolumeBinding{}
	_ framework.PreScorePlugin    = &VolumeBinding{}
	_ framework.ScorePlugin       = &VolumeBinding{}
	_ framework.ReservePlugin     = &VolumeBinding{}
	_ framework.PreBindPlugin     = &VolumeBinding{}
	_ framework.EnqueueExtensions = &VolumeBinding{}
)

// New builds the plugin from *VolumeBindingArgs (nil: upstream's
// defaults, 600 s and the shape 0 -> 10, 100 -> 0).
func New(_ context.Context, args runtime.Object, h framework.Handle) (framework.Plugin, error) {
	timeout := DefaultBindTimeout
	shape := defaultShape
	switch a := args.(type) {
	case nil:
	case *configv1.VolumeBindingArgs:
		if a.BindTimeoutSeconds != nil {
			if *a.BindTimeoutSeconds < 0 {
				return nil, fmt.Errorf("bindTimeoutSeconds: Invalid value: %d: invalid BindTimeoutSeconds, should not be a negative value", *a.BindTimeoutSeconds)
			}
			timeout = time.Duration(*a.BindTimeoutSeconds) * time.Second
		}
		if len(a.Shape) > 0 {
			shape = a.Shape
		}
	default:
		return nil, fmt.Errorf("want args to be of type VolumeBindingArgs, got %T", args)
	}
	f := h.SharedInformerFactory()
	if f == nil {
		return nil, fmt.Errorf("SharedInformerFactory is nil")
	}
	pvcCache, err := newAssumeCache[*v1.PersistentVolumeClaim](f.Core().V1().PersistentVolumeClaims().Informer(), schema.GroupResource{Resource: "persistentvolumeclaims"})
	if err != nil {
		return nil, fmt.Errorf("failed to build volume binder: %w", err)
	}
	pvCache, err := newPVCache(f.Core().V1().PersistentVolumes().Informer())
	if err != nil {
		return nil, fmt.Errorf("failed to build volume binder: %w", err)
	}
	return &VolumeBinding{
		client:       h.ClientSet(),
		pvcCache:     pvcCache,
		pvCache:      pvCache,
		scLister:     f.Storage().V1().StorageClasses().Lister(),
		nodeLister:   f.Core().V1().Nodes().Lister(),
		podLister:    f.Core().V1().Pods().Lister(),
		bindTimeout:  timeout,
		pollInterval: time.Second,
		scorer:       buildScorer(shape),
	}, nil
}

// Name is the plugin's name.
func (pl *VolumeBinding) Name() string { return Name }

// stateData: the pod's claims by kind (PreFilter's, read-only after), and
// what Filter found for each node and Reserve assumed.
type stateData struct {
	boundClaims []*v1.PersistentVolumeClaim
	// unboundDelayBinding: WaitForFirstConsumer claims not bound yet, by
	// increasing size (the smallest PV that fits is found first).
	unboundDelayBinding []*v1.PersistentVolumeClaim
	// pvsByClass: the PVs of those claims' classes.
	pvsByClass map[string][]*v1.PersistentVolume

	// mu guards the fields below (Filter runs in parallel).
	mu sync.Mutex
	// podVolumesByNode: Filter's choice on each node that passed.
	podVolumesByNode map[string]*podVolumes
	// hasStaticBindings: some node's choice binds a static PV (Score).
	hasStaticBindings bool
	// allBound: Reserve found nothing to bind.
	allBound bool
}

// Clone: the same data; what Filter adds is guarded.
func (d *stateData) Clone() framework.StateData { return d }

// binding: an available PV chosen for a claim.
type binding struct {
	pvc *v1.PersistentVolumeClaim
	pv  *v1.PersistentVolume
}

// podVolumes: what the pod's unbound claims need on one node.
type podVolumes struct {
	// staticBindings: claims to bind to existing PVs (after Reserve, the
	// PVs with their claimRef; after PreBind's write, as the API server
	// returned them).
	staticBindings []*binding
	// dynamicProvisions: claims to provision (after Reserve, with the
	// selected-node annotation).
	dynamicProvisions []*v1.PersistentVolumeClaim
}

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

// podClaims gets the pod's claims (as assumed), with upstream's errors
// for the ones that cannot be used.
func (pl *VolumeBinding) podClaims(pod *v1.Pod) ([]*v1.PersistentVolumeClaim, error) {
	var out []*v1.PersistentVolumeClaim
	for i := range pod.Spec.Volumes {
		name, isEphemeral := claimName(pod, &pod.Spec.Volumes[i])
		if name == "" && !isEphemeral {
			continue
		}
		pvc, err := pl.pvcCache.Get(pod.Namespace + "/" + name)
		if err != nil {
			if apierrors.IsNotFound(err) {
				err = fmt.Errorf("persistentvolumeclaim %q not found", name)
				if isEphemeral {
					err = fmt.Errorf("waiting for ephemeral volume controller to create the persistentvolumeclaim %q", name)
				}
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
	s := &stateData{podVolumesByNode: map[string]*podVolumes{}}
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
	if len(s.unboundDelayBinding) > 0 {
		sort.SliceStable(s.unboundDelayBinding, func(i, j int) bool {
			a, b := requestedStorage(s.unboundDelayBinding[i]), requestedStorage(s.unboundDelayBinding[j])
			return a.Cmp(b) < 0
		})
		s.pvsByClass = map[string][]*v1.PersistentVolume{}
		for _, pvc := range s.unboundDelayBinding {
			class := storagehelpers.GetPersistentVolumeClaimClass(pvc)
			if _, ok := s.pvsByClass[class]; ok {
				continue
			}
			// With the assumed claimRefs: a PV another pod's cycle took
			// is not available.
			pvs, err := pl.pvCache.ByIndex(storageClassIndex, class)
			if err != nil {
				return nil, framework.AsStatus(err)
			}
			s.pvsByClass[class] = pvs
		}
	}
	cs.Write(stateKey, s)
	return nil, nil
}

func requestedStorage(pvc *v1.PersistentVolumeClaim) resource.Quantity {
	return pvc.Spec.Resources.Requests[v1.ResourceStorage]
}

// PreFilterExtensions: none.
func (pl *VolumeBinding) PreFilterExtensions() framework.PreFilterExtensions { return nil }

// Filter checks the bound claims' PVs against the node, and that the
// unbound WaitForFirstConsumer claims could be bound there; the reasons in
// upstream's order. What would bind them is kept for Reserve.
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
	boundSatisfied, boundPVsFound, err := pl.checkBoundClaims(logger, s.boundClaims, pod, node)
	if err != nil {
		return framework.AsStatus(err)
	}
	unboundSatisfied := true
	volumes := &podVolumes{}
	if len(s.unboundDelayBinding) > 0 {
		if unboundSatisfied, err = pl.checkUnboundClaims(logger, s, pod, node, volumes); err != nil {
			return framework.AsStatus(err)
		}
	}
	var reasons []string
	if !boundSatisfied {
		reasons = append(reasons, ErrReasonNodeConflict)
	}
	if !unboundSatisfied {
		reasons = append(reasons, ErrReasonBindConflict)
	}
	if !boundPVsFound {
		reasons = append(reasons, ErrReasonPVNotExist)
	}
	if len(reasons) > 0 {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, reasons...)
	}
	if s.podVolumesByNode == nil {
		// PreFilter found no claims.
		return nil
	}
	s.mu.Lock()
	s.podVolumesByNode[node.Name] = volumes
	s.hasStaticBindings = s.hasStaticBindings || len(volumes.staticBindings) > 0
	s.mu.Unlock()
	return nil
}

// checkBoundClaims: (every bound PV admits the node, every bound PV
// exists); it stops at the first that fails, as upstream.
func (pl *VolumeBinding) checkBoundClaims(logger klog.Logger, claims []*v1.PersistentVolumeClaim, pod *v1.Pod, node *v1.Node) (bool, bool, error) {
	for _, pvc := range claims {
		pv, err := pl.pvCache.Get(pvc.Spec.VolumeName)
		if err != nil {
			if apierrors.IsNotFound(err) {
				return true, false, nil
			}
			return false, true, err
		}
		if err := storagehelpers.CheckNodeAffinity(pv, node.Labels); err != nil {
			logger.V(5).Info("PersistentVolume and node mismatch for pod", "PV", klog.KRef("", pv.Name), "node", klog.KObj(node), "pod", klog.KObj(pod), "err", err)
			return false, true, nil
		}
	}
	return true, true, nil
}

// checkUnboundClaims: each claim already given to this node by the
// selected-node annotation, or matching an available PV here (no PV for
// two claims), or provisionable here; the choice goes into volumes.
func (pl *VolumeBinding) checkUnboundClaims(logger klog.Logger, s *stateData, pod *v1.Pod, node *v1.Node, volumes *podVolumes) (bool, error) {
	var toMatch, toProvision []*v1.PersistentVolumeClaim
	for _, pvc := range s.unboundDelayBinding {
		if selected, ok := pvc.Annotations[storagehelpers.AnnSelectedNode]; ok {
			if selected != node.Name {
				return false, nil
			}
			toProvision = append(toProvision, pvc)
			continue
		}
		toMatch = append(toMatch, pvc)
	}
	chosen := map[string]*v1.PersistentVolume{}
	for _, pvc := range toMatch {
		pv, err := storagehelpers.FindMatchingVolume(pvc, s.pvsByClass[storagehelpers.GetPersistentVolumeClaimClass(pvc)], node, chosen, true, true)
		if err != nil {
			return false, err
		}
		if pv == nil {
			logger.V(5).Info("No matching volumes for pod", "pod", klog.KObj(pod), "PVC", klog.KObj(pvc), "node", klog.KObj(node))
			toProvision = append(toProvision, pvc)
			continue
		}
		chosen[pv.Name] = pv
		volumes.staticBindings = append(volumes.staticBindings, &binding{pvc: pvc, pv: pv})
	}
	for _, pvc := range toProvision {
		if ok, err := pl.canProvision(logger, pvc, node); !ok || err != nil {
			return false, err
		}
		volumes.dynamicProvisions = append(volumes.dynamicProvisions, pvc)
	}
	return true, nil
}

// canProvision: the claim's class has a provisioner whose
// allowedTopologies admit the node.
func (pl *VolumeBinding) canProvision(logger klog.Logger, pvc *v1.PersistentVolumeClaim, node *v1.Node) (bool, error) {
	name := storagehelpers.GetPersistentVolumeClaimClass(pvc)
	if name == "" {
		return false, fmt.Errorf("no class for claim %q", pvc.Namespace+"/"+pvc.Name)
	}
	class, err := pl.scLister.Get(name)
	if err != nil {
		return false, fmt.Errorf("failed to find storage class %q", name)
	}
	if class.Provisioner == "" || class.Provisioner == storagehelpers.NotSupportedProvisioner {
		logger.V(5).Info("Storage class of claim does not support dynamic provisioning", "storageClassName", name, "PVC", klog.KObj(pvc))
		return false, nil
	}
	if !matchTopologySelectorTerms(class.AllowedTopologies, node.Labels) {
		logger.V(5).Info("Node cannot satisfy provisioning topology requirements of claim", "node", klog.KObj(node), "PVC", klog.KObj(pvc))
		return false, nil
	}
	return true, nil
}

// matchTopologySelectorTerms: no terms, or one whose every expression
// the node's labels satisfy (terms ORed, expressions ANDed).
func matchTopologySelectorTerms(terms []v1.TopologySelectorTerm, nodeLabels map[string]string) bool {
	if len(terms) == 0 {
		return true
	}
	for _, t := range terms {
		ok := len(t.MatchLabelExpressions) > 0
		for _, e := range t.MatchLabelExpressions {
			v, has := nodeLabels[e.Key]
			if !has || !slices.Contains(e.Values, v) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
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
