package ipvs

import (
	"fmt"
	"strconv"
	"strings"
)

// The chains, upstream's ipvs mode's.
const (
	tableNAT    = "nat"
	tableFilter = "filter"

	chainServices           = "KUBE-SERVICES"
	chainPostrouting        = "KUBE-POSTROUTING"
	chainNodePort           = "KUBE-NODE-PORT"
	chainLoadBalancer       = "KUBE-LOAD-BALANCER"
	chainMarkMasq           = "KUBE-MARK-MASQ"
	chainForward            = "KUBE-FORWARD"
	chainProxyFirewall      = "KUBE-PROXY-FIREWALL"
	chainSourceRangesFW     = "KUBE-SOURCE-RANGES-FIREWALL"
	chainIPVSFilter         = "KUBE-IPVS-FILTER"
	chainIPVSOutFilter      = "KUBE-IPVS-OUT-FILTER"
	loopbackCIDR            = "127.0.0.0/8"
	commentServicePortals   = "kubernetes service portals"
	commentPostrouting      = "kubernetes postrouting rules"
	commentForward          = "kubernetes forwarding rules"
	commentHealthCheck      = "kubernetes health check rules"
	commentProxyFirewall    = "kube-proxy firewall rules"
	commentIPVSAccessFilter = "kubernetes ipvs access filter"
)

// natChains and filterChains are ours, rewritten whole by each sync.
var (
	natChains    = []string{chainServices, chainPostrouting, chainNodePort, chainLoadBalancer, chainMarkMasq}
	filterChains = []string{chainForward, chainNodePort, chainProxyFirewall, chainSourceRangesFW, chainIPVSFilter, chainIPVSOutFilter}
)

// jump is a rule in a built-in chain into one of ours.
type jump struct{ table, from, to, comment string }

var jumps = []jump{
	{tableNAT, "OUTPUT", chainServices, commentServicePortals},
	{tableNAT, "PREROUTING", chainServices, commentServicePortals},
	{tableNAT, "POSTROUTING", chainPostrouting, commentPostrouting},
	{tableFilter, "FORWARD", chainForward, commentForward},
	{tableFilter, "INPUT", chainNodePort, commentHealthCheck},
	{tableFilter, "INPUT", chainProxyFirewall, commentProxyFirewall},
	{tableFilter, "FORWARD", chainProxyFirewall, commentProxyFirewall},
	{tableFilter, "INPUT", chainIPVSFilter, commentIPVSAccessFilter},
	{tableFilter, "OUTPUT", chainIPVSOutFilter, commentIPVSAccessFilter},
}

func (j jump) args() []string {
	return []string{"-m", "comment", "--comment", j.comment, "-j", j.to}
}

// ensureJumps makes our chains and the jumps into them (not part of the
// restore input, which must leave the rest of the built-in chains alone).
func (p *Proxier) ensureJumps() error {
	for _, j := range jumps {
		if err := p.ipt.EnsureChain(j.table, j.to); err != nil {
			return fmt.Errorf("ensuring chain %s/%s: %w", j.table, j.to, err)
		}
		if err := p.ipt.EnsureRuleFirst(j.table, j.from, j.args()...); err != nil {
			return fmt.Errorf("ensuring the jump %s/%s -> %s: %w", j.table, j.from, j.to, err)
		}
	}
	return nil
}

// setJump is a rule matching a set, written when the set has entries.
type setJump struct {
	set, table, from, to, match, protocol string
}

// setJumps are upstream's: the local sets come before the others, so
// that Local traffic is not masqueraded.
var setJumps = []setJump{
	{setLoopBack, tableNAT, chainPostrouting, "MASQUERADE", "dst,dst,src", ""},
	{setLoadBalancer, tableNAT, chainServices, chainLoadBalancer, "dst,dst", ""},
	{setLoadBalancerLocal, tableNAT, chainLoadBalancer, "RETURN", "dst,dst", ""},
	{setNodePortLocalTCP, tableNAT, chainNodePort, "RETURN", "dst", "tcp"},
	{setNodePortTCP, tableNAT, chainNodePort, chainMarkMasq, "dst", "tcp"},
	{setNodePortLocalUDP, tableNAT, chainNodePort, "RETURN", "dst", "udp"},
	{setNodePortUDP, tableNAT, chainNodePort, chainMarkMasq, "dst", "udp"},
	{setNodePortLocalSCTP, tableNAT, chainNodePort, "RETURN", "dst,dst", "sctp"},
	{setNodePortSCTP, tableNAT, chainNodePort, chainMarkMasq, "dst,dst", "sctp"},
	{setLoadBalancerFW, tableFilter, chainProxyFirewall, chainSourceRangesFW, "dst,dst", ""},
	{setLoadBalancerSrcCIDR, tableFilter, chainSourceRangesFW, "RETURN", "dst,dst,src", ""},
	{setLoadBalancerSrcIP, tableFilter, chainSourceRangesFW, "RETURN", "dst,dst,src", ""},
}

// ruleWriter collects one table's lines.
type ruleWriter struct{ b strings.Builder }

func (w *ruleWriter) line(words ...any) {
	first := true
	for _, word := range words {
		var parts []string
		switch v := word.(type) {
		case string:
			parts = []string{v}
		case []string:
			parts = v
		}
		for _, s := range parts {
			if !first {
				w.b.WriteByte(' ')
			}
			first = false
			w.b.WriteString(s)
		}
	}
	w.b.WriteByte('\n')
}

func quote(s string) string { return `"` + s + `"` }

func matchSet(set string) []string {
	return []string{"-m", "comment", "--comment", quote(setComment(set)), "-m", "set", "--match-set", set}
}

// rules is the iptables-restore --noflush input for want: the chains are
// declared (flushed) and refilled; the rules match the sets, so they do
// not grow with the services.
func (p *Proxier) rules(want *desiredState) []byte {
	nat, filter := &ruleWriter{}, &ruleWriter{}
	nat.line("*nat")
	for _, c := range natChains {
		nat.line(":" + c + " - [0:0]")
	}
	filter.line("*filter")
	for _, c := range filterChains {
		filter.line(":" + c + " - [0:0]")
	}
	nonEmpty := func(set string) bool { return want.sets[set].Len() > 0 }
	mark := p.masqMark + "/" + p.masqMark

	// Connections to localhost are none of the services'.
	nat.line("-A", chainServices, "-s", loopbackCIDR, "-j", "RETURN")
	for _, j := range setJumps {
		if !nonEmpty(j.set) {
			continue
		}
		w := nat
		if j.table == tableFilter {
			w = filter
		}
		args := []string{"-A", j.from}
		if j.protocol != "" {
			args = append(args, "-p", j.protocol)
		}
		w.line(args, matchSet(j.set), j.match, "-j", j.to)
	}

	if nonEmpty(setClusterIP) {
		args := []string{"-A", chainServices}
		args = append(args, matchSet(setClusterIP)...)
		switch {
		case p.cfg.MasqueradeAll:
			nat.line(args, "dst,dst", "-j", chainMarkMasq)
		case p.cfg.ClusterCIDR != nil:
			// Off-cluster traffic to a cluster IP (a route to the service
			// range through this node) may leave to another node's
			// endpoint: masquerade it so the answer comes back.
			nat.line(args, "dst,dst", "!", "-s", p.cfg.ClusterCIDR.String(), "-j", chainMarkMasq)
		default:
			// The node's own connections to a cluster IP get a service
			// address (on kube-ipvs0) as source: masquerade them.
			nat.line(args, "src,dst", "-j", chainMarkMasq)
		}
	}
	// External IPs: accepted from off the node, and when local.
	externalAccept := func(args []string) {
		nat.line(args, "-m", "physdev", "!", "--physdev-is-in", "-m", "addrtype", "!", "--src-type", "LOCAL", "-j", "ACCEPT")
		nat.line(args, "-m", "addrtype", "--dst-type", "LOCAL", "-j", "ACCEPT")
	}
	if nonEmpty(setExternalIP) {
		args := append(append([]string{"-A", chainServices}, matchSet(setExternalIP)...), "dst,dst")
		nat.line(args, "-j", chainMarkMasq)
		externalAccept(args)
	}
	if nonEmpty(setExternalIPLocal) {
		externalAccept(append(append([]string{"-A", chainServices}, matchSet(setExternalIPLocal)...), "dst,dst"))
	}
	nat.line("-A", chainServices, "-m", "addrtype", "--dst-type", "LOCAL", "-j", chainNodePort)
	nat.line("-A", chainLoadBalancer, "-j", chainMarkMasq)
	filter.line("-A", chainSourceRangesFW, "-j", "DROP")
	// The node itself may not reach a load balancer whose source ranges
	// leave it out (source and destination are both the VIP in IPVS).
	for _, t := range want.lbNoNodeAccess {
		filter.line("-A", chainIPVSOutFilter, "-s", t.ip.String(), "-m", "ipvs", "--vaddr", t.ip.String(),
			"--vproto", t.protocol, "--vport", strconv.Itoa(t.port), "-j", "DROP")
	}
	// IPVS traffic accepted, whatever later rules say.
	for _, set := range []string{setClusterIP, setLoadBalancer} {
		if nonEmpty(set) {
			nat.line("-A", chainServices, "-m", "set", "--match-set", set, "dst,dst", "-j", "ACCEPT")
		}
	}

	// Forward what is marked for masquerade (node ports) even with a DROP
	// FORWARD policy, and the rest of those connections.
	filter.line("-A", chainForward, "-m", "comment", "--comment", quote("kubernetes forwarding rules"), "-m", "mark", "--mark", mark, "-j", "ACCEPT")
	filter.line("-A", chainForward, "-m", "comment", "--comment", quote("kubernetes forwarding conntrack rule"),
		"-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
	filter.line("-A", chainNodePort, matchSet(setHealthCheckNodePort), "dst", "-j", "ACCEPT")
	// The service addresses on kube-ipvs0 are the node's too: only the
	// service ports may be reached through them (upstream's issue 72236).
	for _, m := range []struct{ set, match string }{
		{setLoadBalancer, "dst,dst"}, {setClusterIP, "dst,dst"}, {setExternalIP, "dst,dst"},
		{setExternalIPLocal, "dst,dst"}, {setHealthCheckNodePort, "dst"},
	} {
		filter.line("-A", chainIPVSFilter, "-m", "set", "--match-set", m.set, m.match, "-j", "RETURN")
	}
	filter.line("-A", chainIPVSFilter, "-m", "conntrack", "--ctstate", "NEW", "-m", "set", "--match-set", setIPVSIPs, "dst", "-j", "REJECT")

	nat.line("-A", chainPostrouting, "-m", "mark", "!", "--mark", mark, "-j", "RETURN")
	// Clear the mark, so that a packet going through again is not
	// masqueraded twice.
	nat.line("-A", chainPostrouting, "-j", "MARK", "--xor-mark", p.masqMark)
	nat.line("-A", chainPostrouting, "-m", "comment", "--comment", quote("kubernetes service traffic requiring SNAT"), "-j", "MASQUERADE", "--random-fully")
	nat.line("-A", chainMarkMasq, "-j", "MARK", "--or-mark", p.masqMark)

	nat.line("COMMIT")
	filter.line("COMMIT")
	return []byte(nat.b.String() + filter.b.String())
}
