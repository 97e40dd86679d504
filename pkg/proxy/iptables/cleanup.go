package iptables

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Cleanup removes every rule and chain the proxier makes: the jumps from
// the built-in chains, then our chains, flushed and deleted. Unlike
// upstream's CleanupLeftovers it removes KUBE-FIREWALL too: skiff's
// kubelet makes no such chain, so the proxy's copy is the only one.
func Cleanup(ipt Interface) error {
	var errs []error
	for _, j := range append(append([]jumpRule{}, jumpRules...), kubeletJumpRules...) {
		if err := ipt.DeleteRule(j.table, j.from, j.args()...); err != nil {
			errs = append(errs, fmt.Errorf("deleting the jump %s/%s -> %s: %w", j.table, j.from, j.to, err))
		}
	}
	for _, t := range []struct {
		table string
		fixed []string
		// service: the per-service chains are in this table.
		service bool
	}{
		{tableNAT, []string{kubeServicesChain, kubeNodePortsChain, kubePostroutingChain, kubeMarkMasqChain}, true},
		{tableFilter, []string{kubeServicesChain, kubeExternalServicesChain, kubeForwardChain, kubeNodePortsChain, kubeProxyFirewallChain, kubeletFirewallChain}, false},
	} {
		existing, err := ipt.ListChains(t.table)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing the %s table's chains: %w", t.table, err))
			continue
		}
		var drop []string
		for _, c := range existing {
			if slices.Contains(t.fixed, c) || (t.service && isServiceChain(c)) {
				drop = append(drop, c)
			}
		}
		if len(drop) == 0 {
			continue
		}
		// Flush all first, then delete: no chain is referenced when it goes.
		var b strings.Builder
		b.WriteString("*" + t.table + "\n")
		for _, c := range drop {
			b.WriteString(chainLine(c) + "\n")
		}
		b.WriteString("COMMIT\n")
		if err := ipt.Restore([]byte(b.String())); err != nil {
			errs = append(errs, err)
			continue
		}
		b.Reset()
		b.WriteString("*" + t.table + "\n")
		for _, c := range drop {
			b.WriteString("-X " + c + "\n")
		}
		b.WriteString("COMMIT\n")
		if err := ipt.Restore([]byte(b.String())); err != nil {
			errs = append(errs, err)
		}
	}
	for _, t := range canaryTables {
		if err := ipt.DeleteChain(t, kubeProxyCanaryChain); err != nil {
			errs = append(errs, fmt.Errorf("deleting %s/%s: %w", t, kubeProxyCanaryChain, err))
		}
	}
	return errors.Join(errs...)
}
