package nodelifecycle

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/workqueue"
	nodetopology "k8s.io/component-helpers/node/topology"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Upstream's constants.
const (
	// taintPassPeriod is how often the zones' queues are tried
	// (NodeEvictionPeriod).
	taintPassPeriod = 100 * time.Millisecond
	// healthRetries and healthRetrySleep: a failed status update is
	// tried again this often on a fresh copy of the node.
	healthRetries    = 5
	healthRetrySleep = 20 * time.Millisecond
	// healthWorkers look at that many nodes at once.
	healthWorkers = 8
)

// labelExcludeDisruption keeps a node out of its zone's state.
const labelExcludeDisruption = "node.kubernetes.io/exclude-disruption"

type zoneState string

const (
	stateInitial           zoneState = "Initial"
	stateNormal            zoneState = "Normal"
	stateFullDisruption    zoneState = "FullDisruption"
	statePartialDisruption zoneState = "PartialDisruption"
)

// Run runs the health pass every MonitorPeriod and the tainting pass until
// ctx ends; the caches must be synced.
func (c *Controller) Run(ctx context.Context) {
	c.init()
	logger := klog.FromContext(ctx)
	logger.Info("Starting node controller")
	defer logger.Info("Shutting down node controller")
	var wg sync.WaitGroup
	wg.Go(func() {
		wait.UntilWithContext(ctx, c.taintPass, taintPassPeriod)
	})
	wg.Go(func() {
		wait.UntilWithContext(ctx, func(ctx context.Context) {
			if err := c.monitor(ctx); err != nil {
				logger.Error(err, "Error monitoring node health")
			}
		}, c.Config.MonitorPeriod)
	})
	wg.Wait()
}

// monitor is one health pass (upstream's monitorNodeHealth): every node's
// health, the NoExecute taints wanted, its pods marked not Ready when it
// turns, and the zones' states.
func (c *Controller) monitor(ctx context.Context) error {
	c.init()
	began := c.Clock.Now()
	defer func() { updateAllNodesHealthDuration.Observe(c.Clock.Since(began).Seconds()) }()
	logger := klog.FromContext(ctx)
	// The cache's own objects, read only: each node is copied before its
	// health is updated.
	var list corev1.NodeList
	if err := c.Client.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	nodes := list.Items
	added, deleted, newZones := c.classify(nodes)
	for _, n := range newZones {
		c.ensureZone(logger, n)
	}
	for _, n := range added {
		logger.V(1).Info("Controller observed a new Node", "node", klog.KObj(n))
		c.recordNodeEvent(n, ReasonRegisteredNode, "Registered Node "+n.Name+" in Controller")
		c.mu.Lock()
		// A copy of the name and UID only: not the whole list.
		c.known[n.Name] = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, UID: n.UID}}
		c.mu.Unlock()
		c.ensureZone(logger, n)
		c.clearStaleTaints(ctx, n)
	}
	for _, n := range deleted {
		logger.V(1).Info("Controller observed a Node deletion", "node", klog.KObj(n))
		c.recordNodeEvent(n, ReasonRemovingNode, "Removing Node "+n.Name+" from Controller")
		c.mu.Lock()
		delete(c.known, n.Name)
		delete(c.retry, n.Name)
		c.mu.Unlock()
		c.healthMu.Lock()
		delete(c.healths, n.Name)
		c.healthMu.Unlock()
	}

	var zonesMu sync.Mutex
	zoneConditions := map[string][]*corev1.NodeCondition{}
	workqueue.ParallelizeUntil(ctx, healthWorkers, len(nodes), func(i int) {
		began := c.Clock.Now()
		defer func() { updateNodeHealthDuration.Observe(c.Clock.Since(began).Seconds()) }()
		node := nodes[i].DeepCopy()
		var observed corev1.NodeCondition
		var current *corev1.NodeCondition
		// Tried a few times, each on a fresh copy; the requests are not
		// bounded by the retries' time (a slow API would see them all
		// cancelled).
		var err error
		for attempt := 1; ; attempt++ {
			if observed, current, err = c.updateHealth(ctx, node); err == nil {
				break
			}
			if attempt == healthRetries || ctx.Err() != nil {
				break
			}
			time.Sleep(healthRetrySleep)
			fresh := &corev1.Node{}
			if err = c.APIReader.Get(ctx, client.ObjectKey{Name: node.Name}, fresh); err != nil {
				logger.Error(nil, "Failed while getting a Node to retry updating node health. Probably Node was deleted", "node", klog.KObj(node))
				break
			}
			node = fresh
		}
		if err != nil {
			logger.Error(err, "Update health of Node from Controller error, Skipping - no pods will be evicted", "node", klog.KObj(node))
			return
		}
		if _, excluded := node.Labels[labelExcludeDisruption]; !excluded {
			zone := nodetopology.GetZoneKey(node)
			zonesMu.Lock()
			zoneConditions[zone] = append(zoneConditions[zone], current)
			zonesMu.Unlock()
		}
		if current == nil {
			c.setRetry(node.Name, false)
			return
		}
		c.taintForHealth(ctx, node, current)
		turned := current.Status != corev1.ConditionTrue && observed.Status == corev1.ConditionTrue
		if turned {
			c.recordStatusChange(node, ReasonNodeNotReady)
		}
		if turned || (c.needsRetry(node.Name) && observed.Status != corev1.ConditionTrue) {
			// Listed only then: copies of every node's pods every pass
			// would cost more than all the rest.
			pods, err := c.podsOn(ctx, node.Name)
			if err != nil {
				logger.Error(err, "Unable to list pods of node", "node", klog.KObj(node))
				c.setRetry(node.Name, true)
				return
			}
			if err := c.markPodsNotReady(ctx, pods, node.Name); err != nil {
				logger.Error(err, "Unable to mark all pods NotReady on node; queuing for retry", "node", klog.KObj(node))
				c.setRetry(node.Name, true)
				return
			}
		}
		c.setRetry(node.Name, false)
	})
	ptrs := make([]*corev1.Node, len(nodes))
	for i := range nodes {
		ptrs[i] = &nodes[i]
	}
	c.handleDisruption(ctx, zoneConditions, ptrs)
	return nil
}

func (c *Controller) setRetry(name string, retry bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if retry {
		c.retry[name] = true
	} else {
		delete(c.retry, name)
	}
}

func (c *Controller) needsRetry(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.retry[name]
}

// classify sorts the nodes into those new to the controller, those gone,
// and known ones of a zone without a state (upstream's classifyNodes).
func (c *Controller) classify(nodes []corev1.Node) (added, deleted, newZones []*corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := make(map[string]bool, len(nodes))
	for i := range nodes {
		n := &nodes[i]
		seen[n.Name] = true
		if _, ok := c.known[n.Name]; !ok {
			added = append(added, n)
		} else if _, ok := c.zoneStates[nodetopology.GetZoneKey(n)]; !ok {
			newZones = append(newZones, n)
		}
	}
	for name, n := range c.known {
		if !seen[name] {
			deleted = append(deleted, n)
		}
	}
	return added, deleted, newZones
}

// ensureZone gives the node's zone a state and a taint queue if it has
// none.
func (c *Controller) ensureZone(logger klog.Logger, node *corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	zone := nodetopology.GetZoneKey(node)
	if _, ok := c.zoneStates[zone]; ok {
		return
	}
	c.zoneStates[zone] = stateInitial
	if _, ok := c.tainters[zone]; !ok {
		c.tainters[zone] = newTaintQueue(c.Config.EvictionRate, c.Clock)
	}
	logger.Info("Initializing eviction metric for zone", "zone", zone)
	evictionsTotal.WithLabelValues(zone).Add(0)
}

func (c *Controller) tainter(node *corev1.Node) *taintQueue {
	c.mu.Lock()
	defer c.mu.Unlock()
	zone := nodetopology.GetZoneKey(node)
	q, ok := c.tainters[zone]
	if !ok {
		q = newTaintQueue(c.Config.EvictionRate, c.Clock)
		c.tainters[zone] = q
	}
	return q
}

// clearStaleTaints removes, from a node the controller sees for the first
// time, the NoExecute taints its Ready condition does not call for.
// Upstream removes both and adds the right one again a moment later;
// keeping it keeps its timeAdded, from which the pods' tolerationSeconds
// count across a restart.
func (c *Controller) clearStaleTaints(ctx context.Context, node *corev1.Node) {
	var remove []corev1.Taint
	ready := nodeCondition(&node.Status, corev1.NodeReady)
	if ready == nil || ready.Status != corev1.ConditionUnknown {
		remove = append(remove, unreachableTaint)
	}
	if ready == nil || ready.Status != corev1.ConditionFalse {
		remove = append(remove, notReadyTaint)
	}
	if !hasTaint(node.Spec.Taints, &unreachableTaint) && !hasTaint(node.Spec.Taints, &notReadyTaint) {
		return
	}
	if err := c.swapTaints(ctx, node, nil, remove); err != nil && !apierrors.IsNotFound(err) {
		klog.FromContext(ctx).Error(err, "Failed to remove taints from node", "node", klog.KObj(node))
	}
}

// taintForHealth is upstream's processTaintBaseEviction: a node not Ready
// is queued for its NoExecute taint (or has it swapped at once if it has
// the other one); a Ready node loses both.
func (c *Controller) taintForHealth(ctx context.Context, node *corev1.Node, ready *corev1.NodeCondition) {
	logger := klog.FromContext(ctx)
	switch ready.Status {
	case corev1.ConditionFalse:
		if hasTaint(node.Spec.Taints, &unreachableTaint) {
			if err := c.swapTaints(ctx, node, []corev1.Taint{notReadyTaint}, []corev1.Taint{unreachableTaint}); err != nil {
				logger.Error(err, "Failed to instantly swap UnreachableTaint to NotReadyTaint. Will try again in the next cycle")
			}
		} else if c.markForTainting(node, &notReadyTaint) {
			logger.V(2).Info("Node is NotReady. Adding it to the Taint queue", "node", klog.KObj(node), "timeStamp", c.Clock.Now())
		}
	case corev1.ConditionUnknown:
		if hasTaint(node.Spec.Taints, &notReadyTaint) {
			if err := c.swapTaints(ctx, node, []corev1.Taint{unreachableTaint}, []corev1.Taint{notReadyTaint}); err != nil {
				logger.Error(err, "Failed to instantly swap NotReadyTaint to UnreachableTaint. Will try again in the next cycle")
			}
		} else if c.markForTainting(node, &unreachableTaint) {
			logger.V(2).Info("Node is unresponsive. Adding it to the Taint queue", "node", klog.KObj(node), "timeStamp", c.Clock.Now())
		}
	case corev1.ConditionTrue:
		removed, err := c.markReachable(ctx, node)
		if err != nil {
			logger.Error(err, "Failed to remove taints from node. Will retry in next iteration", "node", klog.KObj(node))
		}
		if removed {
			logger.V(2).Info("Node is healthy again, removed all taints", "node", klog.KObj(node))
		}
	}
}

// markForTainting queues the node; a node missing the taint it should have
// is queued anew (its membership from an earlier tainting dropped).
func (c *Controller) markForTainting(node *corev1.Node, want *corev1.Taint) bool {
	q := c.tainter(node)
	if !hasTaint(node.Spec.Taints, want) {
		q.remove(node.Name)
	}
	return q.add(node.Name)
}

// markReachable removes both NoExecute taints and the node from its queue.
func (c *Controller) markReachable(ctx context.Context, node *corev1.Node) (bool, error) {
	if hasTaint(node.Spec.Taints, &unreachableTaint) || hasTaint(node.Spec.Taints, &notReadyTaint) {
		if err := c.swapTaints(ctx, node, nil, []corev1.Taint{unreachableTaint, notReadyTaint}); err != nil && !apierrors.IsNotFound(err) {
			return false, err
		}
	}
	return c.tainter(node).remove(node.Name), nil
}

// taintPass gives the queued nodes their NoExecute taint at their zones'
// rates (upstream's doNoExecuteTaintingPass).
func (c *Controller) taintPass(ctx context.Context) {
	c.init()
	logger := klog.FromContext(ctx)
	c.mu.Lock()
	queues := make([]*taintQueue, 0, len(c.tainters))
	for _, q := range c.tainters {
		queues = append(queues, q)
	}
	c.mu.Unlock()
	for _, q := range queues {
		q.try(func(name string) (bool, time.Duration) {
			node := &corev1.Node{}
			if err := c.Client.Get(ctx, client.ObjectKey{Name: name}, node); err != nil {
				if apierrors.IsNotFound(err) {
					logger.Info("Node no longer present in nodeLister", "node", klog.KRef("", name))
					return true, 0
				}
				logger.Info("Failed to get Node from the nodeLister", "node", klog.KRef("", name), "err", err)
				return false, 50 * time.Millisecond
			}
			ready := nodeCondition(&node.Status, corev1.NodeReady)
			if ready == nil {
				logger.Info("Failed to get NodeCondition from the node status", "node", klog.KRef("", name))
				return false, 50 * time.Millisecond
			}
			var add, opposite corev1.Taint
			switch ready.Status {
			case corev1.ConditionFalse:
				add, opposite = notReadyTaint, unreachableTaint
			case corev1.ConditionUnknown:
				add, opposite = unreachableTaint, notReadyTaint
			default:
				logger.V(4).Info("Node was in a taint queue, but it's ready now. Ignoring taint request", "node", klog.KRef("", name))
				return true, 0
			}
			if err := c.swapTaints(ctx, node, []corev1.Taint{add}, []corev1.Taint{opposite}); err != nil {
				logger.Error(err, "Unable to taint unresponsive Node", "node", klog.KRef("", name), "taint", add.Key)
				return false, 0
			}
			evictionsTotal.WithLabelValues(nodetopology.GetZoneKey(node)).Inc()
			return true, 0
		})
	}
}

// handleDisruption sets each zone's state from its nodes' Ready conditions
// and its tainting rate from the state; when every zone is fully disrupted
// the controller takes the fault for its own (the control plane cut off,
// not the nodes down): it removes the NoExecute taints and stops tainting
// until a node is Ready again (upstream's handleDisruption).
func (c *Controller) handleDisruption(ctx context.Context, zoneConditions map[string][]*corev1.NodeCondition, nodes []*corev1.Node) {
	logger := klog.FromContext(ctx)
	newStates := map[string]zoneState{}
	allFully := true
	c.mu.Lock()
	for zone, conds := range zoneConditions {
		unhealthy, state := c.zoneState(conds)
		zoneSize.WithLabelValues(zone).Set(float64(len(conds)))
		zoneHealth.WithLabelValues(zone).Set(float64(100*(len(conds)-unhealthy)) / float64(len(conds)))
		unhealthyNodes.WithLabelValues(zone).Set(float64(unhealthy))
		if state != stateFullDisruption {
			allFully = false
		}
		newStates[zone] = state
		if _, ok := c.zoneStates[zone]; !ok {
			logger.Error(nil, "Setting initial state for unseen zone", "zone", zone)
			c.zoneStates[zone] = stateInitial
			if _, ok := c.tainters[zone]; !ok {
				c.tainters[zone] = newTaintQueue(c.Config.EvictionRate, c.Clock)
			}
		}
	}
	wasFully := true
	for zone, state := range c.zoneStates {
		if _, ok := zoneConditions[zone]; !ok {
			zoneSize.WithLabelValues(zone).Set(0)
			zoneHealth.WithLabelValues(zone).Set(100)
			unhealthyNodes.WithLabelValues(zone).Set(0)
			delete(c.zoneStates, zone)
			continue
		}
		if state != stateFullDisruption {
			wasFully = false
		}
	}
	c.mu.Unlock()

	if allFully && wasFully {
		// Still none: a taint added meanwhile (the tainting pass may have
		// been under way) goes too.
		for _, n := range nodes {
			if hasTaint(n.Spec.Taints, &unreachableTaint) || hasTaint(n.Spec.Taints, &notReadyTaint) {
				if _, err := c.markReachable(ctx, n); err != nil {
					logger.Error(err, "Failed to remove taints from Node", "node", klog.KObj(n))
				}
			}
		}
		return
	}
	if allFully {
		logger.Info("Controller detected that all Nodes are not-Ready. Entering master disruption mode")
		// Tainting stops first, so that none is added after the nodes are
		// read.
		c.mu.Lock()
		for zone := range c.zoneStates {
			if q := c.tainters[zone]; q != nil {
				q.setRate(0)
			}
		}
		c.mu.Unlock()
		for _, n := range nodes {
			// The API's copy: the pass's list may predate a taint.
			fresh := &corev1.Node{}
			if err := c.APIReader.Get(ctx, client.ObjectKey{Name: n.Name}, fresh); err != nil {
				if !apierrors.IsNotFound(err) {
					logger.Error(err, "Failed to remove taints from Node", "node", klog.KObj(n))
				}
				continue
			}
			if _, err := c.markReachable(ctx, fresh); err != nil {
				logger.Error(err, "Failed to remove taints from Node", "node", klog.KObj(n))
			}
		}
		c.mu.Lock()
		for zone := range c.zoneStates {
			c.zoneStates[zone] = stateFullDisruption
		}
		c.mu.Unlock()
		return
	}
	if wasFully {
		logger.Info("Controller detected that some Nodes are Ready. Exiting master disruption mode")
		// Every node gets a fresh grace period: the silence was the
		// control plane's.
		now := c.Clock.Now()
		c.healthMu.Lock()
		for _, n := range nodes {
			if h := c.healths[n.Name]; h != nil {
				h.probe, h.readyTransition = now, now
			}
		}
		c.healthMu.Unlock()
		c.mu.Lock()
		for zone := range c.zoneStates {
			c.setRate(zone, len(zoneConditions[zone]), newStates[zone])
			c.zoneStates[zone] = newStates[zone]
		}
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for zone, state := range c.zoneStates {
		if state == newStates[zone] {
			continue
		}
		logger.Info("Controller detected that zone is now in new state", "zone", zone, "newState", newStates[zone])
		c.setRate(zone, len(zoneConditions[zone]), newStates[zone])
		c.zoneStates[zone] = newStates[zone]
	}
}

// zoneState is upstream's ComputeZoneState: fully disrupted without a Ready
// node, partially with at least UnhealthyZoneThreshold of them not Ready
// (and more than two), else normal. It returns the nodes not Ready too.
func (c *Controller) zoneState(conds []*corev1.NodeCondition) (int, zoneState) {
	ready, notReady := 0, 0
	for _, cond := range conds {
		if cond != nil && cond.Status == corev1.ConditionTrue {
			ready++
		} else {
			notReady++
		}
	}
	switch {
	case ready == 0 && notReady > 0:
		return notReady, stateFullDisruption
	case notReady > 2 && float32(notReady)/float32(notReady+ready) >= c.Config.UnhealthyZoneThreshold:
		return notReady, statePartialDisruption
	default:
		return notReady, stateNormal
	}
}

// setRate is the zone's tainting rate in the state; c.mu is held.
func (c *Controller) setRate(zone string, size int, state zoneState) {
	q := c.tainters[zone]
	if q == nil {
		return
	}
	switch state {
	case stateNormal:
		q.setRate(c.Config.EvictionRate)
	case statePartialDisruption:
		// A large zone goes on slowly; a small one stops.
		if int32(size) > c.Config.LargeClusterSizeThreshold {
			q.setRate(c.Config.SecondaryEvictionRate)
		} else {
			q.setRate(0)
		}
	case stateFullDisruption:
		// A zone that is down (while others are not) is tainted at the
		// normal rate.
		q.setRate(c.Config.EvictionRate)
	}
}
