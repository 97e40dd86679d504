// Package iptables is kube-proxy's iptables mode: each sync writes the
// rules of every service port into one iptables-restore --noflush input
// (nat and filter tables) with upstream's chain layout and chain names, so
// that tools and people who know kube-proxy's rules read skiff's the same.
package iptables

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/proxy/metrics"
	"github.com/skiff-dev/skiff/pkg/proxy/tracker"
)

const (
	tableNAT    = "nat"
	tableFilter = "filter"

	kubeServicesChain         = "KUBE-SERVICES"
	kubeExternalServicesChain = "KUBE-EXTERNAL-SERVICES"
	kubeNodePortsChain        = "KUBE-NODEPORTS"
	kubePostroutingChain      = "KUBE-POSTROUTING"
	kubeMarkMasqChain         = "KUBE-MARK-MASQ"
	kubeForwardChain          = "KUBE-FORWARD"
	kubeProxyFirewallChain    = "KUBE-PROXY-FIREWALL"
	// kubeletFirewallChain is upstream kubelet's anti-martian chain, which
	// kube-proxy keeps a copy of.
	kubeletFirewallChain = "KUBE-FIREWALL"

	svcChainPrefix = "KUBE-SVC-"
	svlChainPrefix = "KUBE-SVL-"
	fwChainPrefix  = "KUBE-FW-"
	extChainPrefix = "KUBE-EXT-"
	sepChainPrefix = "KUBE-SEP-"

	// largeClusterEndpoints is where rules lose their per-endpoint
	// comments, as upstream's large cluster mode.
	largeClusterEndpoints = 1000
	// fullSyncPeriod bounds how long partial syncs may go on.
	fullSyncPeriod = time.Hour
)

// Config is what a Proxier is set up with.
type Config struct {
	// NodeName is this node's: its endpoints are the local ones.
	NodeName string
	// NodeIPs are this node's, for loadBalancerSourceRanges that include it.
	NodeIPs []net.IP
	// ClusterCIDR is the pods' range (of this family): traffic to a
	// cluster IP from outside it is masqueraded. Nil: no such rule (as
	// upstream without a local-traffic detector).
	ClusterCIDR *net.IPNet
	// MasqueradeAll masquerades all traffic to cluster IPs.
	MasqueradeAll bool
	// MasqueradeBit is the fwmark bit of KUBE-MARK-MASQ (14: 0x4000).
	MasqueradeBit int
	// LocalhostNodePorts: NodePorts answer on 127.0.0.1 too (the caller
	// sets net.ipv4.conf.all.route_localnet=1); a DROP rule in KUBE-FIREWALL
	// keeps other hosts from using it.
	LocalhostNodePorts bool
	// NodePortAddresses limit NodePorts to these addresses; empty: every
	// local address.
	NodePortAddresses []net.IP
	// ConntrackTCPLiberal: nf_conntrack_tcp_be_liberal is set, so no DROP
	// rule for INVALID packets is needed.
	ConntrackTCPLiberal bool
}

// jumpRule is a rule in a built-in chain into one of ours.
type jumpRule struct {
	table, from, to, comment string
	extra                    []string
}

var jumpRules = []jumpRule{
	{tableFilter, "INPUT", kubeExternalServicesChain, "kubernetes externally-visible service portals", []string{"-m", "conntrack", "--ctstate", "NEW"}},
	{tableFilter, "FORWARD", kubeExternalServicesChain, "kubernetes externally-visible service portals", []string{"-m", "conntrack", "--ctstate", "NEW"}},
	{tableFilter, "INPUT", kubeNodePortsChain, "kubernetes health check service ports", nil},
	{tableFilter, "FORWARD", kubeServicesChain, "kubernetes service portals", []string{"-m", "conntrack", "--ctstate", "NEW"}},
	{tableFilter, "OUTPUT", kubeServicesChain, "kubernetes service portals", []string{"-m", "conntrack", "--ctstate", "NEW"}},
	{tableFilter, "FORWARD", kubeForwardChain, "kubernetes forwarding rules", nil},
	{tableFilter, "INPUT", kubeProxyFirewallChain, "kubernetes load balancer firewall", []string{"-m", "conntrack", "--ctstate", "NEW"}},
	{tableFilter, "OUTPUT", kubeProxyFirewallChain, "kubernetes load balancer firewall", []string{"-m", "conntrack", "--ctstate", "NEW"}},
	{tableFilter, "FORWARD", kubeProxyFirewallChain, "kubernetes load balancer firewall", []string{"-m", "conntrack", "--ctstate", "NEW"}},
	{tableNAT, "OUTPUT", kubeServicesChain, "kubernetes service portals", nil},
	{tableNAT, "PREROUTING", kubeServicesChain, "kubernetes service portals", nil},
	{tableNAT, "POSTROUTING", kubePostroutingChain, "kubernetes postrouting rules", nil},
}

// kubeletJumpRules are upstream kubelet's, ensured too.
var kubeletJumpRules = []jumpRule{
	{tableFilter, "INPUT", kubeletFirewallChain, "", nil},
	{tableFilter, "OUTPUT", kubeletFirewallChain, "", nil},
}

func (j jumpRule) args() []string {
	args := append([]string{}, j.extra...)
	if j.comment != "" {
		args = append(args, "-m", "comment", "--comment", j.comment)
	}
	return append(args, "-j", j.to)
}

// Proxier writes iptables rules for service ports. Sync is not
// concurrent-safe: one sync loop calls it.
type Proxier struct {
	ipt      Interface
	cfg      Config
	masqMark string

	mu           sync.Mutex
	needFullSync bool
	lastFullSync time.Time
	// probabilities[n] is 1/n as the statistic match's --probability.
	probabilities []string
	// lastRestore is the last input given to iptables-restore, for tests.
	lastRestore []byte
}

// NewProxier returns a proxier on ipt; the first Sync is a full one.
func NewProxier(ipt Interface, cfg Config) *Proxier {
	if cfg.MasqueradeBit == 0 {
		cfg.MasqueradeBit = 14
	}
	return &Proxier{
		ipt:          ipt,
		cfg:          cfg,
		masqMark:     fmt.Sprintf("%#x", 1<<uint(cfg.MasqueradeBit)),
		needFullSync: true,
	}
}

// ForceFullSync makes the next Sync rewrite every service's chains.
func (p *Proxier) ForceFullSync() {
	p.mu.Lock()
	p.needFullSync = true
	p.mu.Unlock()
}

// LastRestore is the input of the last iptables-restore.
func (p *Proxier) LastRestore() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastRestore
}

// portProtoHash is upstream's chain-name hash: sha256 of the service port
// name and protocol, base32, 16 characters (chain names are at most 28).
func portProtoHash(servicePortName, protocol string) string {
	hash := sha256.Sum256([]byte(servicePortName + protocol))
	return base32.StdEncoding.EncodeToString(hash[:])[:16]
}

func serviceChain(prefix, servicePortName, protocol string) string {
	return prefix + portProtoHash(servicePortName, protocol)
}

func endpointChain(servicePortName, protocol, endpoint string) string {
	hash := sha256.Sum256([]byte(servicePortName + protocol + endpoint))
	return sepChainPrefix + base32.StdEncoding.EncodeToString(hash[:])[:16]
}

func isServiceChain(chain string) bool {
	for _, p := range []string{svcChainPrefix, svlChainPrefix, sepChainPrefix, fwChainPrefix, extChainPrefix} {
		if strings.HasPrefix(chain, p) {
			return true
		}
	}
	return false
}

func (p *Proxier) probability(n int) string {
	for len(p.probabilities) <= n {
		i := len(p.probabilities)
		if i == 0 {
			p.probabilities = append(p.probabilities, "")
			continue
		}
		p.probabilities = append(p.probabilities, fmt.Sprintf("%0.10f", 1.0/float64(i)))
	}
	return p.probabilities[n]
}

// lines is an iptables-restore section being written.
type lines struct {
	buf   strings.Builder
	count int
	// discard: written only to be counted (a partial sync's unchanged
	// chains).
	discard bool
}

func (l *lines) write(words ...any) {
	l.count++
	if l.discard {
		return
	}
	first := true
	for _, w := range words {
		var parts []string
		switch v := w.(type) {
		case string:
			parts = []string{v}
		case []string:
			parts = v
		}
		for _, s := range parts {
			if !first {
				l.buf.WriteByte(' ')
			}
			first = false
			l.buf.WriteString(s)
		}
	}
	l.buf.WriteByte('\n')
}

func chainLine(chain string) string { return ":" + chain + " - [0:0]" }

// Sync writes the rules of services and their endpoints; result says which
// services changed since the last Sync, so that a partial sync rewrites
// only theirs.
func (p *Proxier) Sync(services tracker.ServicePortMap, endpoints tracker.EndpointsMap, result tracker.Result) (err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := time.Now()
	full := p.needFullSync || time.Since(p.lastFullSync) > fullSyncPeriod
	defer func() {
		metrics.SyncProxyRulesLatency.WithLabelValues(string(v1.IPv4Protocol)).Observe(metrics.SinceInSeconds(start))
		if err != nil {
			// The changes are consumed: only a full sync can catch up.
			p.needFullSync = true
			return
		}
		if full {
			p.lastFullSync = time.Now()
		}
		p.needFullSync = false
		klog.V(2).InfoS("SyncProxyRules complete", "elapsed", time.Since(start), "fullSync", full)
	}()

	if full {
		// Jumps from the built-in chains: not part of the restore input,
		// which must leave the rest of those chains alone.
		for _, j := range append(append([]jumpRule{}, jumpRules...), kubeletJumpRules...) {
			if err := p.ipt.EnsureChain(j.table, j.to); err != nil {
				return fmt.Errorf("ensuring chain %s/%s: %w", j.table, j.to, err)
			}
			if err := p.ipt.EnsureRuleFirst(j.table, j.from, j.args()...); err != nil {
				return fmt.Errorf("ensuring the jump %s/%s -> %s: %w", j.table, j.from, j.to, err)
			}
		}
	}

	data, stats := p.rules(services, endpoints, result, full)
	if err := p.ipt.Restore(data); err != nil {
		metrics.IPTablesRestoreFailuresTotal.WithLabelValues(string(v1.IPv4Protocol)).Inc()
		return err
	}
	p.lastRestore = data

	metrics.IPTablesRulesTotal.WithLabelValues(tableFilter, string(v1.IPv4Protocol)).Set(float64(stats.filterRules))
	metrics.IPTablesRulesTotal.WithLabelValues(tableNAT, string(v1.IPv4Protocol)).Set(float64(stats.natRules))
	metrics.SyncProxyRulesNoLocalEndpointsTotal.WithLabelValues("internal", string(v1.IPv4Protocol)).Set(float64(stats.noLocalInternal))
	metrics.SyncProxyRulesNoLocalEndpointsTotal.WithLabelValues("external", string(v1.IPv4Protocol)).Set(float64(stats.noLocalExternal))
	metrics.SyncProxyRulesLastTimestamp.WithLabelValues(string(v1.IPv4Protocol)).SetToCurrentTime()
	for name, times := range result.TriggerTimes {
		for _, at := range times {
			latency := metrics.SinceInSeconds(at)
			metrics.NetworkProgrammingLatency.WithLabelValues(string(v1.IPv4Protocol)).Observe(latency)
			klog.V(4).InfoS("Network programming", "endpoint", klog.KRef(name.Namespace, name.Name), "elapsed", latency)
		}
	}
	return nil
}

type syncStats struct {
	filterRules, natRules            int
	noLocalInternal, noLocalExternal int
}

// rules is the iptables-restore input for services and endpoints.
func (p *Proxier) rules(services tracker.ServicePortMap, endpoints tracker.EndpointsMap, result tracker.Result, full bool) ([]byte, syncStats) {
	var stats syncStats
	filterChains, filterRules := &lines{}, &lines{}
	natChains, natRules := &lines{}, &lines{}
	skippedChains, skippedRules := &lines{discard: true}, &lines{discard: true}

	for _, c := range []string{kubeServicesChain, kubeExternalServicesChain, kubeForwardChain, kubeNodePortsChain, kubeProxyFirewallChain} {
		filterChains.write(chainLine(c))
	}
	for _, c := range []string{kubeServicesChain, kubeNodePortsChain, kubePostroutingChain, kubeMarkMasqChain} {
		natChains.write(chainLine(c))
	}
	mark := p.masqMark + "/" + p.masqMark
	natRules.write("-A", kubePostroutingChain, "-m", "mark", "!", "--mark", mark, "-j", "RETURN")
	// Clear the mark, so that a packet going through again is not
	// masqueraded twice.
	natRules.write("-A", kubePostroutingChain, "-j", "MARK", "--xor-mark", p.masqMark)
	natRules.write("-A", kubePostroutingChain, "-m", "comment", "--comment", `"kubernetes service traffic requiring SNAT"`, "-j", "MASQUERADE", "--random-fully")
	natRules.write("-A", kubeMarkMasqChain, "-j", "MARK", "--or-mark", p.masqMark)

	if p.cfg.LocalhostNodePorts {
		// route_localnet opens 127.0.0.0/8 to other hosts: close it
		// (upstream's mitigation of issue 90259).
		filterChains.write(chainLine(kubeletFirewallChain))
		filterRules.write("-A", kubeletFirewallChain, "-m", "comment", "--comment", `"block incoming localnet connections"`,
			"-d", "127.0.0.0/8", "!", "-s", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP")
	}

	total := 0
	for name := range services {
		total += len(endpoints[name])
	}
	large := total > largeClusterEndpoints
	comment := func(args []string, text string) []string {
		if large {
			return args
		}
		return append(args, "-m", "comment", "--comment", text)
	}

	active := sets.New[string]()
	names := make([]tracker.ServicePortName, 0, len(services))
	for name := range services {
		names = append(names, name)
	}
	// A stable order: the same state gives the same input.
	sort.Slice(names, func(i, j int) bool {
		if names[i].String() != names[j].String() {
			return names[i].String() < names[j].String()
		}
		return names[i].Protocol < names[j].Protocol
	})

	for _, name := range names {
		svc := services[name]
		protocol := strings.ToLower(string(svc.Protocol))
		nameString := name.String()
		clusterChain := serviceChain(svcChainPrefix, nameString, protocol)
		localChain := serviceChain(svlChainPrefix, nameString, protocol)
		extChain := serviceChain(extChainPrefix, nameString, protocol)
		fwChain := serviceChain(fwChainPrefix, nameString, protocol)
		port := strconv.Itoa(svc.Port)
		clusterIP := svc.ClusterIP.String()

		clusterEndpoints, localEndpoints, reachable, hasEndpoints := tracker.Categorize(endpoints[name], svc)
		usesClusterChain := len(clusterEndpoints) > 0 && svc.UsesClusterEndpoints()
		usesLocalChain := len(localEndpoints) > 0 && svc.UsesLocalEndpoints()

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
		// The EXT chain is needed even without external endpoints: it
		// short-circuits traffic from this node and its pods.
		usesExtChain := hasEndpoints && svc.ExternallyAccessible()
		lbChain := extChain
		usesFWChain := hasEndpoints && len(svc.LoadBalancerVIPs) > 0 && len(svc.LoadBalancerSourceRanges) > 0
		if usesFWChain {
			lbChain = fwChain
		}

		var internalTarget, internalComment, externalTarget, externalComment string
		if !hasEndpoints {
			internalTarget, externalTarget = "REJECT", "REJECT"
			internalComment = fmt.Sprintf(`"%s has no endpoints"`, nameString)
			externalComment = internalComment
		} else {
			if !hasInternal {
				internalTarget = "DROP"
				internalComment = fmt.Sprintf(`"%s has no local endpoints"`, nameString)
				stats.noLocalInternal++
			}
			if !hasExternal {
				externalTarget = "DROP"
				externalComment = fmt.Sprintf(`"%s has no local endpoints"`, nameString)
				stats.noLocalExternal++
			}
		}
		match := []string{"-m", protocol, "-p", protocol}

		// The cluster IP.
		if hasInternal {
			natRules.write("-A", kubeServicesChain, "-m", "comment", "--comment", fmt.Sprintf(`"%s cluster IP"`, nameString),
				match, "-d", clusterIP, "--dport", port, "-j", internalChain)
		} else {
			filterRules.write("-A", kubeServicesChain, "-m", "comment", "--comment", internalComment,
				match, "-d", clusterIP, "--dport", port, "-j", internalTarget)
		}
		// External IPs.
		for _, ip := range svc.ExternalIPs {
			if hasEndpoints {
				natRules.write("-A", kubeServicesChain, "-m", "comment", "--comment", fmt.Sprintf(`"%s external IP"`, nameString),
					match, "-d", ip.String(), "--dport", port, "-j", extChain)
			}
			if !hasExternal {
				filterRules.write("-A", kubeExternalServicesChain, "-m", "comment", "--comment", externalComment,
					match, "-d", ip.String(), "--dport", port, "-j", externalTarget)
			}
		}
		// Load-balancer ingress IPs.
		for _, ip := range svc.LoadBalancerVIPs {
			if hasEndpoints {
				natRules.write("-A", kubeServicesChain, "-m", "comment", "--comment", fmt.Sprintf(`"%s loadbalancer IP"`, nameString),
					match, "-d", ip.String(), "--dport", port, "-j", lbChain)
			}
			if usesFWChain {
				filterRules.write("-A", kubeProxyFirewallChain, "-m", "comment", "--comment", fmt.Sprintf(`"%s traffic not accepted by %s"`, nameString, fwChain),
					match, "-d", ip.String(), "--dport", port, "-j", "DROP")
			}
		}
		if !hasExternal {
			for _, ip := range svc.LoadBalancerVIPs {
				filterRules.write("-A", kubeExternalServicesChain, "-m", "comment", "--comment", externalComment,
					match, "-d", ip.String(), "--dport", port, "-j", externalTarget)
			}
		}
		// The node port.
		if svc.NodePort != 0 {
			nodePort := strconv.Itoa(svc.NodePort)
			if hasEndpoints {
				natRules.write("-A", kubeNodePortsChain, "-m", "comment", "--comment", nameString,
					match, "--dport", nodePort, "-j", extChain)
			}
			if !hasExternal {
				filterRules.write("-A", kubeExternalServicesChain, "-m", "comment", "--comment", externalComment,
					"-m", "addrtype", "--dst-type", "LOCAL", match, "--dport", nodePort, "-j", externalTarget)
			}
		}
		// The health-check node port is served by this node whatever its
		// endpoints.
		if svc.HealthCheckNodePort != 0 {
			filterRules.write("-A", kubeNodePortsChain, "-m", "comment", "--comment", fmt.Sprintf(`"%s health check node port"`, nameString),
				"-m", "tcp", "-p", "tcp", "--dport", strconv.Itoa(svc.HealthCheckNodePort), "-j", "ACCEPT")
		}

		// The service's own chains: left as they are in a partial sync
		// when nothing of the service changed (still counted active).
		chains, rules := natChains, natRules
		if !full && !result.UpdatedServices.Has(name.NamespacedName) {
			chains, rules = skippedChains, skippedRules
		}

		if hasInternal {
			args := []string{"-A", internalChain, "-m", "comment", "--comment", fmt.Sprintf(`"%s cluster IP"`, nameString),
				"-m", protocol, "-p", protocol, "-d", clusterIP, "--dport", port}
			switch {
			case p.cfg.MasqueradeAll:
				rules.write(args, "-j", kubeMarkMasqChain)
			case p.cfg.ClusterCIDR != nil:
				// Off-cluster traffic to a cluster IP (a route to the
				// service range through this node) may leave the node to
				// the endpoint: masquerade it so the answer comes back.
				rules.write(args, "!", "-s", p.cfg.ClusterCIDR.String(), "-j", kubeMarkMasqChain)
			}
		}

		if usesExtChain {
			chains.write(chainLine(extChain))
			active.Insert(extChain)
			if !svc.ExternalPolicyLocal {
				// Endpoints on other nodes: masquerade, so that the
				// answer comes back through this node.
				rules.write("-A", extChain, "-m", "comment", "--comment", fmt.Sprintf(`"masquerade traffic for %s external destinations"`, nameString),
					"-j", kubeMarkMasqChain)
			} else {
				// Only local endpoints: the client IP is kept. Pods'
				// traffic to external destinations is subject to neither
				// policy (as if it went out to a load balancer and back).
				if p.cfg.ClusterCIDR != nil {
					rules.write("-A", extChain, "-m", "comment", "--comment", fmt.Sprintf(`"pod traffic for %s external destinations"`, nameString),
						"-s", p.cfg.ClusterCIDR.String(), "-j", clusterChain)
				}
				// This node's own traffic has a local source address:
				// masquerade it and use every endpoint.
				rules.write("-A", extChain, "-m", "comment", "--comment", fmt.Sprintf(`"masquerade LOCAL traffic for %s external destinations"`, nameString),
					"-m", "addrtype", "--src-type", "LOCAL", "-j", kubeMarkMasqChain)
				rules.write("-A", extChain, "-m", "comment", "--comment", fmt.Sprintf(`"route LOCAL traffic for %s external destinations"`, nameString),
					"-m", "addrtype", "--src-type", "LOCAL", "-j", clusterChain)
			}
			if hasExternal {
				rules.write("-A", extChain, "-j", externalPolicyChain)
			}
		}

		if usesFWChain {
			chains.write(chainLine(fwChain))
			active.Insert(fwChain)
			args := []string{"-A", fwChain, "-m", "comment", "--comment", fmt.Sprintf(`"%s loadbalancer IP"`, nameString)}
			fromNode := false
			for _, cidr := range svc.LoadBalancerSourceRanges {
				rules.write(args, "-s", cidr.String(), "-j", extChain)
				for _, ip := range p.cfg.NodeIPs {
					fromNode = fromNode || cidr.Contains(ip)
				}
			}
			// A VIP that is a local address makes this node's requests to
			// it come from the VIP.
			if fromNode {
				for _, ip := range svc.LoadBalancerVIPs {
					rules.write(args, "-s", ip.String(), "-j", extChain)
				}
			}
			// What falls through is not DNATed and so dropped by
			// KUBE-PROXY-FIREWALL.
			rules.write("-A", fwChain, "-m", "comment", "--comment", fmt.Sprintf(`"other traffic to %s will be dropped by KUBE-PROXY-FIREWALL"`, nameString))
		}

		if usesClusterChain {
			chains.write(chainLine(clusterChain))
			active.Insert(clusterChain)
			p.writeEndpointJumps(rules, nameString, protocol, svc, clusterChain, clusterEndpoints, comment)
		}
		if usesLocalChain {
			chains.write(chainLine(localChain))
			active.Insert(localChain)
			p.writeEndpointJumps(rules, nameString, protocol, svc, localChain, localEndpoints, comment)
		}

		for _, ep := range reachable {
			sep := endpointChain(nameString, protocol, ep.String())
			chains.write(chainLine(sep))
			active.Insert(sep)
			args := comment([]string{"-A", sep}, nameString)
			// Hairpin: an endpoint reaching itself through the service.
			rules.write(args, "-s", ep.IP, "-j", kubeMarkMasqChain)
			if svc.SessionAffinity == v1.ServiceAffinityClientIP {
				args = append(args, "-m", "recent", "--name", sep, "--set")
			}
			rules.write(args, "-m", protocol, "-p", protocol, "-j", "DNAT", "--to-destination", ep.String())
		}
	}

	// Chains of services or endpoints that are gone.
	deleted := 0
	if existing, err := p.ipt.ListChains(tableNAT); err != nil {
		klog.ErrorS(err, "Cannot list the nat table's chains: stale chains are left for the next sync")
	} else {
		sort.Strings(existing)
		for _, c := range existing {
			if isServiceChain(c) && !active.Has(c) {
				natChains.write(chainLine(c))
				natRules.write("-X", c)
				deleted++
			}
		}
	}

	// NodePorts last: after every service IP's rule.
	if len(p.cfg.NodePortAddresses) == 0 {
		dest := []string{"-m", "addrtype", "--dst-type", "LOCAL"}
		if !p.cfg.LocalhostNodePorts {
			dest = append(dest, "!", "-d", "127.0.0.0/8")
		}
		natRules.write("-A", kubeServicesChain, "-m", "comment", "--comment", `"kubernetes service nodeports; NOTE: this must be the last rule in this chain"`,
			dest, "-j", kubeNodePortsChain)
	} else {
		for _, ip := range p.cfg.NodePortAddresses {
			if ip.IsLoopback() && !p.cfg.LocalhostNodePorts {
				continue
			}
			natRules.write("-A", kubeServicesChain, "-m", "comment", "--comment", `"kubernetes service nodeports; NOTE: this must be the last rule in this chain"`,
				"-d", ip.String(), "-j", kubeNodePortsChain)
		}
	}

	if !p.cfg.ConntrackTCPLiberal {
		// INVALID packets would reset connections otherwise (upstream's
		// issues 74839 and 117924).
		filterRules.write("-A", kubeForwardChain, "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP")
	}
	// Forward what is marked for masquerade (NodePorts) even with a DROP
	// FORWARD policy, and the rest of those connections.
	filterRules.write("-A", kubeForwardChain, "-m", "comment", "--comment", `"kubernetes forwarding rules"`,
		"-m", "mark", "--mark", mark, "-j", "ACCEPT")
	filterRules.write("-A", kubeForwardChain, "-m", "comment", "--comment", `"kubernetes forwarding conntrack rule"`,
		"-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")

	var b strings.Builder
	b.WriteString("*filter\n")
	b.WriteString(filterChains.buf.String())
	b.WriteString(filterRules.buf.String())
	b.WriteString("COMMIT\n*nat\n")
	b.WriteString(natChains.buf.String())
	b.WriteString(natRules.buf.String())
	b.WriteString("COMMIT\n")
	stats.filterRules = filterRules.count
	stats.natRules = natRules.count + skippedRules.count - deleted
	klog.V(2).InfoS("Reloading service iptables data", "numServices", len(services), "numEndpoints", total,
		"numFilterRules", filterRules.count, "numNATChains", natChains.count, "numNATRules", natRules.count, "fullSync", full)
	return []byte(b.String()), stats
}

// writeEndpointJumps fills a service chain: affinity matches first, then
// one rule per endpoint with the probability that spreads evenly (1/n,
// 1/(n-1), ..., the last always matching).
func (p *Proxier) writeEndpointJumps(rules *lines, nameString, protocol string, svc *tracker.ServicePort, chain string, endpoints []*tracker.Endpoint, comment func([]string, string) []string) {
	if svc.SessionAffinity == v1.ServiceAffinityClientIP {
		for _, ep := range endpoints {
			sep := endpointChain(nameString, protocol, ep.String())
			args := comment([]string{"-A", chain}, fmt.Sprintf(`"%s -> %s"`, nameString, ep.String()))
			rules.write(args, "-m", "recent", "--name", sep, "--rcheck", "--seconds", strconv.Itoa(svc.StickyMaxAgeSeconds), "--reap", "-j", sep)
		}
	}
	n := len(endpoints)
	for i, ep := range endpoints {
		sep := endpointChain(nameString, protocol, ep.String())
		args := comment([]string{"-A", chain}, fmt.Sprintf(`"%s -> %s"`, nameString, ep.String()))
		if i < n-1 {
			args = append(args, "-m", "statistic", "--mode", "random", "--probability", p.probability(n-i))
		}
		rules.write(args, "-j", sep)
	}
}
