// Package podgc is upstream's pod-garbage-collector-controller: every 20
// s it force-deletes the oldest terminated pods beyond
// --terminated-pod-gc-threshold (evicted ones first), terminating pods on
// not ready nodes tainted node.kubernetes.io/out-of-service, pods bound to
// nodes that no longer exist (after a 40 s quarantine and a check against
// the API; they get the DisruptionTarget condition, reason
// DeletionByPodGC) and unscheduled pods being deleted. A pod not yet
// terminal is first marked Failed, as upstream.
package podgc

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Name is upstream's name of the controller.
const Name = "pod-garbage-collector-controller"

// Upstream's periods.
const (
	DefaultCheckPeriod    = 20 * time.Second
	DefaultQuarantineTime = 40 * time.Second
	// DefaultTerminatedPodThreshold is --terminated-pod-gc-threshold's.
	DefaultTerminatedPodThreshold = 12500
)

// Upstream's reasons (the metrics' reason label).
const (
	reasonTerminated              = "terminated"
	reasonTerminatingOutOfService = "out-of-service"
	reasonOrphaned                = "orphaned"
	reasonTerminatingUnscheduled  = "unscheduled"
)

var (
	deletingPods = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: "pod_gc_collector", Name: "force_delete_pods_total",
		Help:           "Number of pods that are being forcefully deleted since the Pod GC Controller started.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"namespace", "reason"})
	deletingPodErrors = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem: "pod_gc_collector", Name: "force_delete_pod_errors_total",
		Help:           "Number of errors encountered when forcefully deleting the pods since the Pod GC Controller started.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"namespace", "reason"})
	registerMetrics sync.Once
)

// Controller is the pod garbage collector.
type Controller struct {
	// Client reads pods and nodes through the manager's cache.
	Client client.Client
	// Core reads nodes from the API and writes pods.
	Core kubernetes.Interface
	// TerminatedPodThreshold is how many terminated pods may exist; <= 0:
	// they are never collected.
	TerminatedPodThreshold int
	// CheckPeriod and QuarantineTime: 0 are upstream's.
	CheckPeriod, QuarantineTime time.Duration

	nodeQueue workqueue.TypedDelayingInterface[string]
}

// SetupWithManager runs the collector while the manager runs.
func (c *Controller) SetupWithManager(mgr ctrl.Manager) error {
	registerMetrics.Do(func() { legacyregistry.MustRegister(deletingPods, deletingPodErrors) })
	if c.CheckPeriod <= 0 {
		c.CheckPeriod = DefaultCheckPeriod
	}
	if c.QuarantineTime <= 0 {
		c.QuarantineTime = DefaultQuarantineTime
	}
	return mgr.Add(c)
}

// Start runs the collection every CheckPeriod until ctx ends.
func (c *Controller) Start(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	logger.Info("Starting GC controller")
	c.nodeQueue = workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[string]{Name: "orphaned_pods_nodes"})
	defer func() {
		logger.Info("Shutting down GC controller")
		c.nodeQueue.ShutDown()
	}()
	wait.UntilWithContext(ctx, c.gc, c.CheckPeriod)
	return nil
}

func (c *Controller) gc(ctx context.Context) {
	logger := klog.FromContext(ctx)
	var podList corev1.PodList
	if err := c.Client.List(ctx, &podList, client.UnsafeDisableDeepCopy); err != nil {
		logger.Error(err, "Error while listing all pods")
		return
	}
	var nodeList corev1.NodeList
	if err := c.Client.List(ctx, &nodeList, client.UnsafeDisableDeepCopy); err != nil {
		logger.Error(err, "Error while listing all nodes")
		return
	}
	pods := make([]*corev1.Pod, len(podList.Items))
	for i := range podList.Items {
		pods[i] = &podList.Items[i]
	}
	nodes := map[string]*corev1.Node{}
	for i := range nodeList.Items {
		nodes[nodeList.Items[i].Name] = &nodeList.Items[i]
	}
	if c.TerminatedPodThreshold > 0 {
		c.gcTerminated(ctx, pods)
	}
	c.gcTerminating(ctx, pods, nodes)
	c.gcOrphaned(ctx, pods, nodes)
	c.gcUnscheduledTerminating(ctx, pods)
}

func isPodTerminated(p *corev1.Pod) bool {
	ph := p.Status.Phase
	return ph != corev1.PodPending && ph != corev1.PodRunning && ph != corev1.PodUnknown
}

// gcTerminated deletes the oldest terminated pods beyond the threshold.
func (c *Controller) gcTerminated(ctx context.Context, pods []*corev1.Pod) {
	var terminated []*corev1.Pod
	for _, p := range pods {
		if isPodTerminated(p) {
			terminated = append(terminated, p)
		}
	}
	n := len(terminated) - c.TerminatedPodThreshold
	if n <= 0 {
		return
	}
	klog.FromContext(ctx).Info("Garbage collecting pods", "numPods", n)
	sortByEvictionAndCreation(terminated)
	c.deleteAll(ctx, terminated[:n], reasonTerminated, nil)
}

// gcTerminating deletes the terminating pods of not ready nodes tainted
// out-of-service.
func (c *Controller) gcTerminating(ctx context.Context, pods []*corev1.Pod, nodes map[string]*corev1.Node) {
	logger := klog.FromContext(ctx)
	var terminating []*corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil {
			continue
		}
		node, ok := nodes[p.Spec.NodeName]
		if !ok {
			continue
		}
		if !nodeReady(node) && hasTaint(node, corev1.TaintNodeOutOfService) {
			logger.V(4).Info("Garbage collecting pod that is terminating", "pod", klog.KObj(p), "phase", p.Status.Phase)
			terminating = append(terminating, p)
		}
	}
	if len(terminating) == 0 {
		return
	}
	logger.V(4).Info("Garbage collecting pods that are terminating on node tainted with node.kubernetes.io/out-of-service", "numPods", len(terminating))
	sortByEvictionAndCreation(terminating)
	c.deleteAll(ctx, terminating, reasonTerminatingOutOfService, nil)
}

// gcOrphaned deletes the pods of nodes gone for the quarantine time (and
// confirmed gone by the API).
func (c *Controller) gcOrphaned(ctx context.Context, pods []*corev1.Pod, nodes map[string]*corev1.Node) {
	logger := klog.FromContext(ctx)
	for _, p := range pods {
		if p.Spec.NodeName != "" && nodes[p.Spec.NodeName] == nil {
			c.nodeQueue.AddAfter(p.Spec.NodeName, c.QuarantineTime)
		}
	}
	deleted := sets.New[string]()
	for c.nodeQueue.Len() > 0 {
		name, quit := c.nodeQueue.Get()
		if quit {
			return
		}
		if nodes[name] == nil {
			_, err := c.Core.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				deleted.Insert(name)
			case err != nil:
				logger.Error(err, "Error while getting node", "node", klog.KRef("", name))
			}
		}
		c.nodeQueue.Done(name)
	}
	var orphans []*corev1.Pod
	for _, p := range pods {
		if deleted.Has(p.Spec.NodeName) {
			logger.V(2).Info("Found orphaned Pod assigned to the Node, deleting", "pod", klog.KObj(p), "node", klog.KRef("", p.Spec.NodeName))
			orphans = append(orphans, p)
		}
	}
	c.deleteAll(ctx, orphans, reasonOrphaned, &corev1.PodCondition{
		Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		Reason: "DeletionByPodGC", Message: "PodGC: node no longer exists",
	})
}

// gcUnscheduledTerminating deletes the pods being deleted that no node
// will ever finish.
func (c *Controller) gcUnscheduledTerminating(ctx context.Context, pods []*corev1.Pod) {
	var unscheduled []*corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp != nil && p.Spec.NodeName == "" {
			klog.FromContext(ctx).V(2).Info("Found unscheduled terminating Pod not assigned to any Node, deleting", "pod", klog.KObj(p))
			unscheduled = append(unscheduled, p)
		}
	}
	c.deleteAll(ctx, unscheduled, reasonTerminatingUnscheduled, nil)
}

// deleteAll force-deletes the pods in parallel, counting them under
// reason.
func (c *Controller) deleteAll(ctx context.Context, pods []*corev1.Pod, reason string, cond *corev1.PodCondition) {
	logger := klog.FromContext(ctx)
	var wg sync.WaitGroup
	for _, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deletingPods.WithLabelValues(p.Namespace, reason).Inc()
			if err := c.markFailedAndDelete(ctx, p, cond); err != nil {
				logger.Error(err, "Failed to delete pod", "pod", klog.KObj(p), "reason", reason)
				deletingPodErrors.WithLabelValues(p.Namespace, reason).Inc()
			} else if reason == reasonOrphaned || reason == reasonTerminatingUnscheduled {
				logger.Info("Forced deletion of pod succeeded", "pod", klog.KObj(p), "reason", reason)
			}
		}()
	}
	wg.Wait()
}

// markFailedAndDelete marks a pod not yet terminal Failed (with cond)
// and deletes it without a grace period.
func (c *Controller) markFailedAndDelete(ctx context.Context, p *corev1.Pod, cond *corev1.PodCondition) error {
	klog.FromContext(ctx).Info("PodGC is force deleting Pod", "pod", klog.KObj(p))
	if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
		status := map[string]any{"phase": corev1.PodFailed, "observedGeneration": p.Generation}
		if cond != nil {
			cc := *cond
			cc.ObservedGeneration = p.Generation
			cc.LastTransitionTime = metav1.Now()
			for _, old := range p.Status.Conditions {
				if old.Type == cc.Type && old.Status == cc.Status {
					cc.LastTransitionTime = old.LastTransitionTime
				}
			}
			status["conditions"] = []corev1.PodCondition{cc}
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"uid": p.UID}, "status": status})
		if err != nil {
			return err
		}
		if _, err := c.Core.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
			return client.IgnoreNotFound(err)
		}
	}
	err := c.Core.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	return client.IgnoreNotFound(err)
}

// sortByEvictionAndCreation: evicted pods first, then the oldest.
func sortByEvictionAndCreation(pods []*corev1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool {
		ei, ej := isEvicted(pods[i]), isEvicted(pods[j])
		if ei != ej {
			return ei
		}
		if pods[i].CreationTimestamp.Equal(&pods[j].CreationTimestamp) {
			return pods[i].Name < pods[j].Name
		}
		return pods[i].CreationTimestamp.Before(&pods[j].CreationTimestamp)
	})
}

func isEvicted(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodFailed && p.Status.Reason == "Evicted"
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func hasTaint(n *corev1.Node, key string) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key {
			return true
		}
	}
	return false
}
