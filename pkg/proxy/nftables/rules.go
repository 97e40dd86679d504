package nftables

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/skiff-dev/skiff/pkg/proxy/tracker"
)

// The table's fixed objects, named as upstream's.
const (
	filterPreroutingPreDNATChain = "filter-prerouting-pre-dnat"
	filterOutputPreDNATChain     = "filter-output-pre-dnat"
	filterInputChain             = "filter-input"
	filterForwardChain           = "filter-forward"
	filterOutputChain            = "filter-output"
	natPreroutingChain           = "nat-prerouting"
	natOutputChain               = "nat-output"
	natPostroutingChain          = "nat-postrouting"

	servicesChain               = "services"
	serviceEndpointsCheckChain  = "service-endpoints-check"
	nodePortEndpointsCheckChain = "nodeport-endpoints-check"
	clusterIPsCheckChain        = "cluster-ips-check"
	firewallCheckChain          = "firewall-check"
	masqueradingChain           = "masquerading"
	rejectChain                 = "reject-chain"

	serviceIPsMap          = "service-ips"
	serviceNodePortsMap    = "service-nodeports"
	noEndpointServicesMap  = "no-endpoint-services"
	noEndpointNodePortsMap = "no-endpoint-nodeports"
	firewallIPsMap         = "firewall-ips"
	clusterIPsSet          = "cluster-ips"
	nodePortIPsSet         = "nodeport-ips"
	hairpinSet             = "hairpin-connections"

	// Per-service chains and sets: prefix + a name base with a "/" in
	// it, which no fixed object has.
	clusterPolicyPrefix = "service-"
	localPolicyPrefix   = "local-"
	externalPrefix      = "external-"
	firewallPrefix      = "firewall-"
	endpointPrefix      = "endpoint-"
	affinityPrefix      = "affinity-"

	// nameBaseMax leaves room for the longest prefix.
	nameBaseMax = knftables.NameLengthMax - 16
)

type baseChain struct {
	name     string
	kind     knftables.BaseChainType
	hook     knftables.BaseChainHook
	priority knftables.BaseChainPriority
}

var baseChains = []baseChain{
	// Before DNAT: load-balancer source ranges see the original address.
	{filterPreroutingPreDNATChain, knftables.FilterType, knftables.PreroutingHook, knftables.DNATPriority + "-10"},
	{filterOutputPreDNATChain, knftables.FilterType, knftables.OutputHook, knftables.DNATPriority + "-10"},
	{filterInputChain, knftables.FilterType, knftables.InputHook, knftables.FilterPriority},
	{filterForwardChain, knftables.FilterType, knftables.ForwardHook, knftables.FilterPriority},
	{filterOutputChain, knftables.FilterType, knftables.OutputHook, knftables.FilterPriority},
	{natPreroutingChain, knftables.NATType, knftables.PreroutingHook, knftables.DNATPriority},
	{natOutputChain, knftables.NATType, knftables.OutputHook, knftables.DNATPriority},
	{natPostroutingChain, knftables.NATType, knftables.PostroutingHook, knftables.SNATPriority},
}

type jump struct{ from, match, to string }

var jumps = []jump{
	// Rejects happen in filter hooks: old kernels refuse reject in prerouting.
	{filterInputChain, "ct state new", nodePortEndpointsCheckChain},
	{filterInputChain, "ct state new", serviceEndpointsCheckChain},
	{filterForwardChain, "ct state new", serviceEndpointsCheckChain},
	{filterOutputChain, "ct state new", serviceEndpointsCheckChain},
	{filterPreroutingPreDNATChain, "ct state new", firewallCheckChain},
	{filterOutputPreDNATChain, "ct state new", firewallCheckChain},
	{natOutputChain, "", servicesChain},
	{natPreroutingChain, "", servicesChain},
	{natPostroutingChain, "", masqueradingChain},
	{filterForwardChain, "ct state new", clusterIPsCheckChain},
	{filterOutputChain, "ct state new", clusterIPsCheckChain},
}

// containers are the sets and maps whose elements services own.
var containers = []struct {
	name, kind, keyType, comment string
}{
	{clusterIPsSet, "set", "ipv4_addr", "Active ClusterIPs"},
	{hairpinSet, "set", "ipv4_addr . ipv4_addr . inet_proto . inet_service", "service hairpin connections"},
	{serviceIPsMap, "map", "ipv4_addr . inet_proto . inet_service : verdict", "ClusterIP, ExternalIP and LoadBalancer IP traffic"},
	{serviceNodePortsMap, "map", "inet_proto . inet_service : verdict", "NodePort traffic"},
	{noEndpointServicesMap, "map", "ipv4_addr . inet_proto . inet_service : verdict", "vmap to drop or reject packets to services with no endpoints"},
	{noEndpointNodePortsMap, "map", "inet_proto . inet_service : verdict", "vmap to drop or reject packets to service nodeports with no endpoints"},
	{firewallIPsMap, "map", "ipv4_addr . inet_proto . inet_service : verdict", "destinations that are subject to LoadBalancerSourceRanges"},
}

// nameBase is upstream's readable, unique name base: 8 characters of a
// hash, then the name itself (truncated only past nameBaseMax).
func nameBase(name string) string {
	hash := sha256.Sum256([]byte(name))
	base := base32.StdEncoding.EncodeToString(hash[:])[:8] + "-" + name
	if len(base) > nameBaseMax {
		base = base[:nameBaseMax-3] + "..."
	}
	return base
}

func servicePortBase(name tracker.ServicePortName, protocol string) string {
	return nameBase(fmt.Sprintf("%s/%s/%s/%s", name.Namespace, name.Name, protocol, name.Port))
}

func endpointBase(name tracker.ServicePortName, protocol string, ep *tracker.Endpoint) string {
	// Chain names may not have ":" (IPv6).
	ip := strings.ReplaceAll(ep.IP, ":", ".")
	return nameBase(fmt.Sprintf("%s/%s/%s/%s__%s/%d", name.Namespace, name.Name, protocol, name.Port, ip, ep.Port))
}

// isServiceObject: a per-service chain or affinity set.
func isServiceObject(name string) bool { return strings.Contains(name, "/") }

// element is one set or map element a service wants.
type element struct {
	container string
	isMap     bool
	key       []string
	value     []string
	comment   string
}

func (e element) id() elementID {
	return elementID{e.container, strings.Join(e.key, " . ")}
}

func (e element) obj() *knftables.Element {
	el := &knftables.Element{Key: e.key, Value: e.value}
	if e.isMap {
		el.Map = e.container
	} else {
		el.Set = e.container
	}
	if e.comment != "" {
		el.Comment = ptr(truncateComment(e.comment))
	}
	return el
}

type elementID struct{ container, key string }

type rule struct{ text, comment string }

type chain struct {
	name  string
	rules []rule
}

type affinitySet struct {
	name    string
	timeout time.Duration
}

// serviceRules is everything of one Service (all its ports) in the table.
type serviceRules struct {
	elements     []element
	chains       []chain
	affinitySets []affinitySet
	// noLocalInternal/External count ports with a Local policy and no
	// local endpoint (a metric).
	noLocalInternal, noLocalExternal int
}

func ptr[T any](v T) *T { return &v }

func truncateComment(s string) string {
	if len(s) > knftables.CommentLengthMax {
		return s[:knftables.CommentLengthMax]
	}
	return s
}

// portRules adds the rules of one service port to r.
func (p *Proxier) portRules(r *serviceRules, name tracker.ServicePortName, svc *tracker.ServicePort, eps []*tracker.Endpoint) {
	protocol := strings.ToLower(string(svc.Protocol))
	nameString := name.String()
	port := strconv.Itoa(svc.Port)
	base := servicePortBase(name, protocol)
	clusterChain := clusterPolicyPrefix + base
	localChain := localPolicyPrefix + base
	extChain := externalPrefix + base
	fwChain := firewallPrefix + base

	clusterEndpoints, localEndpoints, reachable, hasEndpoints := tracker.Categorize(eps, svc)
	usesClusterChain := len(clusterEndpoints) > 0 && svc.UsesClusterEndpoints()
	usesLocalChain := len(localEndpoints) > 0 && svc.UsesLocalEndpoints()
	affinity := svc.SessionAffinity == v1.ServiceAffinityClientIP

	internalChain, hasInternal := clusterChain, hasEndpoints
	if svc.InternalPolicyLocal {
		internalChain = localChain
		hasInternal = hasInternal && len(localEndpoints) > 0
	}
	externalPolicyChain, hasExternal := clusterChain, hasEndpoints
	if svc.ExternalPolicyLocal {
		externalPolicyChain = localChain
		hasExternal = hasExternal && len(localEndpoints) > 0
	}
	// The external chain is needed without external endpoints too: it
	// short-circuits this node's and its pods' traffic.
	usesExtChain := hasEndpoints && svc.ExternallyAccessible()
	usesFWChain := len(svc.LoadBalancerVIPs) > 0 && len(svc.LoadBalancerSourceRanges) > 0

	var internalVerdict, externalVerdict string
	if !hasEndpoints {
		internalVerdict, externalVerdict = "goto "+rejectChain, "goto "+rejectChain
	} else {
		if !hasInternal {
			internalVerdict = "drop"
			r.noLocalInternal++
		}
		if !hasExternal {
			externalVerdict = "drop"
			r.noLocalExternal++
		}
	}

	add := func(container string, isMap bool, key []string, value string, comment string) {
		e := element{container: container, isMap: isMap, key: key, comment: comment}
		if isMap {
			e.value = []string{value}
		}
		r.elements = append(r.elements, e)
	}
	ipKey := func(ip net.IP) []string { return []string{ip.String(), protocol, port} }

	add(clusterIPsSet, false, []string{svc.ClusterIP.String()}, "", "")
	if hasInternal {
		add(serviceIPsMap, true, ipKey(svc.ClusterIP), "goto "+internalChain, "")
	} else {
		add(noEndpointServicesMap, true, ipKey(svc.ClusterIP), internalVerdict, nameString)
	}
	for _, ip := range svc.ExternalIPs {
		if hasEndpoints {
			add(serviceIPsMap, true, ipKey(ip), "goto "+extChain, "")
		}
		if !hasExternal {
			add(noEndpointServicesMap, true, ipKey(ip), externalVerdict, nameString)
		}
	}
	for _, ip := range svc.LoadBalancerVIPs {
		if hasEndpoints {
			add(serviceIPsMap, true, ipKey(ip), "goto "+extChain, "")
		}
		if usesFWChain {
			add(firewallIPsMap, true, ipKey(ip), "goto "+fwChain, "")
		}
		if !hasExternal {
			add(noEndpointServicesMap, true, ipKey(ip), externalVerdict, nameString)
		}
	}
	if svc.NodePort != 0 {
		key := []string{protocol, strconv.Itoa(svc.NodePort)}
		if hasEndpoints {
			// NodePorts are not subject to loadBalancerSourceRanges
			// (upstream's behaviour, kept).
			add(serviceNodePortsMap, true, key, "goto "+extChain, "")
		}
		if !hasExternal {
			add(noEndpointNodePortsMap, true, key, externalVerdict, nameString)
		}
	}
	for _, ep := range reachable {
		// A local endpoint reaching itself through the service is
		// masqueraded, or it would answer itself directly.
		if ep.Local {
			add(hairpinSet, false, []string{ep.IP, ep.IP, protocol, strconv.Itoa(ep.Port)}, "", "")
		}
	}

	if usesExtChain {
		c := chain{name: extChain}
		if !svc.ExternalPolicyLocal {
			// Endpoints may be on other nodes: masquerade, so that the
			// answer comes back through this node.
			c.rules = append(c.rules, rule{p.masqRule, "masquerade"})
		} else {
			// Only local endpoints: the client IP is kept. Pods' traffic
			// to external destinations is subject to neither policy (as
			// if it went out to a load balancer and back).
			if p.cfg.ClusterCIDR != nil {
				c.rules = append(c.rules, rule{"ip saddr " + p.cfg.ClusterCIDR.String() + " goto " + clusterChain, "short-circuit pod traffic"})
			}
			// This node's own traffic has a local source address (the
			// external IP may be one of its own): masquerade it and use
			// every endpoint.
			c.rules = append(c.rules,
				rule{"fib saddr type local " + p.masqRule, "masquerade local traffic"},
				rule{"fib saddr type local goto " + clusterChain, "short-circuit local traffic"})
		}
		if hasExternal {
			c.rules = append(c.rules, rule{"goto " + externalPolicyChain, ""})
		}
		r.chains = append(r.chains, c)
	}

	if usesFWChain {
		var sources []string
		fromNode := false
		for _, cidr := range svc.LoadBalancerSourceRanges {
			sources = append(sources, cidr.String())
			for _, ip := range p.cfg.NodeIPs {
				fromNode = fromNode || cidr.Contains(ip)
			}
		}
		// A VIP that is a local address makes this node's requests to it
		// come from the VIP.
		if fromNode {
			for _, ip := range svc.LoadBalancerVIPs {
				sources = append(sources, ip.String())
			}
		}
		r.chains = append(r.chains, chain{name: fwChain, rules: []rule{{"ip saddr != { " + strings.Join(sources, ", ") + " } drop", ""}}})
	}

	endpointChain := func(ep *tracker.Endpoint) string { return endpointPrefix + endpointBase(name, protocol, ep) }
	affinitySetName := func(ep *tracker.Endpoint) string { return affinityPrefix + endpointBase(name, protocol, ep) }
	policyChain := func(chainName string, endpoints []*tracker.Endpoint) chain {
		c := chain{name: chainName}
		if affinity {
			// A client seen recently goes to its endpoint again; others
			// are spread, and remembered by their endpoint's chain.
			var targets []string
			for i, ep := range endpoints {
				c.rules = append(c.rules, rule{"ip saddr @" + affinitySetName(ep) + " goto " + endpointChain(ep), ""})
				targets = append(targets, fmt.Sprintf("%d : goto %s", i, endpointChain(ep)))
			}
			c.rules = append(c.rules, rule{fmt.Sprintf("numgen random mod %d vmap { %s }", len(endpoints), strings.Join(targets, " , ")), ""})
			return c
		}
		if len(endpoints) == 1 {
			c.rules = append(c.rules, rule{"meta l4proto " + protocol + " dnat to " + endpoints[0].String(), ""})
			return c
		}
		var targets []string
		for i, ep := range endpoints {
			targets = append(targets, fmt.Sprintf("%d : %s . %d", i, ep.IP, ep.Port))
		}
		c.rules = append(c.rules, rule{fmt.Sprintf("meta l4proto %s dnat ip addr . port to numgen random mod %d map { %s }",
			protocol, len(endpoints), strings.Join(targets, " , ")), ""})
		return c
	}
	if usesClusterChain {
		r.chains = append(r.chains, policyChain(clusterChain, clusterEndpoints))
	}
	if usesLocalChain {
		r.chains = append(r.chains, policyChain(localChain, localEndpoints))
	}
	if affinity {
		for _, ep := range reachable {
			r.affinitySets = append(r.affinitySets, affinitySet{name: affinitySetName(ep), timeout: time.Duration(svc.StickyMaxAgeSeconds) * time.Second})
			r.chains = append(r.chains, chain{name: endpointChain(ep), rules: []rule{
				{"update @" + affinitySetName(ep) + " { ip saddr }", ""},
				{"meta l4proto " + protocol + " dnat to " + ep.String(), ""},
			}})
		}
	}
}
