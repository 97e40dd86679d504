package ipvs

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/skiff-dev/skiff/pkg/proxy/iptables"
)

// Cleanup removes what the ipvs mode makes, as upstream's
// CleanupLeftovers: every (IPv4) virtual server, kube-ipvs0, the jumps and
// chains, then the sets (no longer referenced). handle may be nil: a
// kernel without IPVS has no virtual servers.
func Cleanup(handle Handle, ipset IPSet, dummy Dummy, ipt iptables.Interface) error {
	var errs []error
	if handle != nil {
		servers, err := handle.VirtualServers()
		if err != nil {
			errs = append(errs, fmt.Errorf("listing the IPVS virtual servers: %w", err))
		}
		for _, vs := range servers {
			if vs.Address.To4() == nil {
				continue
			}
			if err := handle.DeleteVirtualServer(vs); err != nil {
				errs = append(errs, fmt.Errorf("deleting virtual server %s: %w", vs, err))
			}
		}
	}
	if dummy != nil {
		if err := dummy.DeleteDevice(DummyDevice); err != nil {
			errs = append(errs, fmt.Errorf("deleting %s: %w", DummyDevice, err))
		}
	}
	if ipt != nil {
		errs = append(errs, cleanupRules(ipt))
	}
	if ipset != nil {
		for _, s := range Sets {
			if err := ipset.DestroySet(s.Name); err != nil {
				errs = append(errs, fmt.Errorf("destroying ipset %s: %w", s.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// cleanupRules deletes the jumps, then flushes all our chains and deletes
// them (no chain is referenced when it goes).
func cleanupRules(ipt iptables.Interface) error {
	var errs []error
	for _, j := range jumps {
		if err := ipt.DeleteRule(j.table, j.from, j.args()...); err != nil {
			errs = append(errs, fmt.Errorf("deleting the jump %s/%s -> %s: %w", j.table, j.from, j.to, err))
		}
	}
	for _, t := range []struct {
		table  string
		chains []string
	}{{tableNAT, natChains}, {tableFilter, filterChains}} {
		existing, err := ipt.ListChains(t.table)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing the %s table's chains: %w", t.table, err))
			continue
		}
		var drop []string
		for _, c := range t.chains {
			for _, e := range existing {
				if e == c {
					drop = append(drop, c)
				}
			}
		}
		if len(drop) == 0 {
			continue
		}
		var flush, del strings.Builder
		flush.WriteString("*" + t.table + "\n")
		del.WriteString("*" + t.table + "\n")
		for _, c := range drop {
			flush.WriteString(":" + c + " - [0:0]\n")
			del.WriteString("-X " + c + "\n")
		}
		flush.WriteString("COMMIT\n")
		del.WriteString("COMMIT\n")
		if err := ipt.Restore([]byte(flush.String())); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := ipt.Restore([]byte(del.String())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CleanupHost is Cleanup on this host's kernel parts; those the host lacks
// (IPVS, dummy links, the ipset command) hold nothing to clean.
func CleanupHost() error {
	var handle Handle
	if kernelIPVS() == nil {
		h, err := NewHandle()
		if err != nil {
			return err
		}
		handle = h
	}
	var sets IPSet
	if _, err := exec.LookPath("ipset"); err == nil {
		if sets, err = NewIPSet(); err != nil {
			return err
		}
	}
	dummy, err := NewDummy()
	if err != nil {
		return err
	}
	ipt, err := iptables.New()
	if err != nil {
		return fmt.Errorf("iptables: %w", err)
	}
	return Cleanup(handle, sets, dummy, ipt)
}
