package podnetwork

import (
	"fmt"
	"net"
	"net/netip"
	"sort"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

var everything = labels.Everything()

// route is one route to another node's pods.
type route struct {
	dst    netip.Prefix
	gw     netip.Addr
	link   int  // interface index
	onlink bool // gw is not on a subnet of link (the VXLAN case)
	node   string
}

// vtepPeer is another node reached through the VXLAN device: its pods'
// gateway address (the network address of its podCIDR) answers to its
// device's MAC, which lives behind its underlay IP.
type vtepPeer struct {
	gw       netip.Addr
	mac      net.HardwareAddr
	underlay netip.Addr
}

type skip struct {
	node   string
	cidr   netip.Prefix
	reason string
}

type plan struct {
	routes  []route
	peers   []vtepPeer
	skipped []skip
}

// vtepDevice is this node's VXLAN device once it exists.
type vtepDevice struct {
	index    int
	mac      net.HardwareAddr
	underlay netip.Addr
}

// connectedFunc reports the interface through which ip is directly
// reachable (no gateway), or false.
type connectedFunc func(ip netip.Addr) (link int, ok bool)

// planFor computes the routes (and VXLAN peers) to every other node's
// podCIDRs. A podCIDR goes straight to the node's InternalIP of its
// family when that IP is on a directly connected subnet; otherwise through
// vtep (nil: not reachable) to the node's published VTEP MAC.
func planFor(self *v1.Node, nodes []*v1.Node, connected connectedFunc, vtep *vtepDevice) plan {
	var p plan
	own := podCIDRs(self)
	sorted := append([]*v1.Node(nil), nodes...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	taken := map[netip.Prefix]string{}
	for _, n := range sorted {
		if n.Name == self.Name || n.DeletionTimestamp != nil {
			continue
		}
		for _, cidr := range podCIDRs(n) {
			if overlapsAny(cidr, own) {
				p.skipped = append(p.skipped, skip{n.Name, cidr, "overlaps this node's podCIDR"})
				continue
			}
			if other, dup := taken[cidr]; dup {
				p.skipped = append(p.skipped, skip{n.Name, cidr, "also the podCIDR of node " + other})
				continue
			}
			if ip, ok := internalIP(n, cidr.Addr()); ok {
				if link, ok := connected(ip); ok && (vtep == nil || link != vtep.index) {
					p.routes = append(p.routes, route{dst: cidr, gw: ip, link: link, node: n.Name})
					taken[cidr] = n.Name
					continue
				}
			}
			if vtep == nil {
				p.skipped = append(p.skipped, skip{n.Name, cidr, "no InternalIP of its family on a directly connected subnet, and VXLAN is disabled"})
				continue
			}
			peer, err := vtepPeerOf(n, cidr, vtep)
			if err != nil {
				p.skipped = append(p.skipped, skip{n.Name, cidr, err.Error()})
				continue
			}
			p.routes = append(p.routes, route{dst: cidr, gw: peer.gw, link: vtep.index, onlink: true, node: n.Name})
			p.peers = append(p.peers, peer)
			taken[cidr] = n.Name
		}
	}
	return p
}

func vtepPeerOf(n *v1.Node, cidr netip.Prefix, vtep *vtepDevice) (vtepPeer, error) {
	raw := n.Annotations[VTEPMACAnnotation]
	if raw == "" {
		return vtepPeer{}, fmt.Errorf("not directly connected and no %s annotation (yet)", VTEPMACAnnotation)
	}
	mac, err := net.ParseMAC(raw)
	if err != nil || len(mac) != 6 {
		return vtepPeer{}, fmt.Errorf("annotation %s=%q is not a MAC address", VTEPMACAnnotation, raw)
	}
	underlay, ok := internalIP(n, vtep.underlay)
	if !ok {
		return vtepPeer{}, fmt.Errorf("no InternalIP of the family of this node's VXLAN underlay %s", vtep.underlay)
	}
	return vtepPeer{gw: cidr.Addr(), mac: mac, underlay: underlay}, nil
}

func overlapsAny(p netip.Prefix, others []netip.Prefix) bool {
	for _, o := range others {
		if p.Overlaps(o) {
			return true
		}
	}
	return false
}
