// Package kubelet is the node agent: what the simulated nodes of `skiff
// agent --simulate` and the kubelet on a container runtime share. Node
// registers a Node, renews its Lease in kube-node-lease and reports its
// status, as upstream's kubelet does.
package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/component-helpers/apimachinery/lease"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/skiff-dev/skiff/pkg/kubelet/nodestatus"
)

// Upstream kubelet's defaults.
const (
	// LeaseDuration is the node Lease's duration; it is renewed every
	// quarter of it.
	LeaseDuration = 40 * time.Second
	// StatusUpdateInterval is how often the status is computed, and
	// written if it changed.
	StatusUpdateInterval = 10 * time.Second
	// FastStatusUpdateInterval is how often the status is computed while
	// the node is not Ready.
	FastStatusUpdateInterval = time.Second
	// StatusReportInterval is how often the status is written even
	// unchanged.
	StatusReportInterval = 5 * time.Minute
	// KubeletPort is the port nodeInfo's daemonEndpoints name.
	KubeletPort = 10250
)

// NodeConfig is a node as it registers.
type NodeConfig struct {
	Name string
	// Labels are added to the default ones (hostname, os, arch,
	// instance-type if InstanceType is set).
	Labels       map[string]string
	InstanceType string
	// Taints are registered with the node (--register-with-taints).
	Taints   []corev1.Taint
	Capacity corev1.ResourceList
	// Allocatable: empty means Capacity.
	Allocatable corev1.ResourceList
	Addresses   []corev1.NodeAddress
	NodeInfo    corev1.NodeSystemInfo
	// KubeletPort is the kubelet server's port in daemonEndpoints; 0:
	// KubeletPort.
	KubeletPort int32
}

// Node is one node's agent.
type Node struct {
	Config  NodeConfig
	Client  kubernetes.Interface
	Runtime Runtime
	// Nodes is a lister of an informer that holds this node (shared by
	// many simulated nodes): the status is compared with its copy.
	Nodes corelisters.NodeLister
	// Pressure reports what the node is short of; nil: nothing.
	Pressure func() nodestatus.Pressure
	Clock    clock.Clock

	lastReport time.Time
	// ready: the last status computed had Ready true.
	ready bool
}

// Run registers the node, then renews its Lease and reports its status
// until ctx ends.
func (n *Node) Run(ctx context.Context) error {
	if n.Clock == nil {
		n.Clock = clock.RealClock{}
	}
	if err := n.register(ctx); err != nil {
		return err
	}
	leases := lease.NewController(n.Clock, n.Client, n.Config.Name, int32(LeaseDuration/time.Second), nil,
		LeaseDuration/4, n.Config.Name, corev1.NamespaceNodeLease, n.ownLease)
	go leases.Run(ctx)
	for {
		if err := n.syncStatus(ctx); err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "Updating node status failed; will retry", "node", n.Config.Name)
		}
		// As upstream's fast node status updates: until the node is Ready
		// (its runtime's network waits for the podCIDR) it looks again
		// every second, not every StatusUpdateInterval.
		interval := StatusUpdateInterval
		if !n.ready {
			interval = FastStatusUpdateInterval
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait.Jitter(interval, 0.04)):
		}
	}
}

// register creates the Node, or takes over an existing one of that name
// (a restarted agent), retrying with upstream kubelet's backoff.
func (n *Node) register(ctx context.Context) error {
	backoff := wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Steps: 7, Cap: 7 * time.Second}
	for {
		err := n.tryRegister(ctx)
		if err == nil {
			klog.V(2).InfoS("Registered node", "node", n.Config.Name)
			return nil
		}
		klog.InfoS("Registering node failed; will retry", "node", n.Config.Name, "err", err)
		delay := backoff.Step()
		if backoff.Steps == 0 {
			delay = backoff.Cap
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

func (n *Node) tryRegister(ctx context.Context) error {
	node := n.initialNode(ctx)
	created, err := n.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err == nil {
		return n.writeStatus(ctx, created, n.status(ctx, created))
	}
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	existing, err := n.Client.CoreV1().Nodes().Get(ctx, n.Config.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	// As upstream: the default labels follow the agent's; other labels,
	// taints and spec stay as the cluster has them.
	updated := existing.DeepCopy()
	if updated.Labels == nil {
		updated.Labels = map[string]string{}
	}
	for k, v := range node.Labels {
		updated.Labels[k] = v
	}
	if err := n.patch(ctx, existing, updated, ""); err != nil {
		return err
	}
	return n.writeStatus(ctx, updated, n.status(ctx, updated))
}

func (n *Node) initialNode(ctx context.Context) *corev1.Node {
	labels := map[string]string{
		corev1.LabelHostname:   n.Config.Name,
		corev1.LabelOSStable:   runtime.GOOS,
		corev1.LabelArchStable: runtime.GOARCH,
	}
	if n.Config.InstanceType != "" {
		labels[corev1.LabelInstanceTypeStable] = n.Config.InstanceType
		labels[corev1.LabelInstanceType] = n.Config.InstanceType
	}
	for k, v := range n.Config.Labels {
		labels[k] = v
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.Config.Name, Labels: labels},
		Spec:       corev1.NodeSpec{Taints: n.Config.Taints},
	}
	node.Status = n.status(ctx, node)
	return node
}

// status is the node's status now.
func (n *Node) status(ctx context.Context, node *corev1.Node) corev1.NodeStatus {
	info := n.Config.NodeInfo
	info.ContainerRuntimeVersion = n.Runtime.Version()
	if info.OperatingSystem == "" {
		info.OperatingSystem = runtime.GOOS
	}
	if info.Architecture == "" {
		info.Architecture = runtime.GOARCH
	}
	var pressure nodestatus.Pressure
	if n.Pressure != nil {
		pressure = n.Pressure()
	}
	status := node.Status.DeepCopy()
	// The extended resources others added to the status stay, as
	// upstream's kubelet keeps them.
	status.Capacity, status.Allocatable = nodestatus.Resources(node.Status, n.Config.Capacity, n.Config.Allocatable)
	status.Addresses = n.Config.Addresses
	status.NodeInfo = info
	port := n.Config.KubeletPort
	if port == 0 {
		port = KubeletPort
	}
	status.DaemonEndpoints = corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: port}}
	status.Conditions = nodestatus.Conditions(node.Status.Conditions, metav1.NewTime(n.Clock.Now()), pressure, n.Runtime.Errors(ctx))
	n.ready = false
	for _, c := range status.Conditions {
		if c.Type == corev1.NodeReady {
			n.ready = c.Status == corev1.ConditionTrue
		}
	}
	return *status
}

// syncStatus writes the status if it changed, or if the last report is
// StatusReportInterval old; the node is read from the shared informer, so
// an unchanged status costs no request.
func (n *Node) syncStatus(ctx context.Context) error {
	node, err := n.Nodes.Get(n.Config.Name)
	if apierrors.IsNotFound(err) {
		// Deleted underneath the agent: register again.
		return n.tryRegister(ctx)
	}
	if err != nil {
		return err
	}
	status := n.status(ctx, node)
	if n.Clock.Since(n.lastReport) < StatusReportInterval && !nodestatus.Changed(&node.Status, &status) {
		return nil
	}
	return n.writeStatus(ctx, node, status)
}

func (n *Node) writeStatus(ctx context.Context, node *corev1.Node, status corev1.NodeStatus) error {
	updated := node.DeepCopy()
	updated.Status = status
	if err := n.patch(ctx, node, updated, "status"); err != nil {
		return err
	}
	n.lastReport = n.Clock.Now()
	return nil
}

// patch sends the strategic merge patch from old to updated (of the
// subresource, if any), as upstream's kubelet writes its node.
func (n *Node) patch(ctx context.Context, old, updated *corev1.Node, subresource string) error {
	oldJSON, err := json.Marshal(old)
	if err != nil {
		return err
	}
	newJSON, err := json.Marshal(updated)
	if err != nil {
		return err
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(oldJSON, newJSON, corev1.Node{})
	if err != nil {
		return fmt.Errorf("node %s: %w", n.Config.Name, err)
	}
	if string(patch) == "{}" {
		return nil
	}
	var subresources []string
	if subresource != "" {
		subresources = []string{subresource}
	}
	_, err = n.Client.CoreV1().Nodes().Patch(ctx, n.Config.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, subresources...)
	return err
}

// ownLease makes the Node the Lease's owner, as upstream's kubelet: the
// Lease goes when the Node does.
func (n *Node) ownLease(l *coordinationv1.Lease) error {
	if len(l.OwnerReferences) > 0 {
		return nil
	}
	node, err := n.Nodes.Get(n.Config.Name)
	if err != nil {
		// Not in the informer yet: the next renewal sets it.
		return nil
	}
	l.OwnerReferences = []metav1.OwnerReference{{
		APIVersion: corev1.SchemeGroupVersion.String(), Kind: "Node", Name: node.Name, UID: node.UID,
	}}
	return nil
}
