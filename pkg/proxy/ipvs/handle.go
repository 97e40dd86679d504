package ipvs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	cfipvs "github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"
)

// kernelHandle is Handle over generic netlink (github.com/cloudflare/ipvs).
type kernelHandle struct {
	c cfipvs.Client
}

// NewHandle connects to the kernel's IPVS; it fails when the kernel has
// none (see Supported for the explanation).
func NewHandle() (Handle, error) {
	c, err := cfipvs.New()
	if err != nil {
		return nil, fmt.Errorf("connecting to the kernel's IPVS (generic netlink family IPVS): %w", err)
	}
	return &kernelHandle{c: c}, nil
}

var protocols = map[string]cfipvs.Protocol{"TCP": cfipvs.TCP, "UDP": cfipvs.UDP, "SCTP": cfipvs.SCTP}

func toService(vs *VirtualServer) (cfipvs.Service, error) {
	addr, ok := netip.AddrFromSlice(vs.Address.To4())
	if !ok {
		return cfipvs.Service{}, fmt.Errorf("virtual server %s: not an IPv4 address", vs)
	}
	proto, ok := protocols[strings.ToUpper(vs.Protocol)]
	if !ok {
		return cfipvs.Service{}, fmt.Errorf("virtual server %s: unknown protocol %q", vs, vs.Protocol)
	}
	return cfipvs.Service{
		Address:   addr,
		Netmask:   netmask.MaskFrom(32, 32),
		Scheduler: vs.Scheduler,
		Timeout:   vs.Timeout,
		Flags:     cfipvs.Flags(vs.Flags &^ FlagHashed),
		Port:      vs.Port,
		Family:    cfipvs.INET,
		Protocol:  proto,
	}, nil
}

func fromService(s cfipvs.Service) *VirtualServer {
	proto := ""
	for name, p := range protocols {
		if p == s.Protocol {
			proto = name
		}
	}
	return &VirtualServer{
		Address:   net.IP(s.Address.AsSlice()),
		Protocol:  proto,
		Port:      s.Port,
		Scheduler: s.Scheduler,
		Flags:     Flags(s.Flags) &^ FlagHashed,
		Timeout:   s.Timeout,
	}
}

func toDestination(rs *RealServer) (cfipvs.Destination, error) {
	addr, ok := netip.AddrFromSlice(rs.Address.To4())
	if !ok {
		return cfipvs.Destination{}, fmt.Errorf("real server %s: not an IPv4 address", rs)
	}
	if rs.Weight < 0 {
		return cfipvs.Destination{}, fmt.Errorf("real server %s: negative weight %d", rs, rs.Weight)
	}
	// Masquerade (NAT) forwarding: the endpoints are anywhere.
	return cfipvs.Destination{Address: addr, Port: rs.Port, Weight: uint32(rs.Weight), Family: cfipvs.INET, FwdMethod: cfipvs.Masquerade}, nil
}

func (h *kernelHandle) VirtualServers() ([]*VirtualServer, error) {
	svcs, err := h.c.Services()
	if errors.Is(err, os.ErrNotExist) {
		// The library's answer to an empty table.
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]*VirtualServer, 0, len(svcs))
	for _, s := range svcs {
		// Firewall-mark services are not ours.
		if s.FWMark != 0 || s.Family != cfipvs.INET {
			continue
		}
		out = append(out, fromService(s.Service))
	}
	return out, nil
}

func (h *kernelHandle) AddVirtualServer(vs *VirtualServer) error {
	s, err := toService(vs)
	if err != nil {
		return err
	}
	return h.c.CreateService(s)
}

func (h *kernelHandle) UpdateVirtualServer(vs *VirtualServer) error {
	s, err := toService(vs)
	if err != nil {
		return err
	}
	return h.c.UpdateService(s)
}

func (h *kernelHandle) DeleteVirtualServer(vs *VirtualServer) error {
	s, err := toService(vs)
	if err != nil {
		return err
	}
	return h.c.RemoveService(s)
}

func (h *kernelHandle) RealServers(vs *VirtualServer) ([]*RealServer, error) {
	s, err := toService(vs)
	if err != nil {
		return nil, err
	}
	dests, err := h.c.Destinations(s)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]*RealServer, 0, len(dests))
	for _, d := range dests {
		out = append(out, &RealServer{
			Address:      net.IP(d.Address.AsSlice()),
			Port:         d.Port,
			Weight:       int(d.Weight),
			ActiveConn:   int(d.ActiveConnections),
			InactiveConn: int(d.InactiveConnections),
		})
	}
	return out, nil
}

func (h *kernelHandle) realServerOp(vs *VirtualServer, rs *RealServer, op func(cfipvs.Service, cfipvs.Destination) error) error {
	s, err := toService(vs)
	if err != nil {
		return err
	}
	d, err := toDestination(rs)
	if err != nil {
		return err
	}
	return op(s, d)
}

func (h *kernelHandle) AddRealServer(vs *VirtualServer, rs *RealServer) error {
	return h.realServerOp(vs, rs, h.c.CreateDestination)
}

func (h *kernelHandle) UpdateRealServer(vs *VirtualServer, rs *RealServer) error {
	return h.realServerOp(vs, rs, h.c.UpdateDestination)
}

func (h *kernelHandle) DeleteRealServer(vs *VirtualServer, rs *RealServer) error {
	return h.realServerOp(vs, rs, h.c.RemoveDestination)
}

func (h *kernelHandle) ConfigureTimeouts(tcp, tcpFin, udp time.Duration) error {
	if tcp < 0 || tcpFin < 0 || udp < 0 {
		return fmt.Errorf("negative IPVS timeout (tcp %s, tcpFin %s, udp %s)", tcp, tcpFin, udp)
	}
	// Zero keeps the kernel's value, as `ipvsadm --set`.
	return h.c.SetConfig(cfipvs.Config{
		TCPTimeout:    uint32(tcp / time.Second),
		TCPFinTimeout: uint32(tcpFin / time.Second),
		UDPTimeout:    uint32(udp / time.Second),
	})
}
