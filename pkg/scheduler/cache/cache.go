// Package cache is the scheduler's view of nodes and the pods on them,
// after upstream's backend/cache: the informers' nodes and assigned pods,
// plus pods the scheduler assumed onto a node before their binding is seen
// (so the next cycle already counts them). UpdateSnapshot copies into a
// Snapshot only the NodeInfos that changed since the last one.
package cache

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

// DefaultAssumedPodTTL: an assumed pod whose binding finished but whose
// Add never came is dropped after this long.
const DefaultAssumedPodTTL = 15 * time.Minute

type podState struct {
	pod *v1.Pod
	// deadline is set once the binding finished; the pod expires then.
	deadline *time.Time
}

type imageState struct {
	size  int64
	nodes sets.Set[string]
}

// nodeItem is a NodeInfo in the cache's list, most recently changed
// first, so UpdateSnapshot stops at the first one it already has.
type nodeItem struct {
	info       *framework.NodeInfo
	prev, next *nodeItem
}

// Cache is safe for concurrent use.
type Cache struct {
	ttl   time.Duration
	clock clock.Clock

	mu      sync.RWMutex
	assumed sets.Set[types.UID]
	pods    map[types.UID]*podState
	nodes   map[string]*nodeItem
	head    *nodeItem
	images  map[string]*imageState
	// imagesChanged: image counts moved since the last snapshot.
	imagesChanged bool
	// nodesChanged: a node came or went since the last snapshot.
	nodesChanged bool
}

// New is an empty cache; ttl <= 0 is DefaultAssumedPodTTL.
func New(ttl time.Duration, clk clock.Clock) *Cache {
	if ttl <= 0 {
		ttl = DefaultAssumedPodTTL
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Cache{ttl: ttl, clock: clk, assumed: sets.New[types.UID](), pods: map[types.UID]*podState{},
		nodes: map[string]*nodeItem{}, images: map[string]*imageState{}}
}

// Run expires assumed pods every second until ctx ends.
func (c *Cache) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.CleanupExpiredAssumedPods(klog.FromContext(ctx))
		}
	}
}

// moveToHead marks an item as most recently changed.
func (c *Cache) moveToHead(it *nodeItem) {
	if c.head == it {
		return
	}
	c.unlink(it)
	it.next = c.head
	if c.head != nil {
		c.head.prev = it
	}
	c.head = it
}

func (c *Cache) unlink(it *nodeItem) {
	if it.prev != nil {
		it.prev.next = it.next
	}
	if it.next != nil {
		it.next.prev = it.prev
	}
	if c.head == it {
		c.head = it.next
	}
	it.prev, it.next = nil, nil
}

// item is the node's item, made (node-less) if missing.
func (c *Cache) item(name string) *nodeItem {
	it, ok := c.nodes[name]
	if !ok {
		it = &nodeItem{info: framework.NewNodeInfo()}
		c.nodes[name] = it
	}
	return it
}

func (c *Cache) addPodLocked(pod *v1.Pod) {
	it := c.item(pod.Spec.NodeName)
	it.info.AddPod(pod)
	c.moveToHead(it)
}

func (c *Cache) removePodLocked(pod *v1.Pod) {
	it, ok := c.nodes[pod.Spec.NodeName]
	if !ok {
		return
	}
	it.info.RemovePod(pod)
	c.moveToHead(it)
	c.dropIfEmpty(pod.Spec.NodeName, it)
}

// dropIfEmpty forgets a node-less item without pods.
func (c *Cache) dropIfEmpty(name string, it *nodeItem) {
	if it.info.Node() == nil && len(it.info.Pods) == 0 {
		c.unlink(it)
		delete(c.nodes, name)
	}
}

// AssumePod counts pod (spec.nodeName set) on its node before its
// binding is seen.
func (c *Cache) AssumePod(logger klog.Logger, pod *v1.Pod) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pods[pod.UID]; ok {
		return fmt.Errorf("pod %s/%s (%s) is in the cache, so can't be assumed", pod.Namespace, pod.Name, pod.UID)
	}
	c.addPodLocked(pod)
	c.pods[pod.UID] = &podState{pod: pod}
	c.assumed.Insert(pod.UID)
	logger.V(5).Info("Assumed pod", "pod", klog.KObj(pod), "node", pod.Spec.NodeName)
	return nil
}

// FinishBinding starts an assumed pod's expiry clock.
func (c *Cache) FinishBinding(logger klog.Logger, pod *v1.Pod) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.pods[pod.UID]
	if ok && c.assumed.Has(pod.UID) {
		d := c.clock.Now().Add(c.ttl)
		ps.deadline = &d
	}
	return nil
}

// ForgetPod drops an assumed pod (its binding failed).
func (c *Cache) ForgetPod(logger klog.Logger, pod *v1.Pod) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.pods[pod.UID]
	if !ok || !c.assumed.Has(pod.UID) {
		return fmt.Errorf("pod %s/%s (%s) is not assumed, so can't be forgotten", pod.Namespace, pod.Name, pod.UID)
	}
	if ps.pod.Spec.NodeName != pod.Spec.NodeName {
		return fmt.Errorf("pod %s/%s was assumed on %s but is assigned to %s", pod.Namespace, pod.Name, ps.pod.Spec.NodeName, pod.Spec.NodeName)
	}
	c.removePodLocked(ps.pod)
	delete(c.pods, pod.UID)
	c.assumed.Delete(pod.UID)
	return nil
}

// IsAssumedPod tells whether the pod is assumed.
func (c *Cache) IsAssumedPod(pod *v1.Pod) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.assumed.Has(pod.UID)
}

// AddPod is an assigned pod's informer Add: it confirms an assumed pod
// (moving it if it was bound elsewhere).
func (c *Cache) AddPod(logger klog.Logger, pod *v1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ps, ok := c.pods[pod.UID]; ok {
		c.removePodLocked(ps.pod)
		if c.assumed.Has(pod.UID) && ps.pod.Spec.NodeName != pod.Spec.NodeName {
			logger.Info("Pod was added to a different node than it was assumed", "pod", klog.KObj(pod), "assumedNode", ps.pod.Spec.NodeName, "currentNode", pod.Spec.NodeName)
		}
	}
	c.addPodLocked(pod)
	c.pods[pod.UID] = &podState{pod: pod}
	c.assumed.Delete(pod.UID)
}

// UpdatePod is an assigned pod's informer Update.
func (c *Cache) UpdatePod(logger klog.Logger, oldPod, newPod *v1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ps, ok := c.pods[oldPod.UID]; ok {
		c.removePodLocked(ps.pod)
	}
	c.addPodLocked(newPod)
	c.pods[newPod.UID] = &podState{pod: newPod}
	c.assumed.Delete(newPod.UID)
}

// RemovePod is an assigned pod's informer Delete (or its end).
func (c *Cache) RemovePod(logger klog.Logger, pod *v1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.pods[pod.UID]
	if !ok {
		return
	}
	c.removePodLocked(ps.pod)
	delete(c.pods, pod.UID)
	c.assumed.Delete(pod.UID)
}

// CleanupExpiredAssumedPods drops assumed pods whose binding finished
// longer than the TTL ago without their Add arriving.
func (c *Cache) CleanupExpiredAssumedPods(logger klog.Logger) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	for uid := range c.assumed {
		ps := c.pods[uid]
		if ps.deadline == nil || now.Before(*ps.deadline) {
			continue
		}
		logger.Info("Assumed pod expired: its binding was never seen", "pod", klog.KObj(ps.pod), "node", ps.pod.Spec.NodeName)
		c.removePodLocked(ps.pod)
		delete(c.pods, uid)
		c.assumed.Delete(uid)
	}
}

// AddNode and UpdateNode set a node.
func (c *Cache) AddNode(logger klog.Logger, node *v1.Node) { c.setNode(node) }

// UpdateNode: see AddNode.
func (c *Cache) UpdateNode(logger klog.Logger, _, node *v1.Node) { c.setNode(node) }

func (c *Cache) setNode(node *v1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it := c.item(node.Name)
	if it.info.Node() == nil {
		c.nodesChanged = true
	} else {
		c.removeImages(it.info.Node())
	}
	it.info.SetNode(node)
	c.addImages(node, it.info)
	c.moveToHead(it)
}

// RemoveNode forgets a node; its pods stay until their own deletes.
func (c *Cache) RemoveNode(logger klog.Logger, node *v1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.nodes[node.Name]
	if !ok || it.info.Node() == nil {
		return
	}
	c.removeImages(it.info.Node())
	it.info.RemoveNode()
	c.nodesChanged = true
	c.moveToHead(it)
	c.dropIfEmpty(node.Name, it)
}

func (c *Cache) addImages(node *v1.Node, info *framework.NodeInfo) {
	summaries := map[string]*framework.ImageStateSummary{}
	for _, img := range node.Status.Images {
		for _, name := range img.Names {
			st, ok := c.images[name]
			if !ok {
				st = &imageState{size: img.SizeBytes, nodes: sets.New[string]()}
				c.images[name] = st
			}
			st.nodes.Insert(node.Name)
			summaries[name] = &framework.ImageStateSummary{Size: st.size, NumNodes: st.nodes.Len()}
			c.imagesChanged = true
		}
	}
	info.ImageStates = summaries
}

func (c *Cache) removeImages(node *v1.Node) {
	for _, img := range node.Status.Images {
		for _, name := range img.Names {
			if st, ok := c.images[name]; ok {
				st.nodes.Delete(node.Name)
				if st.nodes.Len() == 0 {
					delete(c.images, name)
				}
				c.imagesChanged = true
			}
		}
	}
}

// NodeCount is the number of nodes known.
func (c *Cache) NodeCount() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for _, it := range c.nodes {
		if it.info.Node() != nil {
			n++
		}
	}
	return n
}

// PodCount is the number of pods known, assumed ones included.
func (c *Cache) PodCount() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.pods)
}
