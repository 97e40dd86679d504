package iptables

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"

	goiptables "github.com/coreos/go-iptables/iptables"
)

// Interface is what the proxier does to the host's iptables: chain and
// jump-rule housekeeping in the built-in chains one rule at a time, and
// its own chains in one iptables-restore --noflush per sync.
type Interface interface {
	// EnsureChain creates chain in table unless it exists.
	EnsureChain(table, chain string) error
	// EnsureRuleFirst inserts rule at the top of chain unless it exists.
	EnsureRuleFirst(table, chain string, rule ...string) error
	// DeleteRule deletes rule from chain if it is there.
	DeleteRule(table, chain string, rule ...string) error
	// ChainExists tells whether chain is in table.
	ChainExists(table, chain string) (bool, error)
	// DeleteChain deletes the (empty, unreferenced) chain if it is there.
	DeleteChain(table, chain string) error
	// ListChains lists table's chains.
	ListChains(table string) ([]string, error)
	// Restore runs iptables-restore --noflush --counters with data.
	Restore(data []byte) error
}

// runner is Interface with go-iptables and the iptables-restore of PATH.
type runner struct {
	ipt     *goiptables.IPTables
	restore string
}

// New returns the host's IPv4 iptables (found on PATH).
func New() (Interface, error) {
	ipt, err := goiptables.NewWithProtocol(goiptables.ProtocolIPv4)
	if err != nil {
		return nil, err
	}
	restore, err := exec.LookPath("iptables-restore")
	if err != nil {
		return nil, err
	}
	return &runner{ipt: ipt, restore: restore}, nil
}

func (r *runner) EnsureChain(table, chain string) error {
	exists, err := r.ipt.ChainExists(table, chain)
	if err != nil || exists {
		return err
	}
	if err := r.ipt.NewChain(table, chain); err != nil {
		// Made meanwhile by another writer: fine.
		if exists, _ := r.ipt.ChainExists(table, chain); exists {
			return nil
		}
		return err
	}
	return nil
}

func (r *runner) EnsureRuleFirst(table, chain string, rule ...string) error {
	exists, err := r.ipt.Exists(table, chain, rule...)
	if err != nil || exists {
		return err
	}
	return r.ipt.Insert(table, chain, 1, rule...)
}

func (r *runner) DeleteRule(table, chain string, rule ...string) error {
	err := r.ipt.DeleteIfExists(table, chain, rule...)
	if e, ok := err.(*goiptables.Error); ok && e.IsNotExist() {
		return nil
	}
	return err
}

func (r *runner) ChainExists(table, chain string) (bool, error) {
	return r.ipt.ChainExists(table, chain)
}

func (r *runner) DeleteChain(table, chain string) error {
	exists, err := r.ipt.ChainExists(table, chain)
	if err != nil || !exists {
		return err
	}
	return r.ipt.DeleteChain(table, chain)
}

func (r *runner) ListChains(table string) ([]string, error) {
	return r.ipt.ListChains(table)
}

func (r *runner) Restore(data []byte) error {
	cmd := exec.Command(r.restore, "-w", "5", "--noflush", "--counters")
	cmd.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return &RestoreError{Err: err, Output: strings.TrimSpace(stderr.String()), Input: data}
	}
	return nil
}

// RestoreError is a failed iptables-restore with the lines around the one
// it complained about.
type RestoreError struct {
	Err    error
	Output string
	Input  []byte
}

func (e *RestoreError) Error() string {
	msg := fmt.Sprintf("iptables-restore: %v: %s", e.Err, e.Output)
	// "line N failed": show that line.
	var n int
	if i := strings.Index(e.Output, "line "); i >= 0 {
		if _, err := fmt.Sscanf(e.Output[i:], "line %d", &n); err == nil && n > 0 {
			lines := strings.Split(string(e.Input), "\n")
			if n <= len(lines) {
				msg += fmt.Sprintf(" (line %d: %q)", n, lines[n-1])
			}
		}
	}
	return msg
}
