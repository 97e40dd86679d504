package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// proxyNetns is one fresh network namespace a proxy runs alone in, joined
// to the host by a veth pair: the host end has hostIP (the API server,
// bound to every address, answers there), the namespace's end nsIP (the
// proxy's metrics and healthz, which the bench reads from the host).
type proxyNetns struct {
	name            string // bn-proxy-<seq>
	hostIf, nsIf    string // bnp<seq>h, bnp<seq>n
	hostIP, nsIP    string
	prefixLen       int
	created, paired bool
}

// proxyNetnsPrefix names the bench's namespaces (the task's prefix "bn").
const proxyNetnsPrefix = "bn-proxy-"

func newProxyNetns(seq int) *proxyNetns {
	return &proxyNetns{name: fmt.Sprintf("%s%d", proxyNetnsPrefix, seq),
		hostIf: fmt.Sprintf("bnp%dh", seq), nsIf: fmt.Sprintf("bnp%dn", seq),
		hostIP: fmt.Sprintf("10.251.%d.1", seq), nsIP: fmt.Sprintf("10.251.%d.2", seq), prefixLen: 30}
}

func runCmd(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// setUp creates the namespace and the veth pair; IPv6 is disabled inside
// so that upstream's kube-proxy runs single-stack like skiff's (otherwise
// it would run an IPv6 proxier too, whose empty syncs share the metrics).
func (n *proxyNetns) setUp() error {
	if err := runCmd("ip", "netns", "add", n.name); err != nil {
		return err
	}
	n.created = true
	if err := runCmd("ip", "link", "add", n.hostIf, "type", "veth", "peer", "name", n.nsIf); err != nil {
		return err
	}
	n.paired = true
	cidr := func(ip string) string { return fmt.Sprintf("%s/%d", ip, n.prefixLen) }
	for _, c := range [][]string{
		{"ip", "link", "set", n.nsIf, "netns", n.name},
		{"ip", "addr", "add", cidr(n.hostIP), "dev", n.hostIf},
		{"ip", "link", "set", n.hostIf, "up"},
		{"ip", "netns", "exec", n.name, "ip", "link", "set", "lo", "up"},
		{"ip", "netns", "exec", n.name, "ip", "addr", "add", cidr(n.nsIP), "dev", n.nsIf},
		{"ip", "netns", "exec", n.name, "ip", "link", "set", n.nsIf, "up"},
		{"ip", "netns", "exec", n.name, "ip", "route", "add", "default", "via", n.hostIP},
		{"ip", "netns", "exec", n.name, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"},
	} {
		if err := runCmd(c...); err != nil {
			return err
		}
	}
	return nil
}

// exec runs a command inside the namespace and returns its output.
func (n *proxyNetns) exec(args ...string) (string, error) {
	argv := append([]string{"netns", "exec", n.name}, args...)
	out, err := exec.Command("ip", argv...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		return string(out), fmt.Errorf("ip %s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr))
	}
	return string(out), nil
}

// tearDown removes the namespace (its rules go with it) and the veth pair.
func (n *proxyNetns) tearDown() error {
	var errs []string
	if n.paired {
		// Deleting one end deletes the pair; gone already if the namespace went first.
		if _, err := os.Stat("/sys/class/net/" + n.hostIf); err == nil {
			if err := runCmd("ip", "link", "del", n.hostIf); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	if n.created {
		if err := runCmd("ip", "netns", "del", n.name); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	n.created, n.paired = false, false
	return nil
}

// removeStaleProxyNetns deletes namespaces and links a killed earlier run
// of the bench left (only its own names).
func removeStaleProxyNetns() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], proxyNetnsPrefix) {
			_ = runCmd("ip", "netns", "del", f[0])
		}
	}
	entries, _ := os.ReadDir("/sys/class/net")
	for _, e := range entries {
		if name := e.Name(); strings.HasPrefix(name, "bnp") && strings.HasSuffix(name, "h") {
			_ = runCmd("ip", "link", "del", name)
		}
	}
}
