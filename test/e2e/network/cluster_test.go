package network

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-dev/skiff/pkg/images/builtin"
	"github.com/skiff-dev/skiff/test/containerdtest"
	"github.com/skiff-dev/skiff/test/harness"
	"github.com/skiff-dev/skiff/test/nodeimages"
)

// The test network: a bridge in the root namespace (where skiff server
// listens) and one namespace per host, all named with this test's prefix
// "en".
const (
	bridgeName = "enbr0"
	serverIP   = "10.77.0.1"
	hostPrefix = 24
	// cniBridge is the pod bridge in each host namespace; its own name
	// also gives the CNI network its own name (skiff-encni0), so that the
	// CNI result cache this test removes is its own.
	cniBridge  = "encni0"
	clusterDNS = "10.96.0.10"
	// kubernetesIP is the first address of skiff server's default service
	// range: the kubernetes Service's.
	kubernetesIP = "10.96.0.1"
	// Namespaces of this test's objects start with this: their pod log
	// directories in /var/log/pods are removed at the end.
	nsPrefix = "en-"
)

// host is one of the two hosts: a network namespace running skiff agent.
type host struct {
	name string // the namespace's and the Node's
	ip   string
	veth string // the root namespace's end of its veth pair
	dir  string // the agent's --data-dir
	// kubeconfig is the node's (system:node:<name>), at serverIP.
	kubeconfig string
	// networkKubeconfig is the node's networking parts' identity
	// (system:skiff:node-network), at serverIP.
	networkKubeconfig string
	agent             *proc
}

// cluster is the two hosts and the server.
type cluster struct {
	dir    string
	srv    *harness.Server
	hosts  []*host
	admin  *kubernetes.Clientset
	config *rest.Config
	// mode is the proxy mode the agents run with.
	mode string
	// upstreamDNS is the fake resolver skiff server's DNS forwards to.
	upstreamDNS  string
	stopUpstream func()
}

// missingCapability names what this machine lacks to run the cluster, ""
// if nothing.
func missingCapability() string {
	if os.Geteuid() != 0 {
		return "needs root: creates network namespaces, a bridge and runs containerd"
	}
	for _, bin := range []string{"ip", "nsenter", "containerd", "runc", "iptables-save", "iptables-restore"} {
		if _, err := exec.LookPath(bin); err != nil {
			return bin + " is not installed (hack/node-deps.sh installs the node's tools)"
		}
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		if _, err2 := os.Stat("/opt/cni/bin/bridge"); err2 != nil {
			return "the CNI plugins are not installed (apt-get install containernetworking-plugins)"
		}
	}
	if _, err := os.Stat(builtin.DefaultBusyboxBinary); err != nil {
		return builtin.DefaultBusyboxBinary + " is missing (apt-get install busybox-static): the pods' image"
	}
	probe := "en-probe-" + strconv.Itoa(os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		return fmt.Sprintf("ip netns add fails: %v: %s", err, bytes.TrimSpace(out))
	}
	_ = exec.Command("ip", "netns", "del", probe).Run()
	return ""
}

// lockMachine serializes runs of this test on one machine: they would
// share the bridge, the namespaces and the addresses.
func lockMachine() (func(), error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "skiff-e2e-network.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func startCluster() (c *cluster, err error) {
	started := time.Now()
	c = &cluster{mode: "iptables"}
	defer func() {
		if err != nil {
			c.dumpLogs()
			if cleanupErr := c.teardown(); cleanupErr != nil {
				err = fmt.Errorf("%w (and the cleanup: %v)", err, cleanupErr)
			}
			c = nil
		}
	}()
	// Left by a run that was killed (the lock says none runs now).
	removeStale()
	if c.dir, err = os.MkdirTemp("", "skiff-e2e-network-"); err != nil {
		return c, err
	}
	// Built before the network is made (it takes a while).
	if _, err := harness.SkiffBinary(); err != nil {
		return c, err
	}
	if err := c.makeNetwork(); err != nil {
		return c, fmt.Errorf("the test network: %w", err)
	}
	args := []string{"--bind-address", "0.0.0.0", "--advertise-address", serverIP}
	// The DNS's upstream: a resolver of this test's.
	if c.upstreamDNS, c.stopUpstream, err = startUpstreamDNS(); err != nil {
		return c, err
	}
	args = append(args, "--dns-upstream-servers", c.upstreamDNS)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if c.srv, err = harness.StartSkiff(ctx, harness.Options{Dir: filepath.Join(c.dir, "server"), Args: args, DNS: true}); err != nil {
		return c, fmt.Errorf("skiff server: %w", err)
	}
	if c.config, err = c.srv.RESTConfig(); err != nil {
		return c, err
	}
	if c.admin, err = kubernetes.NewForConfig(c.config); err != nil {
		return c, err
	}
	archives, err := imageArchives()
	if err != nil {
		return c, err
	}
	for _, h := range c.hosts {
		if err := c.prepareHost(ctx, h, archives); err != nil {
			return c, fmt.Errorf("host %s: %w", h.name, err)
		}
	}
	if err := c.startAgents(ctx); err != nil {
		return c, err
	}
	fmt.Fprintf(os.Stderr, "network: two-node cluster up in %s (proxy mode %s)\n", time.Since(started).Round(100*time.Millisecond), c.mode)
	return c, nil
}

// makeNetwork: the bridge with serverIP in the root namespace, and the
// hosts' namespaces on it, each with its address and a default route via
// the bridge.
func (c *cluster) makeNetwork() error {
	if err := run("ip", "link", "add", bridgeName, "type", "bridge"); err != nil {
		return err
	}
	if err := run("ip", "addr", "add", fmt.Sprintf("%s/%d", serverIP, hostPrefix), "dev", bridgeName); err != nil {
		return err
	}
	if err := run("ip", "link", "set", bridgeName, "up"); err != nil {
		return err
	}
	for i, name := range []string{"en-a", "en-b"} {
		h := &host{name: name, ip: fmt.Sprintf("10.77.0.%d", i+2), veth: name + "-veth", dir: filepath.Join(c.dir, name)}
		c.hosts = append(c.hosts, h)
		in := func(args ...string) error { return run(append([]string{"ip", "-n", name}, args...)...) }
		steps := [][]string{
			{"ip", "netns", "add", name},
			{"ip", "link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", name},
			{"ip", "link", "set", h.veth, "master", bridgeName},
			{"ip", "link", "set", h.veth, "up"},
		}
		for _, s := range steps {
			if err := run(s...); err != nil {
				return err
			}
		}
		for _, s := range [][]string{
			{"link", "set", "lo", "up"},
			{"addr", "add", fmt.Sprintf("%s/%d", h.ip, hostPrefix), "dev", "eth0"},
			{"link", "set", "eth0", "up"},
			{"route", "add", "default", "via", serverIP},
		} {
			if err := in(s...); err != nil {
				return err
			}
		}
	}
	return nil
}

// prepareHost writes the host's images, resolv.conf and kubeconfig.
func (c *cluster) prepareHost(ctx context.Context, h *host, archives []string) error {
	images := filepath.Join(h.dir, "agent", "images")
	if err := os.MkdirAll(images, 0o755); err != nil {
		return err
	}
	for _, a := range archives {
		data, err := os.ReadFile(a)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(images, filepath.Base(a)), data, 0o644); err != nil {
			return err
		}
	}
	// The host's own resolver config (dnsPolicy Default pods, and the
	// host search paths of ClusterFirst ones): nothing of this machine's.
	if err := os.WriteFile(filepath.Join(h.dir, "resolv.conf"), []byte("nameserver "+serverIP+"\n"), 0o644); err != nil {
		return err
	}
	// The node's own identity, as a kubelet's, at the address the host
	// reaches the server at; the networking parts' own (the Node
	// authorizer keeps the node to its own Node and pods).
	h.kubeconfig = filepath.Join(h.dir, "kubeconfig")
	if err := c.writeKubeconfig(ctx, h.kubeconfig, "system:node:"+h.name, "system:nodes"); err != nil {
		return err
	}
	h.networkKubeconfig = filepath.Join(h.dir, "network.kubeconfig")
	return c.writeKubeconfig(ctx, h.networkKubeconfig, "system:skiff:node-network")
}

// writeKubeconfig writes a kubeconfig of user in groups, at serverIP.
func (c *cluster) writeKubeconfig(ctx context.Context, path, user string, groups ...string) error {
	data, err := c.srv.UserKubeconfig(ctx, user, groups...)
	if err != nil {
		return err
	}
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return err
	}
	for _, cluster := range cfg.Clusters {
		cluster.Server = fmt.Sprintf("https://%s", net.JoinHostPort(serverIP, strconv.Itoa(c.srv.Port)))
	}
	return clientcmd.WriteToFile(*cfg, path)
}

// agentArgs are the flags of h's skiff agent in c.mode.
func (c *cluster) agentArgs(h *host) []string {
	args := []string{"agent", "--kubeconfig", h.kubeconfig, "--network-kubeconfig", h.networkKubeconfig, "--data-dir", h.dir,
		"--node-name", h.name, "--node-ip", h.ip, "--cni-bridge", cniBridge,
		"--cluster-dns", clusterDNS, "--resolv-conf", filepath.Join(h.dir, "resolv.conf")}
	return append(args, "--proxy-mode", c.mode)
}

// startAgents starts both agents and waits for their Nodes to be Ready.
func (c *cluster) startAgents(ctx context.Context) error {
	bin, err := harness.SkiffBinary()
	if err != nil {
		return err
	}
	for _, h := range c.hosts {
		args := append([]string{"--net=/run/netns/" + h.name, "--", bin}, c.agentArgs(h)...)
		// nsenter, not ip netns exec: that remounts /sys for the
		// namespace, which hides /sys/fs/cgroup from containerd and runc.
		if h.agent, err = startProc(filepath.Join(h.dir, "agent.log"), "nsenter", args...); err != nil {
			return fmt.Errorf("starting the agent of %s: %w", h.name, err)
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for _, h := range c.hosts {
		var last string
		for {
			// The new agent's kubelet listens (the Node may still say
			// Ready from before a restart).
			last = kubeletDown(h)
			if last == "" {
				last = c.nodeNotReady(ctx, h)
			}
			if last == "" {
				break
			}
			select {
			case <-h.agent.exited:
				return fmt.Errorf("the agent of %s exited (%v); log tail:\n%s", h.name, h.agent.err, h.agent.tail(30))
			default:
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("node %s not Ready after 90s: %s; agent log tail:\n%s", h.name, last, h.agent.tail(30))
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	return nil
}

func kubeletDown(h *host) string {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(h.ip, "10250"), time.Second)
	if err != nil {
		return "the kubelet does not listen: " + err.Error()
	}
	conn.Close()
	return ""
}

func (c *cluster) nodeNotReady(ctx context.Context, h *host) string {
	n, err := c.admin.CoreV1().Nodes().Get(ctx, h.name, metav1.GetOptions{})
	if err != nil {
		return err.Error()
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			if cond.Status == corev1.ConditionTrue {
				return ""
			}
			return fmt.Sprintf("Ready=%s %s: %s", cond.Status, cond.Reason, cond.Message)
		}
	}
	return "no Ready condition yet"
}

// stopAgents stops both agents (SIGTERM: each stops its containerd; the
// containers keep running, as a restarted agent adopts them).
func (c *cluster) stopAgents() error {
	var errs []error
	for _, h := range c.hosts {
		if h.agent != nil {
			if err := h.agent.stop(30 * time.Second); err != nil {
				errs = append(errs, fmt.Errorf("agent of %s: %w", h.name, err))
			}
			h.agent = nil
		}
	}
	return errors.Join(errs...)
}

// setProxyMode restarts both agents with their proxy in mode, unless they
// run it already, and waits for their Nodes to be Ready again.
func (c *cluster) setProxyMode(t *testing.T, mode string) (restarted bool) {
	t.Helper()
	if c.mode == mode {
		return false
	}
	started := time.Now()
	if err := c.stopAgents(); err != nil {
		t.Logf("stopping the agents: %v", err)
	}
	c.mode = mode
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.startAgents(ctx); err != nil {
		setupErr = fmt.Errorf("restarting the agents in %s mode: %w", mode, err)
		t.Fatal(setupErr)
	}
	t.Logf("agents restarted in %s mode in %s", mode, time.Since(started).Round(100*time.Millisecond))
	return true
}

// inHost runs a command in h's network namespace.
func inHost(h *host, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", h.name}, args...)...).CombinedOutput()
	return string(out), err
}

// teardown removes everything: agents (and their containerds), the
// containers' shims and processes, the server, mounts, the namespaces
// (and so every rule in them), the bridge, and files outside the test's
// directory the nodes wrote.
func (c *cluster) teardown() error {
	var errs []error
	// The pods' UIDs, for their cgroups.
	var uids []string
	if c.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if pods, err := c.admin.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); err == nil {
			for _, p := range pods.Items {
				uids = append(uids, string(p.UID))
			}
		}
		cancel()
	}
	if err := c.stopAgents(); err != nil {
		errs = append(errs, err)
	}
	var sandboxes []string
	for _, h := range c.hosts {
		sandboxes = append(sandboxes, containerdtest.KillShims(h.dir)...)
	}
	if c.srv != nil {
		if err := c.srv.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("skiff server: %w", err))
		}
	}
	if c.stopUpstream != nil {
		c.stopUpstream()
	}
	for _, h := range c.hosts {
		if out, err := exec.Command("ip", "netns", "del", h.name).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %v: %s", h.name, err, bytes.TrimSpace(out)))
		}
	}
	if out, err := exec.Command("ip", "link", "del", bridgeName).CombinedOutput(); err != nil && linkExists(bridgeName) {
		errs = append(errs, fmt.Errorf("ip link del %s: %v: %s", bridgeName, err, bytes.TrimSpace(out)))
	}
	removeNodeFiles(uids, sandboxes)
	if keep := os.Getenv("NETWORK_E2E_LOGS"); keep != "" && c.dir != "" {
		// For debugging: the agents' and the server's logs.
		_ = os.MkdirAll(keep, 0o755)
		logs, _ := filepath.Glob(filepath.Join(c.dir, "*", "*.log"))
		more, _ := filepath.Glob(filepath.Join(c.dir, "*", "agent", "containerd", "containerd.log"))
		for _, l := range append(logs, more...) {
			if data, err := os.ReadFile(l); err == nil {
				rel, _ := filepath.Rel(c.dir, l)
				_ = os.WriteFile(filepath.Join(keep, strings.ReplaceAll(rel, "/", "_")), data, 0o644)
			}
		}
	}
	if c.dir != "" {
		containerdtest.UnmountUnder(c.dir)
		if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// dumpLogs prints the tails of the agents' and the server's logs.
func (c *cluster) dumpLogs() {
	for _, h := range c.hosts {
		if h.agent != nil {
			fmt.Fprintf(os.Stderr, "==== agent %s log tail:\n%s\n", h.name, h.agent.tail(60))
		}
	}
	if c.srv != nil {
		fmt.Fprintf(os.Stderr, "==== skiff server log tail:\n%s\n", c.srv.LogTail(60))
	}
}

// removeStale removes what a killed run of this test left: processes in
// its namespaces, the namespaces, the bridge, the shims of its data dirs.
func removeStale() {
	for _, ns := range []string{"en-a", "en-b"} {
		if _, err := os.Stat("/run/netns/" + ns); err != nil {
			continue
		}
		if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
			for _, f := range strings.Fields(string(out)) {
				if pid, err := strconv.Atoi(f); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
	if linkExists(bridgeName) {
		_ = exec.Command("ip", "link", "del", bridgeName).Run()
	}
	stale, _ := filepath.Glob(filepath.Join(os.TempDir(), "skiff-e2e-network-*"))
	for _, dir := range stale {
		containerdtest.KillShims(dir)
		containerdtest.UnmountUnder(dir)
		_ = os.RemoveAll(dir)
	}
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// removeNodeFiles removes what the nodes wrote outside their data dirs:
// libcni's result cache of the test's network, the pods' log directories
// and the pods' cgroups.
func removeNodeFiles(uids, sandboxes []string) {
	cached, _ := filepath.Glob("/var/lib/cni/results/skiff-" + cniBridge + "-*")
	for _, f := range cached {
		_ = os.Remove(f)
	}
	// containerd's loopback network, by sandbox.
	for _, id := range sandboxes {
		_ = os.Remove("/var/lib/cni/results/cni-loopback-" + id + "-lo")
	}
	logs, _ := filepath.Glob("/var/log/pods/" + nsPrefix + "*_*")
	for _, d := range logs {
		_ = os.RemoveAll(d)
	}
	if len(uids) == 0 {
		return
	}
	mine := map[string]bool{}
	for _, u := range uids {
		mine["pod"+u] = true
		// The systemd driver's spelling, in case.
		mine["pod"+strings.ReplaceAll(u, "-", "_")] = true
	}
	controllers, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods*")
	for _, root := range controllers {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if mine[d.Name()] {
				dirs = append(dirs, p)
			}
			return nil
		})
		for _, pod := range dirs {
			removeCgroup(pod)
		}
	}
}

// removeCgroup removes a cgroup directory and the ones below it, the
// deepest first (a cgroup goes with rmdir once it has no processes).
func removeCgroup(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			removeCgroup(filepath.Join(dir, e.Name()))
		}
	}
	_ = syscall.Rmdir(dir)
}

var flagName = regexp.MustCompile(`^\s+(?:-\w, )?--([a-z0-9-]+)`)

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// imageArchives are nodeimages' archives (pause, busybox), which it
// builds once per machine; its skips and failures end the set-up.
func imageArchives() (files []string, err error) {
	defer func() {
		if r := recover(); r != nil {
			abort, ok := r.(setupAbort)
			if !ok {
				panic(r)
			}
			err = errors.New(string(abort))
		}
	}()
	return nodeimages.Archives(setupTB{}), nil
}

// setupTB is the testing.TB of TestMain's set-up, for helpers that take
// one: a skip or failure ends the set-up with its message.
type setupTB struct{ testing.TB }

type setupAbort string

func (setupTB) Helper()                           {}
func (setupTB) Logf(format string, args ...any)   { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (setupTB) Skipf(format string, args ...any)  { panic(setupAbort(fmt.Sprintf(format, args...))) }
func (setupTB) Fatalf(format string, args ...any) { panic(setupAbort(fmt.Sprintf(format, args...))) }
