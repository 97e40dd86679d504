// Package podnetwork connects the pods of a node to the pods of every
// other node: one kernel route per other node's podCIDR, straight to that
// node's InternalIP when it is on a directly connected subnet (as
// flannel's host-gw backend) and through a VXLAN device otherwise (as
// flannel's vxlan backend with DirectRouting). Pod traffic leaving the
// cluster CIDR is masqueraded; pod-to-pod traffic keeps its source IP,
// which NetworkPolicy needs.
//
// Everything is level-triggered: each sync computes the full desired
// state from the Node objects and makes the kernel match it, deleting
// what it made before and no longer wants (its routes carry their own
// protocol number, RouteProtocol). A restarted agent thereby takes over
// the routes of the one before it.
package podnetwork

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

const (
	// VXLANDevice is the VXLAN device for nodes not on a directly
	// connected subnet.
	VXLANDevice = "skiff.vxlan"
	// DefaultVNI and DefaultVXLANPort are flannel's defaults (and the
	// Linux port for VXLAN), so firewalls written for flannel fit.
	DefaultVNI       = 1
	DefaultVXLANPort = 8472
	// VTEPMACAnnotation is where each node publishes its VXLAN device's
	// MAC address, which the other nodes need for their forwarding and
	// neighbour entries.
	VTEPMACAnnotation = "podnetwork.skiff.dev/vtep-mac"
	// RouteProtocol marks the routes this package makes (the rtm_protocol
	// of `ip route ... proto 115`), so that a sync or Cleanup can tell
	// them from everyone else's.
	RouteProtocol = 115
	// DefaultResyncPeriod re-applies the state without any Node change,
	// repairing routes or rules someone else removed.
	DefaultResyncPeriod = 30 * time.Second
)

// Options configure Run.
type Options struct {
	// NodeName is this node's Node object.
	NodeName string
	// ClusterCIDRs are the pod address ranges of the whole cluster
	// (--cluster-cidr), at most one per IP family. Pod traffic to
	// addresses outside them is masqueraded.
	ClusterCIDRs []netip.Prefix
	// VNI and VXLANPort of the VXLAN device; 0: DefaultVNI, DefaultVXLANPort.
	VNI       int
	VXLANPort int
	// DisableVXLAN makes no VXLAN device: nodes not on a directly
	// connected subnet are unreachable (pure host-gw).
	DisableVXLAN bool
	// ResyncPeriod; 0: DefaultResyncPeriod.
	ResyncPeriod time.Duration
	// NodeClient patches this node's Node (its VTEP MAC annotation): the
	// node's own identity may, while one that may watch all Nodes (as
	// system:kube-proxy) may not patch them. nil: Run's client.
	NodeClient kubernetes.Interface
}

func (o *Options) complete() error {
	if o.NodeName == "" {
		return errors.New("podnetwork: no node name")
	}
	if len(o.ClusterCIDRs) == 0 {
		return errors.New("podnetwork: no cluster CIDR (--cluster-cidr): cannot tell pod-to-pod traffic from traffic leaving the cluster")
	}
	o.ClusterCIDRs = append([]netip.Prefix(nil), o.ClusterCIDRs...) // masked below: not the caller's
	var v4, v6 bool
	for i, c := range o.ClusterCIDRs {
		if !c.IsValid() {
			return fmt.Errorf("podnetwork: invalid cluster CIDR #%d", i)
		}
		o.ClusterCIDRs[i] = c.Masked()
		if c.Addr().Is4() {
			if v4 {
				return fmt.Errorf("podnetwork: more than one IPv4 cluster CIDR (%s)", c)
			}
			v4 = true
		} else {
			if v6 {
				return fmt.Errorf("podnetwork: more than one IPv6 cluster CIDR (%s)", c)
			}
			v6 = true
		}
	}
	if o.VNI == 0 {
		o.VNI = DefaultVNI
	}
	if o.VNI < 0 || o.VNI >= 1<<24 {
		return fmt.Errorf("podnetwork: VNI %d is not in 1..16777215", o.VNI)
	}
	if o.VXLANPort == 0 {
		o.VXLANPort = DefaultVXLANPort
	}
	if o.VXLANPort < 0 || o.VXLANPort > 65535 {
		return fmt.Errorf("podnetwork: VXLAN port %d is not in 1..65535", o.VXLANPort)
	}
	if o.ResyncPeriod == 0 {
		o.ResyncPeriod = DefaultResyncPeriod
	}
	if o.ResyncPeriod < 0 {
		return fmt.Errorf("podnetwork: negative resync period %s", o.ResyncPeriod)
	}
	return nil
}

// Run keeps this node's routes to the other nodes' pods, its VXLAN device
// and its masquerade rules in step with the Node objects until ctx ends;
// then it returns nil and leaves them in place (pods keep their network
// while the agent restarts; Cleanup removes them).
//
// Every change to the host's network is made on the goroutine that calls
// Run (the informer's goroutines only talk to the API server), so Run may
// be called on an OS thread locked into another network namespace.
func Run(ctx context.Context, client kubernetes.Interface, opts Options) error {
	if err := opts.complete(); err != nil {
		return err
	}
	if opts.NodeClient == nil {
		opts.NodeClient = client
	}
	h := &host{opts: opts}
	if err := h.ensureMasquerade(); err != nil {
		return err
	}

	factory := informers.NewSharedInformerFactory(client, 0)
	nodes := factory.Core().V1().Nodes()
	changed := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    poke,
		UpdateFunc: func(_, _ any) { poke(nil) },
		DeleteFunc: poke,
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), nodes.Informer().HasSynced) {
		return nil // ctx ended
	}
	lister := nodes.Lister()
	klog.InfoS("Pod network started", "node", opts.NodeName, "clusterCIDRs", opts.ClusterCIDRs)

	resync := time.NewTimer(0)
	defer resync.Stop()
	retry := time.Second
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-resync.C:
		}
		list, err := lister.List(everything)
		if err == nil {
			err = h.sync(ctx, list)
		}
		next := opts.ResyncPeriod
		if err != nil {
			klog.ErrorS(err, "Pod network sync failed; retrying", "node", opts.NodeName, "in", retry)
			next, retry = retry, min(2*retry, opts.ResyncPeriod)
		} else {
			retry = time.Second
		}
		if !resync.Stop() {
			select {
			case <-resync.C:
			default:
			}
		}
		resync.Reset(next)
	}
}

// sync makes the host match list, the cluster's Nodes.
func (h *host) sync(ctx context.Context, list []*v1.Node) error {
	var self *v1.Node
	for _, n := range list {
		if n.Name == h.opts.NodeName {
			self = n
		}
	}
	if err := h.ensureMasquerade(); err != nil {
		return err
	}
	if self == nil {
		klog.V(2).InfoS("Own Node object not found yet", "node", h.opts.NodeName)
		return nil
	}
	// Failures around the VXLAN device leave the direct routes to be
	// made; the sync still fails, to be retried.
	var errs []error
	var vtep *vtepDevice
	if !h.opts.DisableVXLAN {
		if local, ok := underlayAddr(self); !ok {
			errs = append(errs, fmt.Errorf("node %s has no InternalIP for its VXLAN device", self.Name))
		} else if dev, err := h.ensureVXLAN(local); err != nil {
			errs = append(errs, err)
		} else {
			vtep = dev
			if err := publishVTEPMAC(ctx, h.opts.NodeClient, self, vtep.mac.String()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	p := planFor(self, list, h.connected, vtep)
	for _, s := range p.skipped {
		klog.V(2).InfoS("No route to a node's pods yet", "node", s.node, "podCIDR", s.cidr, "reason", s.reason)
	}
	// A device that failed keeps its entries; only DisableVXLAN removes it.
	return errors.Join(append(errs, h.apply(p, vtep, h.opts.DisableVXLAN))...)
}

// underlayAddr is the node's first InternalIP: the outer source of its
// VXLAN packets.
func underlayAddr(n *v1.Node) (netip.Addr, bool) {
	for _, a := range n.Status.Addresses {
		if a.Type != v1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil {
			return ip.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// internalIP is the node's first InternalIP of the family of like.
func internalIP(n *v1.Node, like netip.Addr) (netip.Addr, bool) {
	for _, a := range n.Status.Addresses {
		if a.Type != v1.NodeInternalIP {
			continue
		}
		ip, err := netip.ParseAddr(a.Address)
		if err == nil && ip.Unmap().Is4() == like.Is4() {
			return ip.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

func podCIDRs(n *v1.Node) []netip.Prefix {
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
		cidrs = []string{n.Spec.PodCIDR}
	}
	var out []netip.Prefix
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}
