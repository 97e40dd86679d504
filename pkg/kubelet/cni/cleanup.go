package cni

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/klog/v2"
)

// Cleanup removes what the plugins of cfg's network leave behind once its
// pods are gone (or when their teardown was skipped, as in a failed test):
// the bridge, the nat rules and CNI-* chains whose comments name the
// network, host-local's leases and containerd's CNI result cache of the
// network. The shared CNI-HOSTPORT-* chains go only when no network uses
// them any more (portmap recreates them on its next ADD). Nothing of other
// networks is touched, so tests give each network its own NetworkName and
// BridgeName. ip_forward stays on: other things may rely on it.
func Cleanup(cfg Config) error {
	var errs []error
	for _, family := range []string{"iptables", "ip6tables"} {
		if err := cleanupNAT(family, cfg.networkName()); err != nil {
			errs = append(errs, err)
		}
	}
	if err := deleteBridge(cfg.bridgeName()); err != nil {
		errs = append(errs, err)
	}
	if cfg.DataDir != "" {
		if err := os.RemoveAll(filepath.Join(cfg.DataDir, cfg.networkName())); err != nil {
			errs = append(errs, err)
		}
	}
	// libcni caches each ADD's result as <network>-<container id>-<ifname>.
	cached, _ := filepath.Glob(filepath.Join("/var/lib/cni/results", cfg.networkName()+"-*"))
	for _, f := range cached {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func deleteBridge(name string) error {
	if _, err := os.Stat(filepath.Join("/sys/class/net", name, "bridge")); err != nil {
		return nil // no such bridge (or not a bridge: not ours)
	}
	if out, err := exec.Command("ip", "link", "delete", name, "type", "bridge").CombinedOutput(); err != nil {
		return fmt.Errorf("delete bridge %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}

// natRule is one "-A CHAIN ..." line of iptables-save.
type natRule struct {
	chain, line, target string
}

func parseNAT(save []byte) (chains map[string]bool, rules []natRule) {
	chains = map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(save))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ":"):
			if f := strings.Fields(line[1:]); len(f) > 0 {
				chains[f[0]] = true
			}
		case strings.HasPrefix(line, "-A "):
			f := strings.Fields(line)
			r := natRule{chain: f[1], line: line}
			for i := 2; i+1 < len(f); i++ {
				if f[i] == "-j" || f[i] == "-g" {
					r.target = f[i+1]
				}
			}
			rules = append(rules, r)
		}
	}
	return chains, rules
}

// networkComment is how bridge and portmap name the network in their
// rules' comments, as iptables-save quotes it.
func networkComment(network string) string {
	return `name: \"` + network + `\"`
}

func cleanupNAT(family, network string) error {
	if _, err := exec.LookPath(family + "-save"); err != nil {
		return nil // no iptables: the plugins could not have made rules
	}
	save, err := exec.Command(family+"-save", "-t", "nat").Output()
	if err != nil {
		if family == "ip6tables" {
			return nil // no IPv6 nat table on this kernel
		}
		return fmt.Errorf("%s-save: %w", family, err)
	}
	scripts := natCleanupScripts(save, network)
	if len(scripts) == 0 {
		return nil
	}
	for _, script := range scripts {
		cmd := exec.Command(family+"-restore", "--noflush", "-w")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s-restore: %v: %s", family, err, bytes.TrimSpace(out))
		}
	}
	klog.V(2).InfoS("Removed CNI nat rules", "family", family, "network", network)
	return nil
}

// natCleanupScripts are the iptables-restore inputs that remove network's
// rules and chains from the nat table described by save, to run in order
// (iptables-nft refuses to delete a chain in the batch that empties it);
// none when there is nothing to remove.
func natCleanupScripts(save []byte, network string) []string {
	chains, rules := parseNAT(save)
	comment := networkComment(network)
	// The network's own chains: those its commented rules jump to
	// (CNI-<hash> for masquerading, CNI-DN-<hash> for host ports).
	own := map[string]bool{}
	for _, r := range rules {
		if strings.Contains(r.line, comment) && isPerContainerChain(r.target) && chains[r.target] {
			own[r.target] = true
		}
	}
	var drop []string
	for c := range own {
		drop = append(drop, c)
	}
	sort.Strings(drop)
	var edits []string
	deleted := map[int]bool{}
	for i, r := range rules {
		if own[r.chain] {
			continue // goes with its chain
		}
		if strings.Contains(r.line, comment) || own[r.target] {
			edits = append(edits, "-D"+strings.TrimPrefix(r.line, "-A"))
			deleted[i] = true
		}
	}
	// portmap's shared chains go once no host port of any network is left.
	dnatInUse := false
	for c := range chains {
		if strings.HasPrefix(c, "CNI-DN-") && !own[c] {
			dnatInUse = true
		}
	}
	for i, r := range rules {
		if r.chain == "CNI-HOSTPORT-DNAT" && !deleted[i] {
			dnatInUse = true
		}
	}
	if !dnatInUse && chains["CNI-HOSTPORT-DNAT"] {
		shared := map[string]bool{"CNI-HOSTPORT-DNAT": true, "CNI-HOSTPORT-MASQ": true, "CNI-HOSTPORT-SETMARK": true}
		for i, r := range rules {
			if shared[r.target] && !shared[r.chain] && !own[r.chain] && !deleted[i] {
				edits = append(edits, "-D"+strings.TrimPrefix(r.line, "-A"))
			}
		}
		for _, c := range []string{"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"} {
			if chains[c] {
				drop = append(drop, c)
			}
		}
	}
	if len(edits) == 0 && len(drop) == 0 {
		return nil
	}
	for _, c := range drop {
		edits = append(edits, "-F "+c)
	}
	deletes := make([]string, 0, len(drop))
	for _, c := range drop {
		deletes = append(deletes, "-X "+c)
	}
	scripts := []string{"*nat\n" + strings.Join(edits, "\n") + "\nCOMMIT\n"}
	if len(deletes) > 0 {
		scripts = append(scripts, "*nat\n"+strings.Join(deletes, "\n")+"\nCOMMIT\n")
	}
	return scripts
}

func isPerContainerChain(name string) bool {
	return strings.HasPrefix(name, "CNI-") && !strings.HasPrefix(name, "CNI-HOSTPORT-")
}
