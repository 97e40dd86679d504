package node

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
)

// Kind is the type of an object a node may be related to.
type Kind byte

// The kinds the Graph relates to nodes.
const (
	Pod Kind = iota
	Secret
	ConfigMap
	PersistentVolumeClaim
	PersistentVolume
	ServiceAccount
	ResourceClaim
	VolumeAttachment
	ResourceSlice
)

// object names one API object of a kind (namespace empty when cluster-scoped).
type object struct {
	kind            Kind
	namespace, name string
}

// boundPod is what the Graph keeps of a pod bound to a node.
type boundPod struct {
	node string
	// uses are the objects the pod makes its node related to.
	uses []object
}

// boundPV is what the Graph keeps of a PersistentVolume with a claim.
type boundPV struct {
	claim   object
	secrets []object
}

// Graph relates API objects to the nodes that may read them, as
// upstream's node authorizer graph (all relations point to a node):
//
//	node <- pod <- secret, configmap, pvc, serviceaccount, resourceclaim
//	node <- pod <- pvc <- pv <- secret
//	node <- volumeattachment, resourceslice
//
// A mirror pod relates only itself to its node: a node cannot gain
// access to other objects by creating pods. It is safe for concurrent use.
type Graph struct {
	mu   sync.RWMutex
	pods map[object]*boundPod
	// used counts, per object a pod uses, the pods of each node that use it.
	used map[object]map[string]int
	pvs  map[string]*boundPV
	// pvsUsing are the PVs that use a secret.
	pvsUsing map[object]map[string]bool
	// nodeOf is the node of a VolumeAttachment or a ResourceSlice.
	nodeOf map[object]string
}

// NewGraph returns an empty Graph.
func NewGraph() *Graph {
	return &Graph{
		pods:     map[object]*boundPod{},
		used:     map[object]map[string]int{},
		pvs:      map[string]*boundPV{},
		pvsUsing: map[object]map[string]bool{},
		nodeOf:   map[object]string{},
	}
}

// podUses are the objects a bound pod relates to its node.
func podUses(pod *corev1.Pod) []object {
	if _, mirror := pod.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return nil
	}
	var uses []object
	add := func(kind Kind, names ...string) {
		for _, n := range names {
			uses = append(uses, object{kind, pod.Namespace, n})
		}
	}
	if pod.Spec.ServiceAccountName != "" {
		add(ServiceAccount, pod.Spec.ServiceAccountName)
	}
	add(Secret, PodSecretNames(pod)...)
	add(ConfigMap, PodConfigMapNames(pod)...)
	add(PersistentVolumeClaim, podClaimNames(pod)...)
	add(ResourceClaim, podResourceClaimNames(pod)...)
	return uses
}

// SetPod records pod; a pod not bound to a node is not related to any.
// Recording it again replaces what was known of it.
func (g *Graph) SetPod(pod *corev1.Pod) {
	key := object{Pod, pod.Namespace, pod.Name}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.deletePodLocked(key)
	if pod.Spec.NodeName == "" {
		return
	}
	p := &boundPod{node: pod.Spec.NodeName, uses: podUses(pod)}
	g.pods[key] = p
	for _, o := range p.uses {
		counts := g.used[o]
		if counts == nil {
			counts = map[string]int{}
			g.used[o] = counts
		}
		counts[p.node]++
	}
}

// DeletePod forgets the pod namespace/name.
func (g *Graph) DeletePod(namespace, name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.deletePodLocked(object{Pod, namespace, name})
}

func (g *Graph) deletePodLocked(key object) {
	p, ok := g.pods[key]
	if !ok {
		return
	}
	delete(g.pods, key)
	for _, o := range p.uses {
		counts := g.used[o]
		if counts[p.node]--; counts[p.node] <= 0 {
			delete(counts, p.node)
		}
		if len(counts) == 0 {
			delete(g.used, o)
		}
	}
}

// SetPV records pv: a PV relates its kubelet-visible secrets to the nodes
// of the pods that use its claim (spec.claimRef). A PV without a claim is
// related to no node.
func (g *Graph) SetPV(pv *corev1.PersistentVolume) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.deletePVLocked(pv.Name)
	ref := pv.Spec.ClaimRef
	if ref == nil {
		return
	}
	b := &boundPV{claim: object{PersistentVolumeClaim, ref.Namespace, ref.Name}}
	for _, s := range pvSecrets(pv) {
		secret := object{Secret, s.namespace, s.name}
		b.secrets = append(b.secrets, secret)
		if g.pvsUsing[secret] == nil {
			g.pvsUsing[secret] = map[string]bool{}
		}
		g.pvsUsing[secret][pv.Name] = true
	}
	g.pvs[pv.Name] = b
}

// DeletePV forgets the PV name.
func (g *Graph) DeletePV(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.deletePVLocked(name)
}

func (g *Graph) deletePVLocked(name string) {
	b, ok := g.pvs[name]
	if !ok {
		return
	}
	delete(g.pvs, name)
	for _, s := range b.secrets {
		delete(g.pvsUsing[s], name)
		if len(g.pvsUsing[s]) == 0 {
			delete(g.pvsUsing, s)
		}
	}
}

// SetNodeOf records the node of a VolumeAttachment or ResourceSlice
// name; an empty node forgets it.
func (g *Graph) SetNodeOf(kind Kind, name, node string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if node == "" {
		delete(g.nodeOf, object{kind: kind, name: name})
		return
	}
	g.nodeOf[object{kind: kind, name: name}] = node
}

// Related reports whether node may reach the object of kind in namespace
// (empty when cluster-scoped) with name through the objects it runs.
func (g *Graph) Related(node string, kind Kind, namespace, name string) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	o := object{kind, namespace, name}
	switch kind {
	case Pod:
		p, ok := g.pods[o]
		return ok && p.node == node
	case PersistentVolume:
		return g.pvRelatedLocked(node, name)
	case VolumeAttachment, ResourceSlice:
		n, ok := g.nodeOf[o]
		return ok && n == node
	case Secret:
		if g.used[o][node] > 0 {
			return true
		}
		for pv := range g.pvsUsing[o] {
			if g.pvRelatedLocked(node, pv) {
				return true
			}
		}
		return false
	default:
		return g.used[o][node] > 0
	}
}

func (g *Graph) pvRelatedLocked(node, pv string) bool {
	b, ok := g.pvs[pv]
	return ok && g.used[b.claim][node] > 0
}
