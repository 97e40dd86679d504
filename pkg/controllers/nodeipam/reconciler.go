// Package nodeipam gives each Node its pod CIDRs (spec.podCIDR and
// spec.podCIDRs), one node CIDR from each cluster CIDR, as upstream's node
// IPAM controller with its range allocator (kube-controller-manager
// --allocate-node-cidrs, --cluster-cidr, --node-cidr-mask-size*).
//
// What is in use is derived, at each allocation, from the Nodes in the
// cache and the CIDRs handed out that the cache does not show yet: a CIDR is
// free again once its Node is gone, and one in use when the controller
// starts is never handed out (the cache is complete before the first
// reconcile). Allocations are serialized. A Node's podCIDRs, once set, are
// never changed.
package nodeipam

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/skiff-dev/skiff/pkg/controllers/eventrecorder"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Event reasons. CIDRNotAvailable and CIDRAssignmentFailed are upstream's
// (Normal, "Node <name> status is now: <reason>"); upstream's allocator
// fails on a podCIDR outside its ranges, skiff leaves it and says so.
const (
	ReasonCIDRNotAvailable     = "CIDRNotAvailable"
	ReasonCIDRAssignmentFailed = "CIDRAssignmentFailed"
	ReasonPodCIDRNotAllocated  = "PodCIDRNotFromClusterCIDR"
)

// Reconciler allocates the pod CIDRs of Nodes.
type Reconciler struct {
	// Client reads Nodes through the manager's cache and patches them.
	Client client.Client
	// Config is the cluster CIDRs and node mask sizes (Validate).
	Config Config
	// Recorder gets the events; nil: SetupWithManager sends them through
	// Core, or nowhere without it.
	Recorder record.EventRecorder
	// Core, if Recorder is nil, is where events are written.
	Core kubernetes.Interface

	once sync.Once
	mu   sync.Mutex
	sets []*cidrSet
	// next is, per cluster CIDR, the node CIDR to try first: allocation
	// goes round the range, so that a released CIDR is handed out again
	// only after the others, as upstream's.
	next []uint64
	// pending are the CIDRs patched onto a Node (by UID) that the cache
	// does not show yet.
	pending map[types.UID]*allocation
	// reported: the Node UIDs whose podCIDRs were reported as not from the
	// cluster CIDRs, and which.
	reported map[types.UID]string
}

type allocation struct {
	cidrs []string
	// patched: the API answered the patch with success.
	patched bool
}

func (r *Reconciler) init() {
	r.once.Do(func() {
		for i, c := range r.Config.ClusterCIDRs {
			r.sets = append(r.sets, newCIDRSet(c, r.Config.NodeMaskSizes[i]))
		}
		r.next = make([]uint64, len(r.sets))
		r.pending = map[types.UID]*allocation{}
		r.reported = map[types.UID]string{}
		if r.Recorder == nil {
			r.Recorder = &record.FakeRecorder{}
		}
	})
}

// SetupWithManager registers the reconciler for Nodes: those added and
// those updated without podCIDRs or with other ones; a Node deleted sends
// again the Nodes still waiting for a CIDR, which may now be free.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := r.Config.Validate(); err != nil {
		return err
	}
	if r.Recorder == nil && r.Core != nil {
		var err error
		if r.Recorder, err = eventrecorder.New(mgr, r.Core, "cidrAllocator"); err != nil {
			return err
		}
	}
	r.init()
	changed := predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			n, ok := e.ObjectNew.(*corev1.Node)
			o, ok2 := e.ObjectOld.(*corev1.Node)
			return !ok || !ok2 || len(podCIDRs(n)) == 0 || strings.Join(podCIDRs(n), ",") != strings.Join(podCIDRs(o), ",")
		},
		DeleteFunc: func(event.DeleteEvent) bool { return false },
	}
	waiting := handler.Funcs{DeleteFunc: func(ctx context.Context, _ event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		var nodes corev1.NodeList
		if err := mgr.GetCache().List(ctx, &nodes, client.UnsafeDisableDeepCopy); err != nil {
			return
		}
		for i := range nodes.Items {
			if len(podCIDRs(&nodes.Items[i])) == 0 {
				q.Add(reconcile.Request{NamespacedName: client.ObjectKey{Name: nodes.Items[i].Name}})
			}
		}
	}}
	return ctrl.NewControllerManagedBy(mgr).Named("node-ipam-controller").
		For(&corev1.Node{}, builder.WithPredicates(changed)).
		Watches(&corev1.Node{}, waiting).
		// One allocation at a time (mu serializes them anyway).
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Complete(r)
}

// podCIDRs are a Node's, spec.podCIDR for an old object without the list.
func podCIDRs(n *corev1.Node) []string {
	if len(n.Spec.PodCIDRs) == 0 && n.Spec.PodCIDR != "" {
		return []string{n.Spec.PodCIDR}
	}
	return n.Spec.PodCIDRs
}

// Reconcile gives one Node its CIDRs if it has none.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	r.init()
	r.mu.Lock()
	defer r.mu.Unlock()
	logger := klog.FromContext(ctx)

	node := &corev1.Node{}
	if err := r.Client.Get(ctx, req.NamespacedName, node); err != nil {
		// A Node gone frees its CIDRs: they are no longer in the list.
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !node.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	var nodes corev1.NodeList
	if err := r.Client.List(ctx, &nodes, client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, err
	}
	used := r.inUse(nodes.Items)

	if cidrs := podCIDRs(node); len(cidrs) > 0 {
		r.check(logger, node, cidrs)
		return ctrl.Result{}, nil
	}
	a := r.pending[node.UID]
	if a != nil && a.patched {
		// Done; the cache has not caught up yet, the update will come.
		return ctrl.Result{}, nil
	}
	if a == nil {
		cidrs, idx, err := r.allocate(used)
		if err != nil {
			r.event(node, ReasonCIDRNotAvailable)
			return ctrl.Result{}, fmt.Errorf("failed to allocate cidr from cluster cidr at idx:%v: %v", idx, err)
		}
		a = &allocation{cidrs: cidrs}
		r.pending[node.UID] = a
	}

	if err := r.patch(ctx, node, a.cidrs); err != nil {
		switch {
		case apierrors.IsNotFound(err):
			delete(r.pending, node.UID)
			return ctrl.Result{}, nil
		case apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsBadRequest(err) || apierrors.IsConflict(err):
			// Refused: the CIDRs are free again (the Node may have got
			// others meanwhile, which the next try sees).
			delete(r.pending, node.UID)
			r.event(node, ReasonCIDRAssignmentFailed)
		}
		// Otherwise the patch may have been applied: the CIDRs stay the
		// Node's, the next try patches the same ones.
		logger.Error(err, "Failed to update node PodCIDR", "node", klog.KObj(node), "podCIDRs", a.cidrs)
		return ctrl.Result{}, err
	}
	a.patched = true
	logger.Info("Set node PodCIDR", "node", klog.KObj(node), "podCIDRs", a.cidrs)
	return ctrl.Result{}, nil
}

// inUse is, per cluster CIDR, the node CIDRs of nodes and of the pending
// allocations; pending ones whose Node is gone or shows podCIDRs are
// dropped.
func (r *Reconciler) inUse(nodes []corev1.Node) []usedSet {
	used := make([]usedSet, len(r.sets))
	add := func(cidrs []string) {
		for _, s := range cidrs {
			_, cidr, err := net.ParseCIDR(s)
			if err != nil {
				continue
			}
			for i, set := range r.sets {
				if span, ok := set.span(cidr); ok {
					used[i] = append(used[i], span)
				}
			}
		}
	}
	seen := make(map[types.UID]bool, len(nodes))
	for i := range nodes {
		cidrs := podCIDRs(&nodes[i])
		if len(cidrs) > 0 {
			add(cidrs)
			seen[nodes[i].UID] = true
		} else {
			seen[nodes[i].UID] = false
		}
	}
	for uid, a := range r.pending {
		if has, ok := seen[uid]; !ok || has {
			delete(r.pending, uid)
			continue
		}
		add(a.cidrs)
	}
	for i := range used {
		used[i] = used[i].normalize()
	}
	return used
}

// allocate takes the next free node CIDR of each cluster CIDR; idx is the
// cluster CIDR that has none left.
func (r *Reconciler) allocate(used []usedSet) (cidrs []string, idx int, err error) {
	picked := make([]uint64, len(r.sets))
	for i, set := range r.sets {
		n, ok := used[i].next(r.next[i], set.max)
		if !ok {
			return nil, i, ErrNoCIDRsRemaining
		}
		picked[i] = n
	}
	for i, set := range r.sets {
		r.next[i] = (picked[i] + 1) % set.max
		cidrs = append(cidrs, set.block(picked[i]).String())
	}
	return cidrs, 0, nil
}

// patch sets spec.podCIDR and spec.podCIDRs, as upstream's
// PatchNodeCIDRs (a strategic merge patch; the API refuses to change
// podCIDRs once set).
func (r *Reconciler) patch(ctx context.Context, node *corev1.Node, cidrs []string) error {
	data, err := json.Marshal(map[string]any{"spec": map[string]any{"podCIDR": cidrs[0], "podCIDRs": cidrs}})
	if err != nil {
		return err
	}
	return r.Client.Patch(ctx, node, client.RawPatch(types.StrategicMergePatchType, data))
}

// check logs and reports, once per Node and podCIDRs, the podCIDRs that do
// not come from the cluster CIDRs: outside them, of another family or
// another size. They are left as they are (and what they cover of the
// cluster CIDRs is in use).
func (r *Reconciler) check(logger klog.Logger, node *corev1.Node, cidrs []string) {
	var problems []string
	for _, s := range cidrs {
		_, cidr, err := net.ParseCIDR(s)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%q is not a CIDR", s))
			continue
		}
		found := false
		for _, set := range r.sets {
			if !set.family(cidr) {
				continue
			}
			if _, ok := set.span(cidr); !ok {
				break
			}
			found = true
			if size, _ := cidr.Mask.Size(); size != set.nodeMask {
				problems = append(problems, fmt.Sprintf("%s is not a /%d", s, set.nodeMask))
			}
		}
		if !found {
			problems = append(problems, fmt.Sprintf("%s is outside the cluster CIDRs %s", s, r.clusterCIDRs()))
		}
	}
	key := strings.Join(cidrs, ",")
	if len(problems) == 0 || r.reported[node.UID] == key {
		return
	}
	r.reported[node.UID] = key
	msg := fmt.Sprintf("Node %s has podCIDRs %s not allocated from the cluster CIDRs: %s; left as they are", node.Name, key, strings.Join(problems, "; "))
	logger.Error(nil, msg, "node", klog.KObj(node))
	r.Recorder.Event(nodeRef(node), corev1.EventTypeWarning, ReasonPodCIDRNotAllocated, msg)
}

func (r *Reconciler) clusterCIDRs() string {
	var s []string
	for _, c := range r.Config.ClusterCIDRs {
		s = append(s, c.String())
	}
	return strings.Join(s, ",")
}

// event is upstream's RecordNodeStatusChange.
func (r *Reconciler) event(node *corev1.Node, status string) {
	r.Recorder.Eventf(nodeRef(node), corev1.EventTypeNormal, status, "Node %s status is now: %s", node.Name, status)
}

func nodeRef(node *corev1.Node) *corev1.ObjectReference {
	return &corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}
}
