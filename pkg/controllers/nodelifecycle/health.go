package nodelifecycle

import (
	"context"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Upstream's reasons and messages of the conditions the controller sets.
const (
	ReasonNodeStatusUnknown       = "NodeStatusUnknown"
	MessageNodeStatusUnknown      = "Kubelet stopped posting node status."
	ReasonNodeStatusNeverUpdated  = "NodeStatusNeverUpdated"
	MessageNodeStatusNeverUpdated = "Kubelet never posted node status."
)

// unknownConditions are set Unknown for a silent node; NetworkUnavailable
// is the control plane's, not the kubelet's.
var unknownConditions = []corev1.NodeConditionType{corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure}

// health is what the controller last saw of a node, with its own clock's
// times (not the kubelet's, which may be skewed).
type health struct {
	// probe is when the node last showed it is alive: a new heartbeat in
	// its status or a renewal of its Lease.
	probe           time.Time
	readyTransition time.Time
	status          *corev1.NodeStatus
	lease           *coordinationv1.Lease
}

func (h *health) deepCopy() *health {
	if h == nil {
		return nil
	}
	return &health{probe: h.probe, readyTransition: h.readyTransition, status: h.status.DeepCopy(), lease: h.lease.DeepCopy()}
}

func (c *Controller) healthOf(name string) *health {
	c.healthMu.RLock()
	defer c.healthMu.RUnlock()
	return c.healths[name].deepCopy()
}

func (c *Controller) setHealth(name string, h *health) {
	c.healthMu.Lock()
	defer c.healthMu.Unlock()
	c.healths[name] = h
}

func nodeCondition(status *corev1.NodeStatus, t corev1.NodeConditionType) *corev1.NodeCondition {
	if status == nil {
		return nil
	}
	for i := range status.Conditions {
		if status.Conditions[i].Type == t {
			return &status.Conditions[i]
		}
	}
	return nil
}

// updateHealth is upstream's tryUpdateNodeHealth: it notes whether the node
// showed a sign of life since the last look and, if it has shown none for
// its grace period, sets its conditions Unknown. It returns the Ready
// condition as it was (observed) and as it is now (current; nil if the
// node never had one and still has none).
func (c *Controller) updateHealth(ctx context.Context, node *corev1.Node) (observed corev1.NodeCondition, current *corev1.NodeCondition, err error) {
	logger := klog.FromContext(ctx)
	h := c.healthOf(node.Name)
	defer func() { c.setHealth(node.Name, h) }()
	now := c.Clock.Now()

	var grace time.Duration
	current = nodeCondition(&node.Status, corev1.NodeReady)
	if current == nil {
		// Never posted: a Ready condition as of the node's creation, with
		// the startup grace period.
		observed = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown,
			LastHeartbeatTime: node.CreationTimestamp, LastTransitionTime: node.CreationTimestamp}
		grace = c.Config.StartupGracePeriod
		if h != nil {
			h.status = &node.Status
		} else {
			h = &health{status: &node.Status, probe: node.CreationTimestamp.Time, readyTransition: node.CreationTimestamp.Time}
		}
	} else {
		observed = *current
		grace = c.Config.MonitorGracePeriod
	}

	var saved *corev1.NodeCondition
	var savedLease *coordinationv1.Lease
	if h != nil {
		saved = nodeCondition(h.status, corev1.NodeReady)
		savedLease = h.lease
	}
	switch {
	case h == nil:
		logger.Info("Missing timestamp for Node. Assuming now as a timestamp", "node", klog.KObj(node))
		h = &health{status: &node.Status, probe: now, readyTransition: now}
	case saved == nil && current != nil:
		logger.V(1).Info("Creating timestamp entry for newly observed Node", "node", klog.KObj(node))
		h = &health{status: &node.Status, probe: now, readyTransition: now}
	case saved != nil && current == nil:
		logger.Error(nil, "ReadyCondition was removed from Status of Node", "node", klog.KObj(node))
		h = &health{status: &node.Status, probe: now, readyTransition: now}
	case saved != nil && current != nil && !saved.LastHeartbeatTime.Equal(&current.LastHeartbeatTime):
		transition := h.readyTransition
		if !saved.LastTransitionTime.Equal(&current.LastTransitionTime) {
			logger.V(3).Info("ReadyCondition for Node transitioned from savedCondition to currentReadyCondition", "node", klog.KObj(node), "savedCondition", saved, "currentReadyCondition", current)
			transition = now
		}
		logger.V(3).Info("Node ReadyCondition updated. Updating timestamp", "node", klog.KObj(node))
		h = &health{status: &node.Status, probe: now, readyTransition: transition}
	}

	// A renewed Lease is a sign of life; a node that renews it but never
	// posted its status is taken as healthy, as upstream's.
	lease := &coordinationv1.Lease{}
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: corev1.NamespaceNodeLease, Name: node.Name}, lease); err != nil {
		lease = nil
	}
	if lease != nil && (savedLease == nil || savedLease.Spec.RenewTime.Before(lease.Spec.RenewTime)) {
		h.lease = lease
		h.probe = now
	}

	if !now.After(h.probe.Add(grace)) {
		return observed, current, nil
	}
	stamp := metav1.NewTime(now)
	for _, t := range unknownConditions {
		cond := nodeCondition(&node.Status, t)
		if cond == nil {
			logger.V(2).Info("Condition of node was never updated by kubelet", "nodeConditionType", t, "node", klog.KObj(node))
			node.Status.Conditions = append(node.Status.Conditions, corev1.NodeCondition{
				Type: t, Status: corev1.ConditionUnknown,
				Reason: ReasonNodeStatusNeverUpdated, Message: MessageNodeStatusNeverUpdated,
				LastHeartbeatTime: node.CreationTimestamp, LastTransitionTime: stamp,
			})
			continue
		}
		logger.V(2).Info("Node hasn't been updated", "node", klog.KObj(node), "duration", now.Sub(h.probe), "nodeConditionType", t, "currentCondition", cond)
		if cond.Status != corev1.ConditionUnknown {
			cond.Status = corev1.ConditionUnknown
			cond.Reason = ReasonNodeStatusUnknown
			cond.Message = MessageNodeStatusUnknown
			cond.LastTransitionTime = stamp
		}
	}
	current = nodeCondition(&node.Status, corev1.NodeReady)
	if apiequality.Semantic.DeepEqual(current, &observed) {
		return observed, current, nil
	}
	if err := c.Client.Status().Update(ctx, node); err != nil {
		logger.Error(err, "Error updating node", "node", klog.KObj(node))
		return observed, current, err
	}
	h = &health{status: &node.Status, probe: h.probe, readyTransition: now, lease: lease}
	return observed, current, nil
}
