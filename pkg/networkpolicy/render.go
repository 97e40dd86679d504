package networkpolicy

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"sort"
	"strings"
)

// Chain layout in the filter table (all names start with chainPrefix):
//
//	FORWARD, INPUT -> SKIFF-NWPLCY: established flows return at once;
//	  -s <pod> -> SKIFF-NWPLCY-E-<pod>   (pods isolated for egress)
//	  -d <pod> -> SKIFF-NWPLCY-I-<pod>   (pods isolated for ingress)
//	SKIFF-NWPLCY-[IE]-<pod>: clears the allow mark, jumps to each of its
//	  allows' chains and returns as soon as one set the mark; else DROP.
//	SKIFF-NWPLCY-A-<hash>: one allow (ports x peers); sets the mark.
//	SKIFF-NWPLCY-P-<hash>: the peers of an allow with ports.
//	SKIFF-NWPLCY-B-<hash>: an ipBlock with exceptions (they return first).
//
// Allowed traffic returns to the built-in chain rather than being
// accepted, so the host's other FORWARD rules still apply; a flow between
// two pods of this node passes the sender's egress and then the
// receiver's ingress check. Allow, peer and block chains are named by
// their content, so pods selected by the same policy share them.
const (
	chainPrefix = "SKIFF-NWPLCY"
	topChain    = chainPrefix
)

// hookChains are the built-in chains that jump to topChain: FORWARD for
// routed and bridged pod traffic, INPUT for pods' traffic to this node.
// Traffic from the node to its pods (OUTPUT) is never filtered, as
// upstream documents (kubelet probes must reach pods).
var hookChains = []string{"FORWARD", "INPUT"}

func hashName(kind string, parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	enc := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:])
	name := chainPrefix + "-" + kind + "-"
	return name + enc[:28-len(name)] // iptables chain names: 28 characters at most
}

// ruleSet is a rendered sync: the chains it writes and their rules.
type ruleSet struct {
	chains []string            // in writing order, topChain first
	rules  map[string][]string // chain -> rule lines without "-A chain"
}

func (rs *ruleSet) add(chain string, rule ...string) {
	if _, ok := rs.rules[chain]; !ok {
		rs.chains = append(rs.chains, chain)
		rs.rules[chain] = []string{}
	}
	if len(rule) > 0 {
		rs.rules[chain] = append(rs.rules[chain], strings.Join(rule, " "))
	}
}

func (rs *ruleSet) has(chain string) bool { _, ok := rs.rules[chain]; return ok }

// render turns pods' rules into chains. mark is the packet mark bit that
// says "some rule allowed this".
func render(pods []podRules, mark uint32) *ruleSet {
	rs := &ruleSet{rules: map[string][]string{}}
	setMark := fmt.Sprintf("-j MARK --set-xmark %#x/%#x", mark, mark)
	marked := fmt.Sprintf("-m mark --mark %#x/%#x", mark, mark)
	rs.add(topChain) // written even when empty: the hooks jump to it
	rs.add(topChain, "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN")
	// Egress jumps first: a flow between two local pods is checked
	// against the sender's egress, then the receiver's ingress.
	for _, dir := range []string{"E", "I"} {
		for _, p := range pods {
			allows, match, peerFlag := p.Ingress, "-d", "-s"
			if dir == "E" {
				allows, match, peerFlag = p.Egress, "-s", "-d"
			}
			if allows == nil {
				continue
			}
			podChain := hashName(dir, p.Namespace, p.Name, p.IP)
			who := fmt.Sprintf("%s/%s %s", p.Namespace, p.Name, map[string]string{"E": "egress", "I": "ingress"}[dir])
			rs.add(topChain, match, p.IP+"/32", "-m comment --comment", quote(who), "-j", podChain)
			rs.add(podChain, fmt.Sprintf("-j MARK --set-xmark 0x0/%#x", mark))
			for _, a := range allows {
				ac := renderAllow(rs, dir, peerFlag, a, setMark)
				rs.add(podChain, "-m comment --comment", quote("policy "+a.Policy), "-j", ac)
				rs.add(podChain, marked, "-j RETURN")
			}
			rs.add(podChain, "-m comment --comment", quote(who+": no policy allows"), "-j DROP")
		}
	}
	return rs
}

// renderAllow writes allow a's chains (unless written already) and
// returns its chain.
func renderAllow(rs *ruleSet, dir, peerFlag string, a allow, setMark string) string {
	chain := hashName("A", dir, allowKey(a))
	if rs.has(chain) {
		return chain
	}
	rs.add(chain)
	if a.Ports == nil {
		if a.Peers == nil {
			rs.add(chain, setMark)
		} else {
			writePeers(rs, chain, dir, peerFlag, a.Peers, setMark)
		}
		return chain
	}
	target := setMark
	if a.Peers != nil {
		pc := hashName("P", dir, peersKey(a.Peers))
		if !rs.has(pc) {
			rs.add(pc)
			writePeers(rs, pc, dir, peerFlag, a.Peers, setMark)
		}
		target = "-j " + pc
	}
	for _, p := range a.Ports {
		rs.add(chain, portMatch(p), target)
	}
	return chain
}

func writePeers(rs *ruleSet, chain, dir, peerFlag string, peers []peer, setMark string) {
	for _, p := range peers {
		if len(p.Except) == 0 {
			rs.add(chain, peerFlag, p.CIDR, setMark)
			continue
		}
		bc := hashName("B", dir, peersKey([]peer{p}))
		if !rs.has(bc) {
			rs.add(bc)
			for _, e := range p.Except {
				rs.add(bc, peerFlag, e, "-j RETURN")
			}
			rs.add(bc, peerFlag, p.CIDR, setMark)
		}
		rs.add(chain, "-j", bc)
	}
}

func portMatch(p port) string {
	m := "-p " + p.Protocol
	if p.Port == 0 {
		return m
	}
	m += " -m " + p.Protocol + " --dport " + fmt.Sprint(p.Port)
	if p.EndPort > p.Port {
		m += fmt.Sprintf(":%d", p.EndPort)
	}
	return m
}

func peersKey(peers []peer) string {
	var b strings.Builder
	if peers == nil {
		return "*"
	}
	for _, p := range peers {
		fmt.Fprintf(&b, "%s!%s,", p.CIDR, strings.Join(p.Except, "!"))
	}
	return b.String()
}

func allowKey(a allow) string {
	var b strings.Builder
	b.WriteString(peersKey(a.Peers))
	b.WriteString("|")
	if a.Ports == nil {
		b.WriteString("*")
	}
	for _, p := range a.Ports {
		fmt.Fprintf(&b, "%s/%d-%d,", p.Protocol, p.Port, p.EndPort)
	}
	return b.String()
}

// quote makes s one iptables-restore word.
func quote(s string) string {
	return `"` + strings.NewReplacer(`"`, `'`, "\n", " ").Replace(s) + `"`
}

// restoreInput is the iptables-restore --noflush input that makes the
// filter table's chainPrefix chains exactly rs: its chains are flushed
// and refilled, existing ones it lacks (existing, all chainPrefix ones
// found) are flushed and deleted.
func restoreInput(rs *ruleSet, existing []string) []byte {
	var b strings.Builder
	b.WriteString("*filter\n")
	var stale []string
	for _, c := range existing {
		if strings.HasPrefix(c, chainPrefix) && !rs.has(c) {
			stale = append(stale, c)
		}
	}
	sort.Strings(stale)
	for _, c := range append(append([]string(nil), rs.chains...), stale...) {
		fmt.Fprintf(&b, ":%s - [0:0]\n", c)
	}
	for _, c := range rs.chains {
		for _, r := range rs.rules[c] {
			fmt.Fprintf(&b, "-A %s %s\n", c, r)
		}
	}
	for _, c := range stale {
		fmt.Fprintf(&b, "-X %s\n", c)
	}
	b.WriteString("COMMIT\n")
	return []byte(b.String())
}
