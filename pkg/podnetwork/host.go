package podnetwork

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// host changes the kernel state of the node Run runs on.
type host struct {
	opts Options
}

// connected reports the interface of ip's route when that route has no
// gateway, i.e. ip is on a directly connected subnet.
func (h *host) connected(ip netip.Addr) (int, bool) {
	routes, err := netlink.RouteGet(ip.AsSlice())
	if err != nil || len(routes) == 0 {
		return 0, false
	}
	r := routes[0]
	if r.Gw != nil || r.Type != unix.RTN_UNICAST || r.LinkIndex == 0 {
		return 0, false
	}
	return r.LinkIndex, true
}

// vtepMAC is the MAC address the node's VXLAN device is made with: derived
// from the node's name, so that it stays the same when the device is made
// again (after a Cleanup or reboot) and the peers' entries stay right.
func vtepMAC(node string) net.HardwareAddr {
	sum := sha256.Sum256([]byte("skiff podnetwork vtep " + node))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = (mac[0] | 0x02) &^ 0x01 // locally administered, unicast
	return mac
}

// ensureVXLAN makes (or checks) the VXLAN device with its outer source at
// local, this node's InternalIP.
func (h *host) ensureVXLAN(local netip.Addr) (*vtepDevice, error) {
	underlay, err := linkWithAddr(local)
	if err != nil {
		return nil, err
	}
	if l, err := netlink.LinkByName(VXLANDevice); err == nil {
		vx, ok := l.(*netlink.Vxlan)
		if ok && vx.VxlanId == h.opts.VNI && vx.Port == h.opts.VXLANPort && vx.VtepDevIndex == underlay.Attrs().Index &&
			vx.SrcAddr != nil && vx.SrcAddr.Equal(local.AsSlice()) {
			if vx.Attrs().Flags&net.FlagUp == 0 {
				if err := netlink.LinkSetUp(vx); err != nil {
					return nil, fmt.Errorf("set %s up: %w", VXLANDevice, err)
				}
			}
			return &vtepDevice{index: vx.Attrs().Index, mac: vx.Attrs().HardwareAddr, underlay: local}, nil
		}
		if !ok {
			return nil, fmt.Errorf("interface %s exists and is not a VXLAN device (%s): not touching it", VXLANDevice, l.Type())
		}
		klog.InfoS("Recreating the VXLAN device: its settings changed", "device", VXLANDevice, "vni", h.opts.VNI, "port", h.opts.VXLANPort, "local", local)
		if err := netlink.LinkDel(vx); err != nil {
			return nil, fmt.Errorf("delete %s: %w", VXLANDevice, err)
		}
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = VXLANDevice
	attrs.MTU = underlay.Attrs().MTU - vxlanOverhead(local)
	attrs.HardwareAddr = vtepMAC(h.opts.NodeName)
	vx := &netlink.Vxlan{
		LinkAttrs:    attrs,
		VxlanId:      h.opts.VNI,
		VtepDevIndex: underlay.Attrs().Index,
		SrcAddr:      local.AsSlice(),
		Port:         h.opts.VXLANPort,
		Learning:     false, // the peers' entries come from their Node objects
	}
	if err := netlink.LinkAdd(vx); err != nil {
		return nil, fmt.Errorf("create VXLAN device %s (VNI %d, port %d, local %s): %w", VXLANDevice, h.opts.VNI, h.opts.VXLANPort, local, err)
	}
	l, err := netlink.LinkByName(VXLANDevice)
	if err != nil {
		return nil, err
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return nil, fmt.Errorf("set %s up: %w", VXLANDevice, err)
	}
	klog.InfoS("Created the VXLAN device", "device", VXLANDevice, "vni", h.opts.VNI, "port", h.opts.VXLANPort, "local", local, "mac", l.Attrs().HardwareAddr, "mtu", attrs.MTU)
	return &vtepDevice{index: l.Attrs().Index, mac: l.Attrs().HardwareAddr, underlay: local}, nil
}

// vxlanOverhead is what VXLAN adds to each frame: outer IP header, UDP 8,
// VXLAN 8 and the inner Ethernet header 14.
func vxlanOverhead(underlay netip.Addr) int {
	if underlay.Is6() {
		return 40 + 30
	}
	return 20 + 30
}

// PodMTU is the MTU for the pods' interfaces (cni.Config.MTU) when traffic
// may go through the VXLAN device: that of the interface holding
// internalIP, this node's InternalIP, less the VXLAN overhead. Larger
// pod packets to other subnets' nodes would otherwise depend on path MTU
// discovery.
func PodMTU(internalIP netip.Addr) (int, error) {
	l, err := linkWithAddr(internalIP.Unmap())
	if err != nil {
		return 0, err
	}
	return l.Attrs().MTU - vxlanOverhead(internalIP.Unmap()), nil
}

func linkWithAddr(ip netip.Addr) (netlink.Link, error) {
	family := netlink.FAMILY_V4
	if ip.Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := netlink.AddrList(nil, family)
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if a.IP.Equal(ip.AsSlice()) {
			return netlink.LinkByIndex(a.LinkIndex)
		}
	}
	return nil, fmt.Errorf("this node's InternalIP %s is no address of this host", ip)
}

func publishVTEPMAC(ctx context.Context, client kubernetes.Interface, self *v1.Node, mac string) error {
	if self.Annotations[VTEPMACAnnotation] == mac {
		return nil
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{VTEPMACAnnotation: mac}}})
	if _, err := client.CoreV1().Nodes().Patch(ctx, self.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("publish the VTEP MAC in node %s: %w", self.Name, err)
	}
	klog.InfoS("Published the VTEP MAC", "node", self.Name, "mac", mac)
	return nil
}

func familyOf(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

func (r route) netlink() *netlink.Route {
	nr := &netlink.Route{
		Dst:       &net.IPNet{IP: r.dst.Addr().AsSlice(), Mask: net.CIDRMask(r.dst.Bits(), r.dst.Addr().BitLen())},
		Gw:        r.gw.AsSlice(),
		LinkIndex: r.link,
		Protocol:  netlink.RouteProtocol(RouteProtocol),
		Family:    familyOf(r.dst.Addr()),
	}
	if r.onlink {
		nr.Flags = int(netlink.FLAG_ONLINK)
	}
	return nr
}

// apply makes the kernel's routes and VXLAN entries those of p, deleting
// this package's others.
func (h *host) apply(p plan, vtep *vtepDevice, removeVXLAN bool) error {
	var errs []error
	wantNeigh := map[netip.Addr]string{}
	wantFDB := map[string]netip.Addr{}
	if vtep != nil {
		for _, peer := range p.peers {
			wantNeigh[peer.gw] = peer.mac.String()
			wantFDB[peer.mac.String()] = peer.underlay
			// The forwarding entry first: the neighbour resolves to it.
			if err := netlink.NeighSet(&netlink.Neigh{
				LinkIndex: vtep.index, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT,
				Flags: netlink.NTF_SELF, IP: peer.underlay.AsSlice(), HardwareAddr: peer.mac,
			}); err != nil {
				errs = append(errs, fmt.Errorf("forwarding entry %s -> %s: %w", peer.mac, peer.underlay, err))
			}
			if err := netlink.NeighSet(&netlink.Neigh{
				LinkIndex: vtep.index, Family: familyOf(peer.gw), State: netlink.NUD_PERMANENT,
				Type: unix.RTN_UNICAST, IP: peer.gw.AsSlice(), HardwareAddr: peer.mac,
			}); err != nil {
				errs = append(errs, fmt.Errorf("neighbour %s -> %s: %w", peer.gw, peer.mac, err))
			}
		}
	}
	want := map[netip.Prefix]route{}
	for _, r := range p.routes {
		want[r.dst] = r
		if err := netlink.RouteReplace(r.netlink()); err != nil {
			errs = append(errs, fmt.Errorf("route %s via %s (node %s): %w", r.dst, r.gw, r.node, err))
		} else {
			klog.V(4).InfoS("Route to a node's pods", "node", r.node, "podCIDR", r.dst, "via", r.gw, "vxlan", r.onlink)
		}
	}
	ours, err := ownRoutes()
	if err != nil {
		errs = append(errs, err)
	}
	for _, r := range ours {
		dst, ok := prefixOf(r.Dst)
		if ok {
			if _, wanted := want[dst]; wanted {
				continue
			}
		}
		if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %s: %w", r.Dst, err))
		} else {
			klog.InfoS("Removed the route to pods of a node that is gone", "podCIDR", r.Dst, "via", r.Gw)
		}
	}
	if vtep != nil {
		errs = append(errs, pruneVTEPEntries(vtep.index, wantNeigh, wantFDB)...)
	} else if removeVXLAN {
		if err := deleteVXLAN(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// pruneVTEPEntries deletes the device's permanent neighbour and forwarding
// entries of peers that are gone.
func pruneVTEPEntries(index int, wantNeigh map[netip.Addr]string, wantFDB map[string]netip.Addr) []error {
	var errs []error
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		list, err := netlink.NeighList(index, family)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, n := range list {
			ip, ok := netip.AddrFromSlice(n.IP)
			if n.State&netlink.NUD_PERMANENT == 0 || !ok {
				continue
			}
			if mac, wanted := wantNeigh[ip.Unmap()]; wanted && mac == n.HardwareAddr.String() {
				continue
			}
			if err := netlink.NeighDel(&n); err != nil {
				errs = append(errs, fmt.Errorf("delete neighbour %s: %w", n.IP, err))
			}
		}
	}
	list, err := netlink.NeighList(index, unix.AF_BRIDGE)
	if err != nil {
		return append(errs, err)
	}
	for _, n := range list {
		if n.State&netlink.NUD_PERMANENT == 0 {
			continue
		}
		if ip, ok := wantFDB[n.HardwareAddr.String()]; ok && n.IP.Equal(ip.AsSlice()) {
			continue
		}
		n.Family = unix.AF_BRIDGE
		n.Flags |= netlink.NTF_SELF
		if err := netlink.NeighDel(&n); err != nil {
			errs = append(errs, fmt.Errorf("delete forwarding entry %s: %w", n.HardwareAddr, err))
		}
	}
	return errs
}

// ownRoutes are the main table's routes with RouteProtocol.
func ownRoutes() ([]netlink.Route, error) {
	var out []netlink.Route
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		list, err := netlink.RouteListFiltered(family, &netlink.Route{Protocol: netlink.RouteProtocol(RouteProtocol)}, netlink.RT_FILTER_PROTOCOL)
		if err != nil {
			return out, fmt.Errorf("list routes: %w", err)
		}
		out = append(out, list...)
	}
	return out, nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones).Masked(), true
}

// deleteVXLAN removes the VXLAN device (with its entries and routes) if it
// exists and is one.
func deleteVXLAN() error {
	l, err := netlink.LinkByName(VXLANDevice)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return nil
		}
		return err
	}
	if _, ok := l.(*netlink.Vxlan); !ok {
		return nil // not ours
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("delete %s: %w", VXLANDevice, err)
	}
	klog.InfoS("Removed the VXLAN device", "device", VXLANDevice)
	return nil
}
