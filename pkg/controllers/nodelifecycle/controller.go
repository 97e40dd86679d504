// Package nodelifecycle watches over the nodes' health, as upstream's node
// lifecycle controller (kube-controller-manager's node-lifecycle-controller,
// identity node-controller):
//
//   - every --node-monitor-period, a node that renewed neither its Lease
//     nor its status heartbeat for --node-monitor-grace-period
//     (--node-startup-grace-period if it never posted its status) gets its
//     Ready, MemoryPressure, DiskPressure and PIDPressure conditions set
//     Unknown, and its pods' Ready condition False;
//   - a node not Ready gets the NoExecute taint node.kubernetes.io/unreachable
//     (Ready Unknown) or not-ready (Ready False), at a rate per zone
//     (--node-eviction-rate, --secondary-node-eviction-rate for an unhealthy
//     zone of a large cluster, none when every zone is fully disrupted); the
//     taint-eviction controller deletes the pods that do not tolerate it;
//     a Ready node loses them;
//   - the NoSchedule taints follow the conditions (TaintNodesByCondition)
//     and spec.unschedulable, whatever the node's health.
//
// The health pass is a loop, as upstream's (it needs all nodes at once for
// the zones' states); the NoSchedule taints and the pods bound to a node
// not Ready are reconcilers.
package nodelifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/skiff-dev/skiff/pkg/controllers/eventrecorder"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// Upstream's event reasons.
const (
	ReasonNodeNotReady   = "NodeNotReady"
	ReasonRegisteredNode = "RegisteredNode"
	ReasonRemovingNode   = "RemovingNode"
)

// podNodeIndex indexes the cache's pods by spec.nodeName; the name is this
// package's so that other controllers may index the same field.
const podNodeIndex = "nodelifecycle.spec.nodeName"

// Controller is the node lifecycle controller.
type Controller struct {
	// Client reads through the manager's cache (Nodes, Leases, and Pods
	// with the index of SetupWithManager) and writes to the API.
	Client client.Client
	// APIReader reads a Node from the API after a conflict; nil: Client.
	APIReader client.Reader
	Config    Config
	// Recorder gets the events; nil: SetupWithManager sends them through
	// Core (source node-controller), or nowhere without it.
	Recorder record.EventRecorder
	Core     kubernetes.Interface
	// Clock is the time (tests); nil: the real one.
	Clock clock.Clock

	once sync.Once

	healthMu sync.RWMutex
	healths  map[string]*health

	// mu guards the rest: the monitor pass's view of the nodes and zones.
	mu    sync.Mutex
	known map[string]*corev1.Node
	// retry are the nodes whose pods are still to be marked not Ready.
	retry      map[string]bool
	zoneStates map[string]zoneState
	tainters   map[string]*taintQueue
}

func (c *Controller) init() {
	c.once.Do(func() {
		if c.Clock == nil {
			c.Clock = clock.RealClock{}
		}
		if c.Recorder == nil {
			c.Recorder = &record.FakeRecorder{}
		}
		if c.APIReader == nil {
			c.APIReader = c.Client
		}
		c.healths = map[string]*health{}
		c.known = map[string]*corev1.Node{}
		c.retry = map[string]bool{}
		c.zoneStates = map[string]zoneState{}
		c.tainters = map[string]*taintQueue{}
	})
}

// SetupWithManager adds the health and tainting loops and the reconcilers
// of NoSchedule taints (nodes) and readiness (pods bound to a node).
func (c *Controller) SetupWithManager(mgr ctrl.Manager) error {
	if errs := c.Config.Validate(); len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &corev1.Pod{}, podNodeIndex, func(o client.Object) []string {
		if p, ok := o.(*corev1.Pod); ok && p.Spec.NodeName != "" {
			return []string{p.Spec.NodeName}
		}
		return nil
	}); err != nil {
		return err
	}
	if c.Recorder == nil && c.Core != nil {
		var err error
		if c.Recorder, err = eventrecorder.New(mgr, c.Core, "node-controller"); err != nil {
			return err
		}
	}
	if c.APIReader == nil {
		c.APIReader = mgr.GetAPIReader()
	}
	registerAll()
	c.init()

	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return nil
		}
		c.Run(ctx)
		return nil
	})); err != nil {
		return err
	}
	if err := ctrl.NewControllerManagedBy(mgr).Named("node_lifecycle_controller").
		For(&corev1.Node{}, builder.WithPredicates(predicate.Funcs{DeleteFunc: func(event.DeleteEvent) bool { return false }})).
		WithOptions(controller.Options{MaxConcurrentReconciles: 8}).
		Complete(reconcilerFunc(c.reconcileNode)); err != nil {
		return err
	}
	bound := predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok := e.ObjectOld.(*corev1.Pod)
			n, ok2 := e.ObjectNew.(*corev1.Pod)
			return !ok || !ok2 || (n.Spec.NodeName != "" && n.Spec.NodeName != o.Spec.NodeName)
		},
		CreateFunc: func(e event.CreateEvent) bool {
			p, ok := e.Object.(*corev1.Pod)
			return !ok || p.Spec.NodeName != ""
		},
		DeleteFunc: func(event.DeleteEvent) bool { return false },
	}
	return ctrl.NewControllerManagedBy(mgr).Named("node_lifecycle_controller_pods").
		For(&corev1.Pod{}, builder.WithPredicates(bound)).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Complete(reconcilerFunc(c.reconcilePod))
}

type reconcilerFunc func(context.Context, ctrl.Request) (ctrl.Result, error)

func (f reconcilerFunc) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return f(ctx, req)
}

// reconcileNode keeps the node's NoSchedule taints in line with its
// conditions and spec.unschedulable, and its beta os and arch labels with
// the stable ones.
func (c *Controller) reconcileNode(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	c.init()
	node := &corev1.Node{}
	if err := c.Client.Get(ctx, req.NamespacedName, node); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if add, remove := noScheduleDiff(node); len(add) > 0 || len(remove) > 0 {
		if err := c.swapTaints(ctx, node, add, remove); err != nil {
			if apierrors.IsNotFound(err) {
				return ctrl.Result{}, nil
			}
			return ctrl.Result{}, fmt.Errorf("failed to swap taints of node %s: %w", node.Name, err)
		}
	}
	if err := c.reconcileLabels(ctx, node); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("failed update labels for node %s: %w", node.Name, err)
	}
	return ctrl.Result{}, nil
}

// betaLabels are the deprecated labels that mirror the stable ones.
var betaLabels = map[string]string{corev1.LabelOSStable: "beta.kubernetes.io/os", corev1.LabelArchStable: "beta.kubernetes.io/arch"}

func (c *Controller) reconcileLabels(ctx context.Context, node *corev1.Node) error {
	update := map[string]string{}
	for stable, beta := range betaLabels {
		v, ok := node.Labels[stable]
		if !ok {
			continue
		}
		if b, ok := node.Labels[beta]; !ok || b != v {
			update[beta] = v
		}
	}
	if len(update) == 0 {
		return nil
	}
	data, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": update}})
	if err != nil {
		return err
	}
	return c.Client.Patch(ctx, node.DeepCopy(), client.RawPatch(types.MergePatchType, data))
}

// reconcilePod marks a pod bound to a node not Ready as not Ready itself
// (the health pass does it for the pods there when the node turns).
func (c *Controller) reconcilePod(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	c.init()
	pod := &corev1.Pod{}
	if err := c.Client.Get(ctx, req.NamespacedName, pod); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if pod.Spec.NodeName == "" {
		return ctrl.Result{}, nil
	}
	h := c.healthOf(pod.Spec.NodeName)
	if h == nil {
		if err := c.Client.Get(ctx, client.ObjectKey{Name: pod.Spec.NodeName}, &corev1.Node{}); err != nil {
			// No such node: nothing to say about its pods.
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		// The node has not been looked at yet (start-up, or a new node):
		// the next pass will have.
		return ctrl.Result{RequeueAfter: c.Config.MonitorPeriod}, nil
	}
	ready := nodeCondition(h.status, corev1.NodeReady)
	if ready == nil || ready.Status == corev1.ConditionTrue {
		return ctrl.Result{}, nil
	}
	if err := c.markPodsNotReady(ctx, []corev1.Pod{*pod}, pod.Spec.NodeName); err != nil {
		klog.FromContext(ctx).Info("Unable to mark pod NotReady on node", "pod", req.NamespacedName, "node", klog.KRef("", pod.Spec.NodeName), "err", err)
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}

// markPodsNotReady sets the Ready condition of the node's pods False
// (through pods/status, with the pod's UID as precondition) and reports
// each as upstream's MarkPodsNotReady.
func (c *Controller) markPodsNotReady(ctx context.Context, pods []corev1.Pod, nodeName string) error {
	logger := klog.FromContext(ctx)
	logger.V(2).Info("Update ready status of pods on node", "node", klog.KRef("", nodeName))
	var errs []error
	for i := range pods {
		pod := &pods[i]
		if pod.Spec.NodeName != nodeName {
			continue
		}
		var ready *corev1.PodCondition
		for j := range pod.Status.Conditions {
			if pod.Status.Conditions[j].Type == corev1.PodReady {
				ready = &pod.Status.Conditions[j]
				break
			}
		}
		if ready == nil || ready.Status == corev1.ConditionFalse {
			continue
		}
		cond := *ready
		cond.Status = corev1.ConditionFalse
		cond.LastTransitionTime = metav1.NewTime(c.Clock.Now())
		data, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"uid": pod.UID},
			"status":   map[string]any{"conditions": []corev1.PodCondition{cond}},
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		logger.V(2).Info("Updating ready status of pod to false", "pod", klog.KObj(pod))
		if err := c.Client.Status().Patch(ctx, pod.DeepCopy(), client.RawPatch(types.StrategicMergePatchType, data)); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			logger.Info("Failed to update status for pod", "pod", klog.KObj(pod), "err", err)
			errs = append(errs, err)
			continue
		}
		c.Recorder.Event(pod, corev1.EventTypeWarning, ReasonNodeNotReady, "Node is not ready")
	}
	if len(errs) > 0 {
		return fmt.Errorf("marking pods not ready on node %s: %v", nodeName, errs)
	}
	return nil
}

// podsOn are the cache's pods bound to the node.
func (c *Controller) podsOn(ctx context.Context, nodeName string) ([]corev1.Pod, error) {
	var pods corev1.PodList
	if err := c.Client.List(ctx, &pods, client.MatchingFields{podNodeIndex: nodeName}); err != nil {
		return nil, err
	}
	return pods.Items, nil
}

// nodeRef is what the node's events are about.
func nodeRef(node *corev1.Node) *corev1.ObjectReference {
	return &corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}
}

// recordNodeEvent is upstream's RecordNodeEvent.
func (c *Controller) recordNodeEvent(node *corev1.Node, reason, event string) {
	c.Recorder.Eventf(nodeRef(node), corev1.EventTypeNormal, reason, "Node %s event: %s", node.Name, event)
}

// recordStatusChange is upstream's RecordNodeStatusChange.
func (c *Controller) recordStatusChange(node *corev1.Node, status string) {
	c.Recorder.Eventf(nodeRef(node), corev1.EventTypeNormal, status, "Node %s status is now: %s", node.Name, status)
}
