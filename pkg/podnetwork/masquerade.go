package podnetwork

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"

	"github.com/coreos/go-iptables/iptables"
)

const (
	// PostroutingChain (nat) masquerades pod traffic leaving the cluster
	// CIDR; POSTROUTING jumps to it.
	PostroutingChain = "SKIFF-POSTROUTING"
	// ForwardChain (filter) accepts forwarded pod traffic, for hosts whose
	// FORWARD policy is DROP (as Docker sets it); FORWARD jumps to it at
	// its end, so that rules before it (NetworkPolicy) still decide first.
	ForwardChain = "SKIFF-FORWARD"
)

type jump struct {
	table, chain, target, comment string
}

var jumps = []jump{
	{"nat", "POSTROUTING", PostroutingChain, "skiff pod network: masquerade traffic leaving the cluster"},
	{"filter", "FORWARD", ForwardChain, "skiff pod network: forward pod traffic"},
}

func (j jump) spec() []string {
	return []string{"-m", "comment", "--comment", j.comment, "-j", j.target}
}

// rulesScript is the iptables-restore input for the chains of one family.
// Declaring a chain in a --noflush restore empties it, so the whole
// content is replaced at once.
func rulesScript(cidr netip.Prefix) string {
	multicast := "224.0.0.0/4"
	if cidr.Addr().Is6() {
		multicast = "ff00::/8"
	}
	c := cidr.String()
	var b strings.Builder
	b.WriteString("*nat\n:" + PostroutingChain + " - [0:0]\n")
	fmt.Fprintf(&b, "-A %s -d %s -m comment --comment \"pod to pod: keep the source IP\" -j RETURN\n", PostroutingChain, c)
	fmt.Fprintf(&b, "-A %s -d %s -j RETURN\n", PostroutingChain, multicast)
	fmt.Fprintf(&b, "-A %s -s %s -m comment --comment \"pod to outside the cluster\" -j MASQUERADE --random-fully\n", PostroutingChain, c)
	b.WriteString("COMMIT\n*filter\n:" + ForwardChain + " - [0:0]\n")
	fmt.Fprintf(&b, "-A %s -s %s -j ACCEPT\n", ForwardChain, c)
	fmt.Fprintf(&b, "-A %s -d %s -j ACCEPT\n", ForwardChain, c)
	b.WriteString("COMMIT\n")
	return b.String()
}

func protocolOf(a netip.Addr) iptables.Protocol {
	if a.Is4() {
		return iptables.ProtocolIPv4
	}
	return iptables.ProtocolIPv6
}

// ensureMasquerade writes the chains for every cluster CIDR, the jumps to
// them and turns on forwarding.
func (h *host) ensureMasquerade() error {
	for _, cidr := range h.opts.ClusterCIDRs {
		if err := enableForwarding(cidr.Addr().Is6()); err != nil {
			return err
		}
		ipt, err := iptables.New(iptables.IPFamily(protocolOf(cidr.Addr())), iptables.Timeout(10))
		if err != nil {
			return fmt.Errorf("iptables for %s: %w", cidr, err)
		}
		if err := restore(ipt, rulesScript(cidr)); err != nil {
			return err
		}
		for _, j := range jumps {
			if err := ipt.AppendUnique(j.table, j.chain, j.spec()...); err != nil {
				return fmt.Errorf("jump %s -> %s: %w", j.chain, j.target, err)
			}
		}
	}
	return nil
}

func restore(ipt *iptables.IPTables, script string) error {
	name := "iptables-restore"
	if ipt.Proto() == iptables.ProtocolIPv6 {
		name = "ip6tables-restore"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return fmt.Errorf("%s not found (apt-get install iptables): %w", name, err)
	}
	cmd := exec.Command(path, "--noflush", "-w", "10")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}

func enableForwarding(v6 bool) error {
	path := "/proc/sys/net/ipv4/ip_forward"
	if v6 {
		path = "/proc/sys/net/ipv6/conf/all/forwarding"
	}
	if cur, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(cur)) == "1" {
		return nil
	}
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable forwarding: %w", err)
	}
	return nil
}

// removeRules deletes the jumps and chains of one family; nothing when
// that family's iptables is missing.
func removeRules(proto iptables.Protocol) error {
	ipt, err := iptables.New(iptables.IPFamily(proto), iptables.Timeout(10))
	if err != nil {
		return nil // no iptables of this family: nothing was made
	}
	var errs []error
	for _, j := range jumps {
		exists, err := ipt.ChainExists(j.table, j.target)
		if err != nil {
			if proto == iptables.ProtocolIPv6 {
				continue // no IPv6 table of this kind on the kernel
			}
			errs = append(errs, err)
			continue
		}
		// Without its chain there is no jump (checking for one would
		// fail): a second Cleanup has nothing to do.
		if !exists {
			continue
		}
		if err := ipt.DeleteIfExists(j.table, j.chain, j.spec()...); err != nil {
			errs = append(errs, err)
		}
		if err := ipt.ClearAndDeleteChain(j.table, j.target); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
