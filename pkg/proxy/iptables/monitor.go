package iptables

import (
	"context"
	"time"

	"k8s.io/klog/v2"
)

// kubeProxyCanaryChain is an empty chain whose disappearance tells that
// someone flushed the tables (a firewall reload), as upstream's.
const kubeProxyCanaryChain = "KUBE-PROXY-CANARY"

var canaryTables = []string{"mangle", tableNAT, tableFilter}

// Monitor keeps canary chains in the mangle, nat and filter tables and
// calls reload when they vanish, checking every interval until ctx ends,
// when it removes them.
func Monitor(ctx context.Context, ipt Interface, interval time.Duration, reload func()) {
	defer func() {
		for _, t := range canaryTables {
			_ = ipt.DeleteChain(t, kubeProxyCanaryChain)
		}
	}()
	ensure := func() bool {
		for _, t := range canaryTables {
			if err := ipt.EnsureChain(t, kubeProxyCanaryChain); err != nil {
				klog.ErrorS(err, "Could not set up the iptables canary", "table", t, "chain", kubeProxyCanaryChain)
				return false
			}
		}
		return true
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	wait := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
			return true
		}
	}
	for !ensure() {
		if !wait() {
			return
		}
	}
	for wait() {
		exists, err := ipt.ChainExists(canaryTables[0], kubeProxyCanaryChain)
		if err != nil || exists {
			continue
		}
		klog.V(2).InfoS("IPTables canary deleted: reloading the rules", "table", canaryTables[0])
		for !ensure() {
			if !wait() {
				return
			}
		}
		reload()
	}
}
