package queue

import (
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

// Nominator records the pods preemption nominated to nodes, which Filter
// counts as if they were there.
type Nominator interface {
	framework.PodNominator
	// AddNominatedPod nominates pod to nodeName ("": its
	// status.nominatedNodeName).
	AddNominatedPod(pod *framework.PodInfo, nodeName string)
	DeleteNominatedPodIfExists(pod *v1.Pod)
}

type nominator struct {
	mu     sync.RWMutex
	byNode map[string][]*framework.PodInfo
	node   map[types.UID]string
}

func newNominator() *nominator {
	return &nominator{byNode: map[string][]*framework.PodInfo{}, node: map[types.UID]string{}}
}

func (n *nominator) NominatedPodsForNode(nodeName string) []*framework.PodInfo {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return append([]*framework.PodInfo(nil), n.byNode[nodeName]...)
}

func (n *nominator) AddNominatedPod(pi *framework.PodInfo, nodeName string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.addLocked(pi, nodeName)
}

func (n *nominator) addLocked(pi *framework.PodInfo, nodeName string) {
	n.deleteLocked(pi.Pod)
	if nodeName == "" {
		nodeName = pi.Pod.Status.NominatedNodeName
	}
	if nodeName == "" || pi.Pod.Spec.NodeName != "" {
		return
	}
	n.node[pi.Pod.UID] = nodeName
	n.byNode[nodeName] = append(n.byNode[nodeName], pi)
}

func (n *nominator) DeleteNominatedPodIfExists(pod *v1.Pod) { n.delete(pod) }

func (n *nominator) delete(pod *v1.Pod) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.deleteLocked(pod)
}

func (n *nominator) deleteLocked(pod *v1.Pod) {
	node, ok := n.node[pod.UID]
	if !ok {
		return
	}
	delete(n.node, pod.UID)
	list := n.byNode[node]
	for i, pi := range list {
		if pi.Pod.UID == pod.UID {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(n.byNode, node)
	} else {
		n.byNode[node] = list
	}
}

// addFromStatus nominates a pod that arrives with status.nominatedNodeName.
func (n *nominator) addFromStatus(pod *v1.Pod) {
	if pod.Status.NominatedNodeName == "" {
		return
	}
	n.AddNominatedPod(framework.NewPodInfo(pod), "")
}

// update follows a pod's nomination: kept unless the update cleared it.
func (n *nominator) update(oldPod, newPod *v1.Pod) {
	n.mu.Lock()
	defer n.mu.Unlock()
	node, ok := n.node[oldPod.UID]
	if newPod.Status.NominatedNodeName != "" {
		node, ok = newPod.Status.NominatedNodeName, true
	} else if oldPod.Status.NominatedNodeName != "" {
		ok = false // the nomination was removed
	}
	n.deleteLocked(oldPod)
	if ok {
		n.addLocked(framework.NewPodInfo(newPod), node)
	}
}
