package ipvs

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
)

// ipsetCLI is IPSet through the ipset command.
type ipsetCLI struct {
	path string
	// prefix runs the command through another (tests: ip netns exec).
	prefix []string
}

// NewIPSet returns the host's ipsets through the ipset command on PATH.
func NewIPSet() (IPSet, error) {
	path, err := exec.LookPath("ipset")
	if err != nil {
		return nil, fmt.Errorf("the ipvs mode needs the ipset command: %w", err)
	}
	return &ipsetCLI{path: path}, nil
}

func (c *ipsetCLI) run(stdin string, args ...string) (string, error) {
	argv := append(append(append([]string{}, c.prefix...), c.path), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("ipset %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// createLine is the `ipset restore` line creating s (upstream's
// parameters).
func createLine(s SetSpec) (string, error) {
	switch s.Type {
	case typeHashIP, typeHashIPPort, typeHashIPPortIP, typeHashIPPortNet:
		return fmt.Sprintf("create %s %s family inet hashsize 1024 maxelem 65536", s.Name, s.Type), nil
	case typeBitmapPort:
		return fmt.Sprintf("create %s %s range 0-65535", s.Name, s.Type), nil
	}
	return "", fmt.Errorf("ipset %s: unknown type %q", s.Name, s.Type)
}

func (c *ipsetCLI) EnsureSets(specs []SetSpec) error {
	var b strings.Builder
	for _, s := range specs {
		line, err := createLine(s)
		if err != nil {
			return err
		}
		b.WriteString(line + "\n")
	}
	// -exist: a set that exists with these parameters is fine.
	_, err := c.run(b.String(), "-exist", "restore")
	return err
}

func (c *ipsetCLI) ListEntries(set string) ([]string, error) {
	out, err := c.run("", "list", set)
	if err != nil {
		return nil, err
	}
	return parseMembers(out), nil
}

// parseMembers is the entries after the "Members:" line of `ipset list`.
func parseMembers(out string) []string {
	var entries []string
	members := false
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if !members {
			members = line == "Members:"
			continue
		}
		if line == "" {
			break
		}
		// Options such as "timeout 5" follow the entry.
		entries = append(entries, strings.Fields(line)[0])
	}
	return entries
}

func (c *ipsetCLI) Apply(changes []SetChange) error {
	if len(changes) == 0 {
		return nil
	}
	var b strings.Builder
	for _, ch := range changes {
		if strings.ContainsAny(ch.Set+ch.Entry, " \t\n") || ch.Set == "" || ch.Entry == "" {
			return fmt.Errorf("invalid ipset change %q to set %q", ch.Entry, ch.Set)
		}
		op := "add"
		if ch.Delete {
			op = "del"
		}
		b.WriteString(op + " " + ch.Set + " " + ch.Entry + "\n")
	}
	// -exist: adding a present entry or deleting an absent one is fine.
	_, err := c.run(b.String(), "-exist", "restore")
	return err
}

func (c *ipsetCLI) DestroySet(set string) error {
	if _, err := c.run("", "list", "-name", set); err != nil {
		return nil // not there
	}
	_, err := c.run("", "destroy", set)
	return err
}
