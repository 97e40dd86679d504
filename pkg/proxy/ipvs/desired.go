package ipvs

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/proxy/tracker"
)

// The ipsets, with upstream's names, types and comments.
const (
	setLoopBack            = "KUBE-LOOP-BACK"
	setClusterIP           = "KUBE-CLUSTER-IP"
	setExternalIP          = "KUBE-EXTERNAL-IP"
	setExternalIPLocal     = "KUBE-EXTERNAL-IP-LOCAL"
	setLoadBalancer        = "KUBE-LOAD-BALANCER"
	setLoadBalancerFW      = "KUBE-LOAD-BALANCER-FW"
	setLoadBalancerLocal   = "KUBE-LOAD-BALANCER-LOCAL"
	setLoadBalancerSrcIP   = "KUBE-LOAD-BALANCER-SOURCE-IP"
	setLoadBalancerSrcCIDR = "KUBE-LOAD-BALANCER-SOURCE-CIDR"
	setNodePortTCP         = "KUBE-NODE-PORT-TCP"
	setNodePortLocalTCP    = "KUBE-NODE-PORT-LOCAL-TCP"
	setNodePortUDP         = "KUBE-NODE-PORT-UDP"
	setNodePortLocalUDP    = "KUBE-NODE-PORT-LOCAL-UDP"
	setNodePortSCTP        = "KUBE-NODE-PORT-SCTP-HASH"
	setNodePortLocalSCTP   = "KUBE-NODE-PORT-LOCAL-SCTP-HASH"
	setHealthCheckNodePort = "KUBE-HEALTH-CHECK-NODE-PORT"
	setIPVSIPs             = "KUBE-IPVS-IPS"

	typeHashIP        = "hash:ip"
	typeHashIPPort    = "hash:ip,port"
	typeHashIPPortIP  = "hash:ip,port,ip"
	typeHashIPPortNet = "hash:ip,port,net"
	typeBitmapPort    = "bitmap:port"
)

// Sets are every ipset the proxier uses.
var Sets = []SetSpec{
	{setLoopBack, typeHashIPPortIP, "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose"},
	{setClusterIP, typeHashIPPort, "Kubernetes service cluster ip + port for masquerade purpose"},
	{setExternalIP, typeHashIPPort, "Kubernetes service external ip + port for masquerade and filter purpose"},
	{setExternalIPLocal, typeHashIPPort, "Kubernetes service external ip + port with externalTrafficPolicy=local"},
	{setLoadBalancer, typeHashIPPort, "Kubernetes service lb portal"},
	{setLoadBalancerFW, typeHashIPPort, "Kubernetes service load balancer ip + port for load balancer with sourceRange"},
	{setLoadBalancerLocal, typeHashIPPort, "Kubernetes service load balancer ip + port with externalTrafficPolicy=local"},
	{setLoadBalancerSrcIP, typeHashIPPortIP, "Kubernetes service load balancer ip + port + source IP for packet filter purpose"},
	{setLoadBalancerSrcCIDR, typeHashIPPortNet, "Kubernetes service load balancer ip + port + source cidr for packet filter purpose"},
	{setNodePortTCP, typeBitmapPort, "Kubernetes nodeport TCP port for masquerade purpose"},
	{setNodePortLocalTCP, typeBitmapPort, "Kubernetes nodeport TCP port with externalTrafficPolicy=local"},
	{setNodePortUDP, typeBitmapPort, "Kubernetes nodeport UDP port for masquerade purpose"},
	{setNodePortLocalUDP, typeBitmapPort, "Kubernetes nodeport UDP port with externalTrafficPolicy=local"},
	{setNodePortSCTP, typeHashIPPort, "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'"},
	{setNodePortLocalSCTP, typeHashIPPort, "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'"},
	{setHealthCheckNodePort, typeBitmapPort, "Kubernetes health check node port"},
	{setIPVSIPs, typeHashIP, "Addresses on the ipvs interface"},
}

func setComment(name string) string {
	for _, s := range Sets {
		if s.Name == name {
			return s.Comment
		}
	}
	return ""
}

// Set entries as `ipset list` prints them.
func entryIPPort(ip net.IP, protocol string, port int) string {
	return ip.String() + "," + protocol + ":" + strconv.Itoa(port)
}

func entryIPPortIP(ip net.IP, protocol string, port int, ip2 net.IP) string {
	return entryIPPort(ip, protocol, port) + "," + ip2.String()
}

func entryIPPortNet(ip net.IP, protocol string, port int, cidr *net.IPNet) string {
	// ipset prints a host (/32) net as a bare address.
	if ones, bits := cidr.Mask.Size(); ones == bits {
		return entryIPPort(ip, protocol, port) + "," + cidr.IP.String()
	}
	return entryIPPort(ip, protocol, port) + "," + cidr.String()
}

// desiredServer is one virtual server to have, with its real servers.
type desiredServer struct {
	vs      *VirtualServer
	service types.NamespacedName
	dests   []*RealServer
}

// lbTarget is a load-balancer IP:port this node must not reach (its
// source ranges leave the node out).
type lbTarget struct {
	ip       net.IP
	protocol string
	port     int
}

// desiredState is what one sync makes the kernel hold.
type desiredState struct {
	servers map[string]*desiredServer
	// sets maps every set (all of Sets) to its entries.
	sets map[string]sets.Set[string]
	// bind are the addresses for the dummy interface.
	bind sets.Set[string]
	// lbNoNodeAccess get a DROP for traffic from the node itself.
	lbNoNodeAccess []lbTarget
	// noLocalInternal/External: services with a Local policy but no
	// local endpoints (for the metric).
	noLocalInternal, noLocalExternal sets.Set[string]
}

// desired computes the kernel state for services and endpoints; nodeIPs
// are where node ports listen, nodeAddrs every local address outside the
// dummy interface (an external or load-balancer IP among them is not
// bound to it).
func (p *Proxier) desired(services tracker.ServicePortMap, endpoints tracker.EndpointsMap, nodeIPs []net.IP, nodeAddrs sets.Set[string]) *desiredState {
	d := &desiredState{
		servers:         map[string]*desiredServer{},
		sets:            map[string]sets.Set[string]{},
		bind:            sets.New[string](),
		noLocalInternal: sets.New[string](),
		noLocalExternal: sets.New[string](),
	}
	for _, s := range Sets {
		d.sets[s.Name] = sets.New[string]()
	}
	type namedPort struct {
		name tracker.ServicePortName
		str  string
	}
	names := make([]namedPort, 0, len(services))
	for name := range services {
		names = append(names, namedPort{name, name.String() + "/" + string(name.Protocol)})
	}
	// A stable order: when two ports claim the same address, the first
	// keeps it.
	sort.Slice(names, func(i, j int) bool { return names[i].str < names[j].str })

	for _, np := range names {
		name := np.name
		svc := services[name]
		protocol := strings.ToLower(string(svc.Protocol))
		eps := endpoints[name]

		// Hairpin: a local endpoint reaching itself through the service
		// is masqueraded.
		for _, e := range eps {
			if !e.Local {
				continue
			}
			ip := net.ParseIP(e.IP).To4()
			if ip == nil || e.Port <= 0 {
				continue
			}
			d.sets[setLoopBack].Insert(entryIPPortIP(ip, protocol, e.Port, ip))
		}

		cluster, local, _, anyEndpoints := tracker.Categorize(eps, svc)
		// dests picks a virtual server's endpoints as upstream's
		// syncEndpoint: with a Local policy this node's, and when it has
		// none, the cluster's (so that local pods still reach the
		// service; upstream's PR 97081).
		dests := func(onlyLocal bool) []*RealServer {
			chosen := cluster
			if onlyLocal {
				if len(local) > 0 {
					chosen = local
				} else if anyEndpoints {
					if svc.InternalPolicyLocal {
						d.noLocalInternal.Insert(name.NamespacedName.String())
					}
					if svc.ExternalPolicyLocal {
						d.noLocalExternal.Insert(name.NamespacedName.String())
					}
				}
			}
			out := make([]*RealServer, 0, len(chosen))
			for _, e := range chosen {
				ip := net.ParseIP(e.IP).To4()
				if ip == nil || e.Port <= 0 || e.Port > 65535 {
					continue
				}
				out = append(out, &RealServer{Address: ip, Port: uint16(e.Port), Weight: 1})
			}
			return out
		}
		add := func(ip net.IP, port int, onlyLocal, bind bool) {
			if port <= 0 || port > 65535 {
				return
			}
			vs := p.virtualServer(ip, svc, port)
			key := vs.String()
			if other, taken := d.servers[key]; taken {
				klog.V(2).InfoS("Address already used by another service port", "virtualServer", key, "servicePort", name.String(), "service", other.service.String())
				return
			}
			d.servers[key] = &desiredServer{vs: vs, service: name.NamespacedName, dests: dests(onlyLocal)}
			if bind {
				d.bind.Insert(ip.String())
			}
		}

		clusterIP := svc.ClusterIP.To4()
		if clusterIP == nil {
			continue
		}
		d.sets[setClusterIP].Insert(entryIPPort(clusterIP, protocol, svc.Port))
		add(clusterIP, svc.Port, svc.InternalPolicyLocal, true)

		for _, ip := range svc.ExternalIPs {
			if ip = ip.To4(); ip == nil {
				continue
			}
			if svc.ExternalPolicyLocal {
				d.sets[setExternalIPLocal].Insert(entryIPPort(ip, protocol, svc.Port))
			} else {
				// Masqueraded: the endpoint may be on another node.
				d.sets[setExternalIP].Insert(entryIPPort(ip, protocol, svc.Port))
			}
			// An address the node has already must stay where it is.
			add(ip, svc.Port, svc.ExternalPolicyLocal, !nodeAddrs.Has(ip.String()))
		}

		for _, ip := range svc.LoadBalancerVIPs {
			if ip = ip.To4(); ip == nil {
				continue
			}
			entry := entryIPPort(ip, protocol, svc.Port)
			d.sets[setLoadBalancer].Insert(entry)
			if svc.ExternalPolicyLocal {
				d.sets[setLoadBalancerLocal].Insert(entry)
			}
			if len(svc.LoadBalancerSourceRanges) > 0 {
				d.sets[setLoadBalancerFW].Insert(entry)
				fromNode := false
				for _, cidr := range svc.LoadBalancerSourceRanges {
					d.sets[setLoadBalancerSrcCIDR].Insert(entryIPPortNet(ip, protocol, svc.Port, cidr))
					for _, nodeIP := range p.cfg.NodeIPs {
						fromNode = fromNode || cidr.Contains(nodeIP)
					}
				}
				if fromNode {
					// Requests from the node to a VIP bound here come from
					// the VIP.
					d.sets[setLoadBalancerSrcIP].Insert(entryIPPortIP(ip, protocol, svc.Port, ip))
				} else {
					d.lbNoNodeAccess = append(d.lbNoNodeAccess, lbTarget{ip: ip, protocol: protocol, port: svc.Port})
				}
			}
			add(ip, svc.Port, svc.ExternalPolicyLocal, !nodeAddrs.Has(ip.String()))
		}

		if svc.NodePort != 0 && len(nodeIPs) > 0 {
			var set, localSet string
			var entries []string
			switch svc.Protocol {
			case v1.ProtocolTCP:
				set, localSet = setNodePortTCP, setNodePortLocalTCP
				entries = []string{strconv.Itoa(svc.NodePort)}
			case v1.ProtocolUDP:
				set, localSet = setNodePortUDP, setNodePortLocalUDP
				entries = []string{strconv.Itoa(svc.NodePort)}
			case v1.ProtocolSCTP:
				// No bitmap for SCTP: one entry per node address.
				set, localSet = setNodePortSCTP, setNodePortLocalSCTP
				for _, ip := range nodeIPs {
					entries = append(entries, entryIPPort(ip, protocol, svc.NodePort))
				}
			}
			if set != "" {
				d.sets[set].Insert(entries...)
				if svc.ExternalPolicyLocal {
					d.sets[localSet].Insert(entries...)
				}
			}
			for _, ip := range nodeIPs {
				add(ip, svc.NodePort, svc.ExternalPolicyLocal, false)
			}
		}

		if svc.HealthCheckNodePort != 0 {
			d.sets[setHealthCheckNodePort].Insert(strconv.Itoa(svc.HealthCheckNodePort))
		}
	}
	d.sets[setIPVSIPs] = d.bind.Clone()
	return d
}

// virtualServer is the virtual server of svc at ip:port.
func (p *Proxier) virtualServer(ip net.IP, svc *tracker.ServicePort, port int) *VirtualServer {
	vs := &VirtualServer{Address: ip, Protocol: string(svc.Protocol), Port: uint16(port), Scheduler: p.cfg.Scheduler}
	if svc.SessionAffinity == v1.ServiceAffinityClientIP {
		vs.Flags |= FlagPersistent
		vs.Timeout = uint32(svc.StickyMaxAgeSeconds)
	}
	if p.cfg.Scheduler == "mh" {
		vs.Flags |= FlagSourceHash
	}
	return vs
}

// validScheduler: one of the kernel's IPVS schedulers.
func validScheduler(s string) error {
	switch s {
	case "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos":
		return nil
	}
	return fmt.Errorf("unknown IPVS scheduler %q: rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh or twos", s)
}
