package framework

import (
	v1 "k8s.io/api/core/v1"
)

// NodeInfo is a node and the pods on it (bound or assumed), with the sums
// the plugins need. The cache keeps one per node; a Snapshot holds clones,
// which one scheduling cycle reads without locks.
type NodeInfo struct {
	node *v1.Node
	// Pods: every pod on the node.
	Pods []*PodInfo
	// PodsWithAffinity and PodsWithRequiredAntiAffinity: the subsets the
	// InterPodAffinity plugin walks.
	PodsWithAffinity             []*PodInfo
	PodsWithRequiredAntiAffinity []*PodInfo
	// UsedPorts: the host ports the pods use.
	UsedPorts HostPortInfo
	// Requested: the pods' requests; NonZeroRequested: the same with
	// defaults for containers without requests (scoring).
	Requested        *Resource
	NonZeroRequested *Resource
	// Allocatable: the node's status.allocatable.
	Allocatable *Resource
	// ImageStates: the node's images by name (each of status.images'
	// names), with how many nodes hold them.
	ImageStates map[string]*ImageStateSummary
	// Generation increases on every change; the snapshot copies only the
	// NodeInfos whose generation moved.
	Generation int64
}

// NewNodeInfo is a NodeInfo without a node holding pods.
func NewNodeInfo(pods ...*v1.Pod) *NodeInfo {
	n := &NodeInfo{
		UsedPorts:        HostPortInfo{},
		Requested:        &Resource{},
		NonZeroRequested: &Resource{},
		Allocatable:      &Resource{},
		ImageStates:      map[string]*ImageStateSummary{},
	}
	for _, p := range pods {
		n.AddPod(p)
	}
	return n
}

// Node is the node; nil if only pods are known (a pod's watch event came
// before its node's).
func (n *NodeInfo) Node() *v1.Node {
	if n == nil {
		return nil
	}
	return n.node
}

// SetNode sets the node and its allocatable.
func (n *NodeInfo) SetNode(node *v1.Node) {
	n.node = node
	n.Allocatable = NewResource(node.Status.Allocatable)
	n.Generation = nextGeneration()
}

// RemoveNode forgets the node, keeping its pods (they are deleted by
// their own events).
func (n *NodeInfo) RemoveNode() {
	n.node = nil
	n.Generation = nextGeneration()
}

// AddPod adds a pod.
func (n *NodeInfo) AddPod(pod *v1.Pod) { n.AddPodInfo(NewPodInfo(pod)) }

// AddPodInfo adds a pod whose PodInfo is already computed.
func (n *NodeInfo) AddPodInfo(pi *PodInfo) {
	n.Pods = append(n.Pods, pi)
	if pi.HasAffinity() {
		n.PodsWithAffinity = append(n.PodsWithAffinity, pi)
	}
	if pi.HasRequiredAntiAffinity() {
		n.PodsWithRequiredAntiAffinity = append(n.PodsWithRequiredAntiAffinity, pi)
	}
	n.update(pi, 1)
}

// RemovePod removes a pod by UID; false if it was not there.
func (n *NodeInfo) RemovePod(pod *v1.Pod) bool {
	n.PodsWithAffinity = removeByUID(n.PodsWithAffinity, pod)
	n.PodsWithRequiredAntiAffinity = removeByUID(n.PodsWithRequiredAntiAffinity, pod)
	for i, pi := range n.Pods {
		if podKey(pi.Pod) == podKey(pod) {
			n.Pods[i] = n.Pods[len(n.Pods)-1]
			n.Pods = n.Pods[:len(n.Pods)-1]
			n.update(pi, -1)
			return true
		}
	}
	return false
}

func removeByUID(list []*PodInfo, pod *v1.Pod) []*PodInfo {
	for i, pi := range list {
		if podKey(pi.Pod) == podKey(pod) {
			list[i] = list[len(list)-1]
			return list[:len(list)-1]
		}
	}
	return list
}

// update adds (sign 1) or subtracts (-1) a pod's requests and ports.
func (n *NodeInfo) update(pi *PodInfo, sign int64) {
	if sign > 0 {
		n.Requested.AddResource(pi.Requests)
		n.NonZeroRequested.AddResource(pi.NonZeroRequests)
	} else {
		n.Requested.SubResource(pi.Requests)
		n.NonZeroRequested.SubResource(pi.NonZeroRequests)
	}
	// Sidecars' host ports are held as long as the pod runs.
	for _, p := range GetHostPorts(pi.Pod) {
		if sign > 0 {
			n.UsedPorts.Add(p.HostIP, string(p.Protocol), p.HostPort)
		} else {
			n.UsedPorts.Remove(p.HostIP, string(p.Protocol), p.HostPort)
		}
	}
	n.Generation = nextGeneration()
}

// Clone copies the NodeInfo; pods are shared (never mutated), the sums
// are copied.
func (n *NodeInfo) Clone() *NodeInfo {
	c := &NodeInfo{
		node:                         n.node,
		Pods:                         append([]*PodInfo(nil), n.Pods...),
		PodsWithAffinity:             append([]*PodInfo(nil), n.PodsWithAffinity...),
		PodsWithRequiredAntiAffinity: append([]*PodInfo(nil), n.PodsWithRequiredAntiAffinity...),
		UsedPorts:                    make(HostPortInfo, len(n.UsedPorts)),
		Requested:                    n.Requested.Clone(),
		NonZeroRequested:             n.NonZeroRequested.Clone(),
		Allocatable:                  n.Allocatable.Clone(),
		ImageStates:                  make(map[string]*ImageStateSummary, len(n.ImageStates)),
		Generation:                   n.Generation,
	}
	for ip, ports := range n.UsedPorts {
		m := make(map[ProtocolPort]struct{}, len(ports))
		for p := range ports {
			m[p] = struct{}{}
		}
		c.UsedPorts[ip] = m
	}
	for k, v := range n.ImageStates {
		s := *v
		c.ImageStates[k] = &s
	}
	return c
}
