package networkpolicy

import (
	"fmt"
	"net"
	"sort"

	v1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/klog/v2"
)

// The rule computation: from the cluster's pods, namespaces and policies
// to what each pod of this node may receive and send. Pure, so it is
// unit-tested without iptables.

// podRules is what is enforced for one pod of this node.
type podRules struct {
	Namespace, Name, IP string
	// Ingress and Egress are nil when no policy isolates the pod in that
	// direction; otherwise the union of what the policies allow (empty:
	// nothing, default deny).
	Ingress, Egress []allow
}

// allow is one rule's traffic: any of Peers (the remote side; nil means
// any address) on any of Ports (nil means any port and protocol).
type allow struct {
	Policy string // namespace/name, for comments
	Peers  []peer
	Ports  []port
}

// peer is a remote address range without its exceptions.
type peer struct {
	CIDR   string
	Except []string
}

// port is a protocol with a port range; Port 0 means every port of it.
type port struct {
	Protocol string // tcp, udp or sctp
	Port     int32
	EndPort  int32 // 0: Port alone
}

// clusterState is the informers' view that the computation reads.
type clusterState struct {
	Pods       []*v1.Pod
	Namespaces []*v1.Namespace
	Policies   []*networkingv1.NetworkPolicy
}

// podIPv4 is a pod's IPv4 address, "" when it has none or is not subject
// to policies (hostNetwork pods share the node's address; finished pods'
// addresses may already be someone else's).
func podIPv4(p *v1.Pod) string {
	if p.Spec.HostNetwork || p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed {
		return ""
	}
	ips := []string{p.Status.PodIP}
	for _, ip := range p.Status.PodIPs {
		ips = append(ips, ip.IP)
	}
	for _, s := range ips {
		if ip := net.ParseIP(s); ip != nil && ip.To4() != nil {
			return ip.To4().String()
		}
	}
	return ""
}

// policyTypes applies the API's defaulting when the field is empty:
// Ingress always, Egress only when there are egress rules.
func policyTypes(np *networkingv1.NetworkPolicy) (ingress, egress bool) {
	if len(np.Spec.PolicyTypes) == 0 {
		return true, len(np.Spec.Egress) > 0
	}
	for _, t := range np.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		}
	}
	return ingress, egress
}

// computeRules returns the rules of nodeName's pods, sorted by namespace
// and name. Policies or selectors that do not parse are logged and
// skipped (the API server validates them, so this is defensive).
func computeRules(st clusterState, nodeName string) []podRules {
	nsLabels := map[string]labels.Set{}
	for _, ns := range st.Namespaces {
		nsLabels[ns.Name] = labels.Set(ns.Labels)
	}
	// Every pod with an address is a possible peer.
	var peers []*v1.Pod
	for _, p := range st.Pods {
		if podIPv4(p) != "" {
			peers = append(peers, p)
		}
	}
	sort.Slice(peers, func(i, j int) bool { return podKey(peers[i]) < podKey(peers[j]) })
	policies := append([]*networkingv1.NetworkPolicy(nil), st.Policies...)
	sort.Slice(policies, func(i, j int) bool {
		return policies[i].Namespace+"/"+policies[i].Name < policies[j].Namespace+"/"+policies[j].Name
	})

	selectors := map[*networkingv1.NetworkPolicy]labels.Selector{}
	for _, np := range policies {
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil {
			klog.ErrorS(err, "Skipping NetworkPolicy with a bad podSelector", "policy", klog.KObj(np))
			continue
		}
		selectors[np] = sel
	}
	// A rule's peers do not depend on the pod it selects: resolved once.
	rc := &ruleCache{pods: peers, nsLabels: nsLabels, peers: map[string]resolvedPeers{}}
	var out []podRules
	for _, p := range peers {
		if p.Spec.NodeName != nodeName {
			continue
		}
		r := podRules{Namespace: p.Namespace, Name: p.Name, IP: podIPv4(p)}
		for _, np := range policies {
			if np.Namespace != p.Namespace {
				continue
			}
			sel := selectors[np]
			if sel == nil || !sel.Matches(labels.Set(p.Labels)) {
				continue
			}
			name := np.Namespace + "/" + np.Name
			ingress, egress := policyTypes(np)
			if ingress {
				if r.Ingress == nil {
					r.Ingress = []allow{}
				}
				for i, rule := range np.Spec.Ingress {
					r.Ingress = append(r.Ingress, rc.ruleAllows(fmt.Sprintf("%s/I%d", name, i), name, np.Namespace, rule.From, rule.Ports, p, false)...)
				}
			}
			if egress {
				if r.Egress == nil {
					r.Egress = []allow{}
				}
				for i, rule := range np.Spec.Egress {
					r.Egress = append(r.Egress, rc.ruleAllows(fmt.Sprintf("%s/E%d", name, i), name, np.Namespace, rule.To, rule.Ports, p, true)...)
				}
			}
		}
		out = append(out, r)
	}
	return out
}

func podKey(p *v1.Pod) string { return p.Namespace + "/" + p.Name }

// ruleCache holds the cluster's pods (the possible peers) and each
// rule's resolved peers, by rule key.
type ruleCache struct {
	pods     []*v1.Pod
	nsLabels map[string]labels.Set
	peers    map[string]resolvedPeers
}

type resolvedPeers struct {
	blocks []peer
	pods   []*v1.Pod
}

// ruleAllows turns one rule (key names it) of policy (in namespace
// policyNS) selecting local pod self into allows. Named ports are
// resolved against the destination pod's container ports: self for
// ingress, each peer pod for egress, so a named egress rule becomes one
// allow per peer pod.
func (rc *ruleCache) ruleAllows(key, policy, policyNS string, npPeers []networkingv1.NetworkPolicyPeer, npPorts []networkingv1.NetworkPolicyPort,
	self *v1.Pod, egress bool) []allow {
	numbered, named := splitPorts(npPorts)
	anyPeer := len(npPeers) == 0
	var blocks []peer
	var peerPods []*v1.Pod
	if anyPeer {
		peerPods = rc.pods
	} else {
		r, ok := rc.peers[key]
		if !ok {
			r.blocks, r.pods = resolvePeers(policy, policyNS, npPeers, rc.pods, rc.nsLabels)
			rc.peers[key] = r
		}
		blocks, peerPods = r.blocks, r.pods
	}
	var out []allow
	if len(npPorts) == 0 || len(numbered) > 0 {
		a := allow{Policy: policy, Ports: numbered}
		if !anyPeer {
			a.Peers = append(a.Peers, blocks...)
			for _, pp := range peerPods {
				a.Peers = append(a.Peers, peer{CIDR: podIPv4(pp) + "/32"})
			}
			if len(a.Peers) == 0 {
				a = allow{} // selects no one: allows nothing
			}
		}
		if a.Policy != "" {
			out = append(out, a)
		}
	}
	if len(named) == 0 {
		return out
	}
	if !egress {
		// Ingress: the destination is self.
		if ports := resolveNamed(named, self); len(ports) > 0 {
			a := allow{Policy: policy, Ports: ports}
			if !anyPeer {
				a.Peers = append(a.Peers, blocks...)
				for _, pp := range peerPods {
					a.Peers = append(a.Peers, peer{CIDR: podIPv4(pp) + "/32"})
				}
				if len(a.Peers) == 0 {
					return out
				}
			}
			out = append(out, a)
		}
		return out
	}
	// Egress: a named port exists only on pods, so ipBlock peers never
	// match it; every selected pod (every pod for "any peer") is its own
	// destination with its own numbers.
	for _, pp := range peerPods {
		if ports := resolveNamed(named, pp); len(ports) > 0 {
			out = append(out, allow{Policy: policy, Peers: []peer{{CIDR: podIPv4(pp) + "/32"}}, Ports: ports})
		}
	}
	return out
}

// namedPort is a port given by its container port name.
type namedPort struct {
	Protocol v1.Protocol
	Name     string
}

func protocolOf(p *v1.Protocol) v1.Protocol {
	if p == nil || *p == "" {
		return v1.ProtocolTCP
	}
	return *p
}

func iptProtocol(p v1.Protocol) string {
	switch p {
	case v1.ProtocolUDP:
		return "udp"
	case v1.ProtocolSCTP:
		return "sctp"
	default:
		return "tcp"
	}
}

// splitPorts separates numbered (and all-ports) entries from named ones.
func splitPorts(ports []networkingv1.NetworkPolicyPort) ([]port, []namedPort) {
	var numbered []port
	var named []namedPort
	for _, p := range ports {
		proto := protocolOf(p.Protocol)
		switch {
		case p.Port == nil:
			numbered = append(numbered, port{Protocol: iptProtocol(proto)})
		case p.Port.Type == intstr.String:
			named = append(named, namedPort{Protocol: proto, Name: p.Port.StrVal})
		default:
			np := port{Protocol: iptProtocol(proto), Port: p.Port.IntVal}
			if p.EndPort != nil && *p.EndPort > p.Port.IntVal {
				np.EndPort = *p.EndPort
			}
			numbered = append(numbered, np)
		}
	}
	return numbered, named
}

// resolveNamed finds the named ports among pod's container ports (name
// and protocol both match).
func resolveNamed(named []namedPort, pod *v1.Pod) []port {
	var out []port
	for _, n := range named {
		for _, c := range append(append([]v1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...) {
			for _, cp := range c.Ports {
				if cp.Name == n.Name && protocolOf(&cp.Protocol) == n.Protocol {
					out = append(out, port{Protocol: iptProtocol(n.Protocol), Port: cp.ContainerPort})
				}
			}
		}
	}
	return out
}

// resolvePeers returns the ipBlocks and the pods that peers select.
func resolvePeers(policy, policyNS string, peers []networkingv1.NetworkPolicyPeer, pods []*v1.Pod, nsLabels map[string]labels.Set) ([]peer, []*v1.Pod) {
	var blocks []peer
	selected := map[string]*v1.Pod{}
	for _, pr := range peers {
		if pr.IPBlock != nil {
			if b, ok := ipv4Block(pr.IPBlock); ok {
				blocks = append(blocks, b)
			} else {
				klog.V(4).InfoS("Skipping an ipBlock that is not IPv4", "policy", policy, "cidr", pr.IPBlock.CIDR)
			}
			continue
		}
		var podSel, nsSel labels.Selector
		var err error
		if pr.PodSelector != nil {
			if podSel, err = metav1.LabelSelectorAsSelector(pr.PodSelector); err != nil {
				klog.ErrorS(err, "Skipping a peer with a bad podSelector", "policy", policy)
				continue
			}
		}
		if pr.NamespaceSelector != nil {
			if nsSel, err = metav1.LabelSelectorAsSelector(pr.NamespaceSelector); err != nil {
				klog.ErrorS(err, "Skipping a peer with a bad namespaceSelector", "policy", policy)
				continue
			}
		}
		if podSel == nil && nsSel == nil {
			continue // invalid: the API server requires one of the three
		}
		for _, p := range pods {
			if nsSel == nil {
				if p.Namespace != policyNS {
					continue
				}
			} else if !nsSel.Matches(nsLabels[p.Namespace]) {
				continue
			}
			if podSel != nil && !podSel.Matches(labels.Set(p.Labels)) {
				continue
			}
			selected[podKey(p)] = p
		}
	}
	var out []*v1.Pod
	for _, p := range pods { // pods is sorted: keep that order
		if selected[podKey(p)] != nil {
			out = append(out, p)
		}
	}
	return blocks, out
}

// ipv4Block normalizes an IPv4 ipBlock; IPv6 ones are for ip6tables,
// which this does not program.
func ipv4Block(b *networkingv1.IPBlock) (peer, bool) {
	_, cidr, err := net.ParseCIDR(b.CIDR)
	if err != nil || cidr.IP.To4() == nil {
		return peer{}, false
	}
	out := peer{CIDR: cidr.String()}
	for _, e := range b.Except {
		if _, ex, err := net.ParseCIDR(e); err == nil && ex.IP.To4() != nil {
			out.Except = append(out.Except, ex.String())
		}
	}
	return out, true
}
