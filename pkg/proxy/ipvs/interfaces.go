// Package ipvs is kube-proxy's ipvs mode: every service address (cluster
// IP, node port on each node address, external IP, load-balancer ingress
// IP) is an IPVS virtual server whose real servers are the service's
// endpoints; service IPs are bound to the kube-ipvs0 dummy interface so
// that the node accepts their packets; and what IPVS cannot do (masquerade,
// firewalls, hairpin) is iptables rules matching ipsets, with upstream's
// set and chain names.
//
// The kernel parts are behind interfaces (Handle, IPSet, Dummy and
// pkg/proxy/iptables' Interface), so that the rule computation is tested
// without IP_VS, which some kernels lack (see Supported).
package ipvs

import (
	"net"
	"strconv"
	"time"
)

// VirtualServer is an IPVS virtual service.
type VirtualServer struct {
	Address net.IP
	// Protocol is "TCP", "UDP" or "SCTP".
	Protocol  string
	Port      uint16
	Scheduler string
	Flags     Flags
	// Timeout is the persistence timeout in seconds (with FlagPersistent).
	Timeout uint32
}

// Flags are IPVS service flags.
type Flags uint32

const (
	// FlagPersistent keeps a client on one real server for Timeout:
	// sessionAffinity ClientIP.
	FlagPersistent Flags = 0x1
	// FlagHashed is set by the kernel on every service: not ours to
	// compare.
	FlagHashed Flags = 0x2
	// FlagSourceHash (IP_VS_SVC_F_SCHED1) makes the mh scheduler hash the
	// source port too, as upstream.
	FlagSourceHash Flags = 0x10
)

// String is "ip:port/PROTOCOL", the virtual server's identity.
func (v *VirtualServer) String() string {
	return net.JoinHostPort(v.Address.String(), strconv.Itoa(int(v.Port))) + "/" + v.Protocol
}

// sameSettings: no update is needed to turn v into other.
func (v *VirtualServer) sameSettings(other *VirtualServer) bool {
	return v.Scheduler == other.Scheduler && v.Flags&^FlagHashed == other.Flags&^FlagHashed && v.Timeout == other.Timeout
}

// RealServer is an IPVS destination of a virtual server.
type RealServer struct {
	Address net.IP
	Port    uint16
	// Weight 0 takes no new connections: a removed endpoint whose
	// connections are draining.
	Weight int
	// ActiveConn and InactiveConn are the kernel's counts (read only).
	ActiveConn, InactiveConn int
}

// String is "ip:port", the real server's identity within its virtual
// server.
func (r *RealServer) String() string {
	return net.JoinHostPort(r.Address.String(), strconv.Itoa(int(r.Port)))
}

// Handle is the kernel's IPVS table.
type Handle interface {
	// VirtualServers lists every virtual server.
	VirtualServers() ([]*VirtualServer, error)
	AddVirtualServer(vs *VirtualServer) error
	// UpdateVirtualServer changes the scheduler, flags and timeout of an
	// existing virtual server, its real servers staying.
	UpdateVirtualServer(vs *VirtualServer) error
	// DeleteVirtualServer deletes vs and its real servers.
	DeleteVirtualServer(vs *VirtualServer) error
	// RealServers lists vs' real servers with their connection counts.
	RealServers(vs *VirtualServer) ([]*RealServer, error)
	AddRealServer(vs *VirtualServer, rs *RealServer) error
	// UpdateRealServer sets rs' weight.
	UpdateRealServer(vs *VirtualServer, rs *RealServer) error
	DeleteRealServer(vs *VirtualServer, rs *RealServer) error
	// ConfigureTimeouts is `ipvsadm --set`: zero keeps a timeout.
	ConfigureTimeouts(tcp, tcpFin, udp time.Duration) error
}

// SetSpec describes an ipset.
type SetSpec struct {
	Name string
	// Type is the ipset type: hash:ip, hash:ip,port, hash:ip,port,ip,
	// hash:ip,port,net or bitmap:port.
	Type    string
	Comment string
}

// SetChange adds or deletes one entry of a set.
type SetChange struct {
	Set, Entry string
	Delete     bool
}

// IPSet is the kernel's ipsets.
type IPSet interface {
	// EnsureSets creates the sets that do not exist.
	EnsureSets(sets []SetSpec) error
	// ListEntries lists set's entries as `ipset list` prints them.
	ListEntries(set string) ([]string, error)
	// Apply makes the changes, in one batch; adding a present entry or
	// deleting an absent one is no error.
	Apply(changes []SetChange) error
	// DestroySet deletes set if it exists (unreferenced).
	DestroySet(set string) error
}

// Dummy is the dummy interface the service addresses are bound to, and
// the node's other addresses.
type Dummy interface {
	// EnsureDevice creates the dummy interface dev unless it exists.
	EnsureDevice(dev string) error
	// DeleteDevice deletes dev if it exists.
	DeleteDevice(dev string) error
	// Addresses lists the IPv4 addresses bound to dev.
	Addresses(dev string) ([]net.IP, error)
	// AddAddress binds ip (/32) to dev; bound already is no error.
	AddAddress(dev string, ip net.IP) error
	// DeleteAddress unbinds ip from dev; not bound is no error.
	DeleteAddress(dev string, ip net.IP) error
	// NodeAddresses lists the node's IPv4 addresses on every interface but
	// dev, loopback excluded: where node ports listen.
	NodeAddresses(exceptDev string) ([]net.IP, error)
}
