package networkpolicy

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"

	goiptables "github.com/coreos/go-iptables/iptables"
	"k8s.io/klog/v2"
)

// iptablesRunner writes the chains: the jumps from the built-in chains
// one rule at a time (go-iptables), everything else in one
// iptables-restore --noflush, so a sync is applied whole or not at all.
type iptablesRunner struct {
	ipt     *goiptables.IPTables
	restore string
}

// newIPTables finds iptables and iptables-restore on PATH.
func newIPTables() (*iptablesRunner, error) {
	ipt, err := goiptables.NewWithProtocol(goiptables.ProtocolIPv4)
	if err != nil {
		return nil, err
	}
	restore, err := exec.LookPath("iptables-restore")
	if err != nil {
		return nil, err
	}
	return &iptablesRunner{ipt: ipt, restore: restore}, nil
}

var hookRule = []string{"-m", "comment", "--comment", "skiff network policies", "-j", topChain}

// ourChains lists the filter table's chains this package made.
func (r *iptablesRunner) ourChains() ([]string, error) {
	all, err := r.ipt.ListChains("filter")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range all {
		if strings.HasPrefix(c, chainPrefix) {
			out = append(out, c)
		}
	}
	return out, nil
}

// apply makes the chains rs and the hook jumps exist.
func (r *iptablesRunner) apply(rs *ruleSet) error {
	existing, err := r.ourChains()
	if err != nil {
		return err
	}
	if err := r.runRestore(restoreInput(rs, existing)); err != nil {
		return err
	}
	for _, hook := range hookChains {
		if err := r.ensureFirst(hook); err != nil {
			return err
		}
	}
	return nil
}

// ensureFirst keeps the jump to topChain the first rule of hook: a rule
// before it could accept new pod flows unchecked (kube-proxy's
// KUBE-FORWARD accepts every packet marked for masquerade, NodePort
// traffic to local pods included). Others only check that their jumps
// exist, so moving ours back to the top does not start a fight.
func (r *iptablesRunner) ensureFirst(hook string) error {
	rules, err := r.ipt.List("filter", hook)
	if err != nil {
		return err
	}
	// rules[0] is the chain's policy (-P), rules[1] its first rule.
	if len(rules) > 1 && strings.HasSuffix(rules[1], " -j "+topChain) {
		return nil
	}
	ok, err := r.ipt.Exists("filter", hook, hookRule...)
	if err != nil {
		return err
	}
	if ok {
		klog.InfoS("Moving the NetworkPolicy jump back to the top", "chain", hook)
		if err := r.ipt.Delete("filter", hook, hookRule...); err != nil {
			return err
		}
	}
	return r.ipt.Insert("filter", hook, 1, hookRule...)
}

func (r *iptablesRunner) cleanup() error {
	var errs []error
	// A jump cannot exist without its target (and -C fails then).
	top, err := r.ipt.ChainExists("filter", topChain)
	if err != nil {
		return err
	}
	for _, hook := range hookChains {
		if !top {
			break
		}
		if err := r.ipt.DeleteIfExists("filter", hook, hookRule...); err != nil {
			errs = append(errs, err)
		}
	}
	existing, err := r.ourChains()
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		if err := r.runRestore(restoreInput(&ruleSet{rules: map[string][]string{}}, existing)); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("networkpolicy cleanup: %v", errs)
	}
	return nil
}

func (r *iptablesRunner) runRestore(data []byte) error {
	cmd := exec.Command(r.restore, "-w", "5", "--noflush")
	cmd.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		// "line N failed": name that line.
		var n int
		if i := strings.Index(msg, "line "); i >= 0 {
			if _, serr := fmt.Sscanf(msg[i:], "line %d", &n); serr == nil && n > 0 {
				if lines := strings.Split(string(data), "\n"); n <= len(lines) {
					msg += fmt.Sprintf(" (line %d: %q)", n, lines[n-1])
				}
			}
		}
		return fmt.Errorf("iptables-restore: %v: %s", err, msg)
	}
	return nil
}
