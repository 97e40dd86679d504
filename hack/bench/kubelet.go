package main

// The kubelet scenario set (--scenarios kubelet), skiff's kubelet against
// upstream's kubelet on the same containerd and the same API server:
//
//	hack/upstream.sh kubelet                 # once
//	go run ./hack/bench --scenarios kubelet  # ~5 minutes; root, containerd, runc
//
// One skiff server (--disable-agent, --cluster-cidr 10.213.0.0/16 so that its
// node's podCIDR cannot collide with another node's on this machine) and one
// containerd started for the run (its data and CNI conf dir in a temporary
// directory; pause and busybox built from ./cmd/pause and busybox-static and
// imported, as test/nodeimages does) serve the whole run. Then each kubelet
// in turn (--kubelet-order), a fresh process with a fresh root dir, as node
// bench-node, with the same credentials:
//
//	skiff kubelet --kubeconfig K --container-runtime-endpoint unix://S --root-dir R
//	    --hostname-override bench-node --node-ip IP --port P
//	    --tls-cert-file C --tls-private-key-file CK --client-ca-file CA --data-dir D
//	    --cni-bridge skbench0
//	kubelet (v1.37.2, hack/upstream.sh) --config F --kubeconfig K --root-dir R
//	    --cert-dir R/pki --hostname-override bench-node --node-ip IP
//
// K is a client certificate of system:node:bench-node (group system:nodes)
// from `skiff kubeconfig`; C a serving certificate of the cluster CA for
// bench-node and IP (the API server verifies kubelets against it); CA the
// cluster CA, which also signed the admin's client certificate the bench
// reads /stats/summary with. F is a KubeletConfiguration: cgroupDriver
// cgroupfs, failSwapOn false, failCgroupV1 false (this machine may be cgroup
// v1), authentication by x509 (CA) and webhook, anonymous off,
// authorization Webhook, containerRuntimeEndpoint S, resolvConf
// /etc/resolv.conf, port P, healthz on loopback, and, so that it does not
// touch what else runs here: cgroupRoot /skiff-bench-kubelet (upstream
// kills the processes of pod cgroups it does not know under its root; other
// nodes on this machine use /kubepods) and makeIPTablesUtilChains false.
// Upstream sets kernel tunables (vm.overcommit_memory, kernel.panic, ...):
// the bench restores them afterwards. The conflist (bridge skbench0,
// network skiff-bench, the Node's podCIDR) is written into containerd's
// conf dir by the bench once the Node has its podCIDR.
//
// For each kubelet: time from process start to the Node Ready without
// taints; after --kubelet-settle, its CPU use over --kubelet-idle and RSS
// with no pods. Then rounds (--only): no-token (pods with
// automountServiceAccountToken false) and token (true: a projected
// service-account token volume each). A round creates --kubelet-pods
// busybox pods (`sleep 3600`, image present, IfNotPresent, nodeName
// bench-node, terminationGracePeriodSeconds --kubelet-grace) from
// --kubelet-clients clients at once; a pod's startup latency is from the
// start of its create call to the watch event that shows it Ready
// (p50/p99/max; nearest rank, so with 30 pods p99 is the slowest). Then, with the pods running, after --kubelet-settle: CPU over
// --kubelet-idle, RSS, and --kubelet-stats-gets GETs of /stats/summary
// straight to the kubelet's port and as many through nodes/proxy (median
// and max). Then every pod is deleted (default options: the pod's grace
// period, which `sleep` as PID 1 sits out, so it is in the time) and the
// time until the watch has seen the last one gone, until no sandbox is
// ready (CRI; a kubelet may confirm a deletion first) and until no volume
// is mounted under the root dir's pods/ (upstream unmounts before it
// confirms; skiff's `kubelet` writes its own conflist into /etc/cni/net.d,
// which this containerd does not read: the bench restores that file too).
// The kubelet's and
// containerd's CPU seconds are reported per phase; the kubelet's RSS is
// sampled every 250 ms for its peak.
//
// Between kubelets: SIGTERM to the kubelet, then every sandbox removed
// through CRI, mounts left under its root dir unmounted, the Node deleted,
// the CNI network cleaned (bridge, nat rules, leases). At the end also
// containerd stopped, cgroups, the pods' log dirs and the temporary
// directories removed.
import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/images/builtin"
	"github.com/skiff-dev/skiff/pkg/kubelet/cni"
	"github.com/skiff-dev/skiff/pkg/kubelet/containerd"
	"github.com/skiff-dev/skiff/pkg/kubelet/machine"
	"github.com/skiff-dev/skiff/pkg/pki"
	"github.com/skiff-dev/skiff/test/harness"
)

// kubeletConfig is the kubelet scenario set's part of the flags.
type kubeletConfig struct {
	pods        int
	clients     int
	statsGets   int
	order       string
	settle      time.Duration
	idle        time.Duration
	timeout     time.Duration
	grace       int64
	clusterCIDR string
}

var kubeletFlags kubeletConfig

// kubeletScenarioNames are the rounds --only accepts with --scenarios kubelet.
var kubeletScenarioNames = []string{"no-token", "token"}

const (
	benchNodeName     = "bench-node"
	benchBridge       = "skbench0"
	benchNetwork      = "skiff-bench"
	benchCgroupRoot   = "/skiff-bench-kubelet"
	kubeletNSPrefix   = "kubelet"
	kubeletRSSSampled = 250 * time.Millisecond
)

func init() {
	f := &kubeletFlags
	flag.IntVar(&f.pods, "kubelet-pods", 30, "kubelet scenarios: pods per round")
	flag.IntVar(&f.clients, "kubelet-clients", 10, "kubelet scenarios: concurrent clients creating and deleting the pods")
	flag.IntVar(&f.statsGets, "kubelet-stats-gets", 20, "kubelet scenarios: GETs of /stats/summary, direct and through nodes/proxy each")
	flag.StringVar(&f.order, "kubelet-order", "skiff,upstream", "kubelet scenarios: which kubelet runs first")
	flag.DurationVar(&f.settle, "kubelet-settle", 10*time.Second, "kubelet scenarios: pause before each idle measurement (quick: 3s)")
	flag.DurationVar(&f.idle, "kubelet-idle", 20*time.Second, "kubelet scenarios: how long the idle CPU is measured (quick: 5s)")
	flag.DurationVar(&f.timeout, "kubelet-timeout", 5*time.Minute, "kubelet scenarios: give up on a phase not done by then")
	flag.Int64Var(&f.grace, "kubelet-grace", 1, "kubelet scenarios: the pods' terminationGracePeriodSeconds")
	flag.StringVar(&f.clusterCIDR, "kubelet-cluster-cidr", "10.213.0.0/16", "kubelet scenarios: the server's --cluster-cidr (the node's podCIDR comes from it)")
}

func (f *kubeletConfig) defaults(quick bool) error {
	set := map[string]bool{}
	flag.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if quick && !set["kubelet-settle"] {
		f.settle = 3 * time.Second
	}
	if quick && !set["kubelet-idle"] {
		f.idle = 5 * time.Second
	}
	if f.pods < 1 || f.clients < 1 || f.statsGets < 1 || f.grace < 0 {
		return errors.New("kubelet sizes must be positive")
	}
	for _, k := range f.kubelets() {
		if k != "skiff" && k != "upstream" {
			return fmt.Errorf("--kubelet-order: unknown kubelet %q (have skiff, upstream)", k)
		}
	}
	return nil
}

func (f *kubeletConfig) kubelets() []string {
	var out []string
	for _, k := range strings.Split(f.order, ",") {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, k)
		}
	}
	return out
}

func (f *kubeletConfig) toJSON(c *config) map[string]any {
	return map[string]any{
		"scenarios": "kubelet", "quick": c.quick, "skip_upstream": c.skipUpstream, "only": c.only,
		"pods": f.pods, "clients": f.clients, "stats_gets": f.statsGets, "order": f.kubelets(),
		"settle": f.settle.String(), "idle": f.idle.String(), "timeout": f.timeout.String(),
		"grace_period_seconds": f.grace, "cluster_cidr": f.clusterCIDR, "node": benchNodeName,
		"cgroup_root_upstream": benchCgroupRoot,
	}
}

// kubeletBench is one run of the kubelet scenario set.
type kubeletBench struct {
	cfg    *config
	kc     *kubeletConfig
	res    *results
	logDir string
	work   string // short temporary dir: containerd, root dirs, CNI leases
	host   *hostState

	srv            *harness.Server
	t              *target
	nodeKubeconfig string
	caFile         string
	serving        pki.Files
	nodeIP         string
	ctrd           *containerd.Process
	ctrdEndpoint   string // unix://<its socket>
	cniConf        cni.Config
	cniConfDir     string
	upstreamBin    string
	namespaces     []string // created, for the pods' log dirs
}

func runKubeletBench(ctx context.Context, cfg *config) int {
	kc := &kubeletFlags
	if err := kc.defaults(cfg.quick); err != nil {
		usageError("%v", err)
	}
	res, _, err := startResults(kc.toJSON(cfg), cfg.skipUpstream, "kubelet")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	kubelets := kc.kubelets()
	if cfg.skipUpstream {
		kubelets = slices.DeleteFunc(kubelets, func(k string) bool { return k == "upstream" })
	}
	if why := kubeletHostMissing(); why != "" {
		fmt.Fprintln(os.Stderr, "bench: the kubelet scenarios need", why)
		return 1
	}
	// Absolute: the kubelets get paths of the server's dir.
	logDir, err := filepath.Abs(strings.TrimSuffix(cfg.out, ".json") + "-logs")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	b := &kubeletBench{cfg: cfg, kc: kc, res: res, logDir: logDir, upstreamBin: res.Host.UpstreamBinary}
	if err := os.MkdirAll(b.logDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	logf("load average %.2f on %d CPUs; kubelets: %s; %d pods a round; logs in %s", loadAvg(), runtime.NumCPU(),
		strings.Join(kubelets, ", "), kc.pods, b.logDir)
	defer harness.Cleanup()

	failed := false
	if err := b.setUp(ctx); err != nil {
		res.note("set-up: %v", err)
		failed = true
	} else {
		for _, name := range kubelets {
			if ctx.Err() != nil {
				break
			}
			logf("== %s kubelet", name)
			load := loadAvg()
			err := b.runKubelet(ctx, name)
			res.note("%s kubelet: load average %.2f before, %.2f after (the machine is shared)", name, load, loadAvg())
			if err != nil {
				res.note("%s kubelet: %v", name, err)
				failed = true
			}
		}
	}
	b.tearDown()
	all := []string{"skiff"}
	if !cfg.skipUpstream {
		all = append(all, "upstream")
	}
	return res.conclude(ctx, all, func(out io.Writer) { kubeletMarkdown(out, res) }, cfg.out, failed)
}

// kubeletHostMissing says what this machine lacks to run real pods, "" if
// nothing.
func kubeletHostMissing() string {
	if os.Geteuid() != 0 {
		return "root (containers, mounts, cgroups)"
	}
	for _, bin := range []string{"containerd", "runc", "ctr", "ip", "iptables-save"} {
		if _, err := exec.LookPath(bin); err != nil {
			return bin + " (apt-get install containerd runc iptables iproute2, or hack/node-deps.sh)"
		}
	}
	if _, err := os.Stat(builtin.DefaultBusyboxBinary); err != nil {
		return builtin.DefaultBusyboxBinary + " (apt-get install busybox-static)"
	}
	if _, err := cni.FindBinDir(); err != nil {
		return err.Error()
	}
	return ""
}

// setUp starts the server and containerd, makes the node's credentials and
// certificate and imports the images.
func (b *kubeletBench) setUp(ctx context.Context) error {
	t0 := time.Now()
	var err error
	if b.host, err = snapshotHost(); err != nil {
		return err
	}
	// containerd's socket path must stay short: not under _output.
	if b.work, err = os.MkdirTemp("", "skb-"); err != nil {
		return err
	}
	b.srv, err = harness.StartSkiff(ctx, harness.Options{Dir: filepath.Join(b.logDir, "server"),
		Args: []string{"--cluster-cidr", b.kc.clusterCIDR}})
	if err != nil {
		return fmt.Errorf("start skiff server: %w", err)
	}
	cfg, err := b.srv.RESTConfig()
	if err != nil {
		return err
	}
	b.t = &target{name: "skiff", srv: b.srv, cfg: cfg}

	kubeconfig, err := b.srv.UserKubeconfig(ctx, "system:node:"+benchNodeName, "system:nodes")
	if err != nil {
		return err
	}
	b.nodeKubeconfig = filepath.Join(b.work, "node.kubeconfig")
	if err := os.WriteFile(b.nodeKubeconfig, kubeconfig, 0o600); err != nil {
		return err
	}
	ip, err := machine.DefaultRouteIP()
	if err != nil {
		return fmt.Errorf("the node's IP: %w", err)
	}
	b.nodeIP = ip.String()
	pkiDir := filepath.Join(b.srv.Dir, "pki")
	ca, err := pki.LoadCA(pkiDir)
	if err != nil {
		return err
	}
	b.caFile = filepath.Join(pkiDir, "ca.crt")
	if b.serving, err = ca.EnsureServingCert(filepath.Join(b.work, "pki"), "kubelet",
		[]string{benchNodeName, "localhost", "127.0.0.1", b.nodeIP}); err != nil {
		return err
	}

	b.cniConfDir = filepath.Join(b.work, "net.d")
	b.cniConf = cni.Config{BridgeName: benchBridge, NetworkName: benchNetwork, DataDir: filepath.Join(b.work, "cni")}
	if b.ctrd, err = containerd.Start(ctx, containerd.Options{DataDir: filepath.Join(b.work, "containerd"), CNIConfDir: b.cniConfDir}); err != nil {
		return fmt.Errorf("start containerd: %w", err)
	}
	b.ctrdEndpoint = b.ctrd.Endpoint()
	if err := importNodeImages(ctx, b.work, b.ctrd.Address()); err != nil {
		return err
	}
	logf("server, containerd %s (pid %d) and images ready in %s; node IP %s", b.ctrd.Version(), b.ctrd.Pid(),
		time.Since(t0).Round(time.Second), b.nodeIP)
	return nil
}

// importNodeImages builds pause and busybox as test/nodeimages does and
// imports them.
func importNodeImages(ctx context.Context, work, address string) error {
	root, err := moduleRootDir()
	if err != nil {
		return err
	}
	pause := filepath.Join(work, "pause")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", pause, "./cmd/pause")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/pause: %w: %s", err, out)
	}
	dir := filepath.Join(work, "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files, err := builtin.Build(ctx, dir, pause, builtin.DefaultBusyboxBinary)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := importImage(ctx, address, f); err != nil {
			return err
		}
	}
	return os.RemoveAll(dir)
}

func moduleRootDir() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run the bench from the skiff checkout")
	}
	return filepath.Dir(mod), nil
}

// kubeletRun is one kubelet process and what the bench measures of it.
type kubeletRun struct {
	name    string
	p       *process
	rootDir string
	peakRSS func() float64
	started time.Time
}

// runKubelet runs one kubelet through the node start, the rounds and the
// clean-up.
func (b *kubeletBench) runKubelet(ctx context.Context, name string) (err error) {
	rec := recorder{res: b.res, server: name, workload: "node"}
	k := &kubeletRun{name: name, rootDir: filepath.Join(b.work, name)}
	if err := os.MkdirAll(k.rootDir, 0o750); err != nil {
		return err
	}
	bin, args, err := b.kubeletCommand(name, k.rootDir)
	if err != nil {
		return err
	}
	ctrd0 := b.containerdCPU()
	k.started = time.Now()
	k.p, err = startProcess(filepath.Join(b.logDir, name+"-kubelet.log"), bin, args)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	pid := strconv.Itoa(k.p.pid)
	cpu0 := procCPU(pid)
	k.peakRSS = samplePeakRSS(k.p, kubeletRSSSampled)
	defer func() {
		peak := k.peakRSS()
		prec := recorder{res: b.res, server: name, workload: "kubelet process"}
		prec.set("peak RSS (sampled every 250 ms)", "MiB", peak)
		prec.set("CPU, whole run", "s", (procCPU(pid) - cpu0).Seconds())
		prec.set("containerd CPU, whole run", "s", (b.containerdCPU() - ctrd0).Seconds())
		t0 := time.Now()
		if stopErr := k.p.stop(); stopErr != nil {
			b.res.note("%s kubelet did not stop cleanly: %v (log %s)", name, stopErr, k.p.logPath)
		} else {
			prec.set("SIGTERM → exited", "s", time.Since(t0).Seconds())
		}
		if cleanErr := b.resetNode(k); cleanErr != nil {
			err = errors.Join(err, fmt.Errorf("clean-up: %w", cleanErr))
		}
	}()

	if err := b.waitNodeReady(ctx, k); err != nil {
		return err
	}
	rec.set("process start → Node Ready, untainted", "s", time.Since(k.started).Seconds())
	logf("%s: Node %s Ready after %s", name, benchNodeName, time.Since(k.started).Round(time.Millisecond))
	if err := b.measureIdle(ctx, k, rec, "no pods"); err != nil {
		return err
	}
	for _, automount := range []bool{false, true} {
		key := "no-token"
		if automount {
			key = "token"
		}
		if !b.cfg.wants(key) {
			continue
		}
		if err := b.round(ctx, k, automount); err != nil {
			return fmt.Errorf("round %s: %w", key, err)
		}
	}
	return nil
}

// kubeletCommand is the command line of kubelet name with its data in root.
func (b *kubeletBench) kubeletCommand(name, root string) (string, func(port int) []string, error) {
	if name == "skiff" {
		bin, err := harness.SkiffBinary()
		if err != nil {
			return "", nil, err
		}
		return bin, func(port int) []string {
			return []string{"kubelet", "--kubeconfig", b.nodeKubeconfig, "--container-runtime-endpoint", b.ctrdEndpoint,
				"--root-dir", root, "--hostname-override", benchNodeName, "--node-ip", b.nodeIP, "--port", strconv.Itoa(port),
				"--tls-cert-file", b.serving.CertFile, "--tls-private-key-file", b.serving.KeyFile, "--client-ca-file", b.caFile,
				"--data-dir", filepath.Join(root, "data"), "--cni-bridge", benchBridge}
		}, nil
	}
	healthz, err := harness.FreePort()
	if err != nil {
		return "", nil, err
	}
	if err := ensureCgroupRoot(benchCgroupRoot); err != nil {
		return "", nil, err
	}
	configFile := filepath.Join(root, "kubelet-config.yaml")
	return b.upstreamBin, func(port int) []string {
		// Written here: the port is known only now.
		if err := os.WriteFile(configFile, []byte(b.upstreamConfig(port, healthz)), 0o644); err != nil {
			b.res.note("writing %s: %v", configFile, err)
		}
		return []string{"--config", configFile, "--kubeconfig", b.nodeKubeconfig, "--root-dir", root,
			"--cert-dir", filepath.Join(root, "pki"), "--hostname-override", benchNodeName, "--node-ip", b.nodeIP, "--v", "1"}
	}, nil
}

// upstreamConfig is upstream kubelet's KubeletConfiguration.
func (b *kubeletBench) upstreamConfig(port, healthz int) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
tlsCertFile: %q
tlsPrivateKeyFile: %q
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %q
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
cgroupRoot: %q
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: %q
resolvConf: /etc/resolv.conf
makeIPTablesUtilChains: false
`, port, healthz, b.serving.CertFile, b.serving.KeyFile, b.caFile, benchCgroupRoot, b.ctrdEndpoint)
}

func (b *kubeletBench) containerdCPU() time.Duration {
	if b.ctrd == nil {
		return 0
	}
	return procCPU(strconv.Itoa(b.ctrd.Pid()))
}

// waitNodeReady waits for the kubelet's Node, writes the conflist of its
// podCIDR and waits until the Node is Ready without taints.
func (b *kubeletBench) waitNodeReady(ctx context.Context, k *kubeletRun) error {
	cs := b.t.admin()
	var node *corev1.Node
	err := poll(ctx, k.p, 100*time.Millisecond, b.kc.timeout, func() (bool, string) {
		n, err := cs.CoreV1().Nodes().Get(ctx, benchNodeName, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		node = n
		return len(n.Spec.PodCIDRs) > 0 || n.Spec.PodCIDR != "", "registered, no podCIDR yet"
	})
	if err != nil {
		return fmt.Errorf("node registration: %w", err)
	}
	if err := b.writeConflist(node); err != nil {
		return err
	}
	err = poll(ctx, k.p, 100*time.Millisecond, b.kc.timeout, func() (bool, string) {
		n, err := cs.CoreV1().Nodes().Get(ctx, benchNodeName, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return nodeReady(n) && len(n.Spec.Taints) == 0, nodeState(n)
	})
	if err != nil {
		return fmt.Errorf("node Ready: %w", err)
	}
	return nil
}

func nodeState(n *corev1.Node) string {
	var parts []string
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			parts = append(parts, fmt.Sprintf("Ready=%s (%s: %s)", c.Status, c.Reason, c.Message))
		}
	}
	for _, t := range n.Spec.Taints {
		parts = append(parts, "taint "+t.ToString())
	}
	return strings.Join(parts, ", ")
}

func (b *kubeletBench) writeConflist(node *corev1.Node) error {
	cidrs := node.Spec.PodCIDRs
	if len(cidrs) == 0 {
		cidrs = []string{node.Spec.PodCIDR}
	}
	conf := b.cniConf
	for _, c := range cidrs {
		p, err := parsePrefix(c)
		if err != nil {
			return fmt.Errorf("the Node's podCIDR %q: %w", c, err)
		}
		conf.PodCIDRs = append(conf.PodCIDRs, p)
	}
	if err := cni.WriteConfig(b.cniConfDir, conf); err != nil {
		return err
	}
	logf("CNI conflist for %v written", cidrs)
	return nil
}

// measureIdle waits --kubelet-settle, then records the kubelet's and
// containerd's CPU use over --kubelet-idle and the kubelet's RSS.
func (b *kubeletBench) measureIdle(ctx context.Context, k *kubeletRun, rec recorder, what string) error {
	if err := sleep(ctx, b.kc.settle); err != nil {
		return err
	}
	pid := strconv.Itoa(k.p.pid)
	t0, cpu0, ctrd0 := time.Now(), procCPU(pid), b.containerdCPU()
	if err := sleep(ctx, b.kc.idle); err != nil {
		return err
	}
	el := time.Since(t0).Seconds()
	rec.set("CPU idle, "+what, "% of a CPU", 100*(procCPU(pid)-cpu0).Seconds()/el)
	rec.set("containerd CPU idle, "+what, "% of a CPU", 100*(b.containerdCPU()-ctrd0).Seconds()/el)
	rec.set("RSS, "+what, "MiB", k.p.rssMiB())
	return nil
}

// round creates the pods, measures with them running and deletes them.
func (b *kubeletBench) round(ctx context.Context, k *kubeletRun, automount bool) error {
	what := "no SA token"
	if automount {
		what = "SA token volume"
	}
	rec := recorder{res: b.res, server: k.name, workload: fmt.Sprintf("%d pods, %s", b.kc.pods, what)}
	cs, err := b.t.clients(b.kc.clients)
	if err != nil {
		return err
	}
	ns, err := b.namespace(ctx)
	if err != nil {
		return err
	}
	tr, err := trackPods(ctx, cs[0], ns)
	if err != nil {
		return err
	}
	defer tr.stop()
	pid := strconv.Itoa(k.p.pid)

	// Start.
	created := make([]time.Time, b.kc.pods)
	cpu0, ctrd0 := procCPU(pid), b.containerdCPU()
	first := time.Now()
	if err := forEachPod(ctx, cs, b.kc.pods, func(ctx context.Context, c kubernetes.Interface, i int) error {
		created[i] = time.Now()
		_, err := c.CoreV1().Pods(ns).Create(ctx, benchPod(i, automount, b.kc.grace), metav1.CreateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("create pods: %w", err)
	}
	if err := tr.wait(ctx, k.p, b.kc.timeout, func(s *podStates) (bool, string) {
		return len(s.ready) >= b.kc.pods, fmt.Sprintf("%d of %d Ready; %s", len(s.ready), b.kc.pods, s.sample())
	}); err != nil {
		return fmt.Errorf("pods Ready: %w%s", err, warningEvents(ctx, cs[0], ns))
	}
	ready := tr.snapshot().ready
	var lat []time.Duration
	last := first
	for i := range b.kc.pods {
		at := ready[podName(i)]
		lat = append(lat, at.Sub(created[i]))
		last = later(last, at)
	}
	slices.Sort(lat)
	rec.set("startup p50 (create call → Ready seen)", "ms", ms(percentile(lat, 50)))
	rec.set("startup p99", "ms", ms(percentile(lat, 99)))
	rec.set("startup max", "ms", ms(lat[len(lat)-1]))
	rec.set("first create → last Ready", "s", last.Sub(first).Seconds())
	rec.set("kubelet CPU, creates → all Ready", "s", (procCPU(pid) - cpu0).Seconds())
	rec.set("containerd CPU, creates → all Ready", "s", (b.containerdCPU() - ctrd0).Seconds())
	logf("%s: %d pods Ready: p50 %s, p99 %s, last after %s", k.name, b.kc.pods, fmtDur(percentile(lat, 50)),
		fmtDur(percentile(lat, 99)), last.Sub(first).Round(time.Millisecond))

	// Running.
	if err := b.measureIdle(ctx, k, rec, fmt.Sprintf("%d pods running", b.kc.pods)); err != nil {
		return err
	}
	if err := b.measureStats(ctx, k, rec, ns); err != nil {
		return err
	}

	// Delete.
	cpu0, ctrd0 = procCPU(pid), b.containerdCPU()
	first = time.Now()
	if err := forEachPod(ctx, cs, b.kc.pods, func(ctx context.Context, c kubernetes.Interface, i int) error {
		return c.CoreV1().Pods(ns).Delete(ctx, podName(i), metav1.DeleteOptions{})
	}); err != nil {
		return fmt.Errorf("delete pods: %w", err)
	}
	if err := tr.wait(ctx, k.p, b.kc.timeout, func(s *podStates) (bool, string) {
		return len(s.gone) >= b.kc.pods, fmt.Sprintf("%d of %d gone; %s", len(s.gone), b.kc.pods, s.sample())
	}); err != nil {
		return fmt.Errorf("pods gone: %w", err)
	}
	last = first
	for _, at := range tr.snapshot().gone {
		last = later(last, at)
	}
	rec.set(fmt.Sprintf("first delete → last gone from the API (grace period %ds)", b.kc.grace), "s", last.Sub(first).Seconds())
	// A kubelet may confirm the deletion before its sandboxes are stopped.
	if err := poll(ctx, k.p, 100*time.Millisecond, b.kc.timeout, func() (bool, string) {
		n, err := readySandboxes(ctx, b.ctrd.Endpoint())
		return err == nil && n == 0, fmt.Sprintf("%d sandboxes still ready (%v)", n, err)
	}); err != nil {
		return fmt.Errorf("sandboxes stopped: %w", err)
	}
	rec.set("first delete → no sandbox ready (CRI)", "s", time.Since(first).Seconds())
	// Upstream unmounts a pod's volumes before it confirms the deletion.
	podsDir := filepath.Join(k.rootDir, "pods")
	if err := poll(ctx, k.p, 100*time.Millisecond, time.Minute, func() (bool, string) {
		n, err := mountsUnder(podsDir)
		return err == nil && n == 0, fmt.Sprintf("%d pod volumes still mounted (%v)", n, err)
	}); err != nil {
		rec.fail("first delete → pod volumes unmounted", "s", err.Error())
	} else {
		rec.set("first delete → pod volumes unmounted", "s", time.Since(first).Seconds())
	}
	rec.set("kubelet CPU, deletes → all gone", "s", (procCPU(pid) - cpu0).Seconds())
	rec.set("containerd CPU, deletes → all gone", "s", (b.containerdCPU() - ctrd0).Seconds())
	logf("%s: %d pods gone after %s", k.name, b.kc.pods, last.Sub(first).Round(time.Millisecond))
	if err := cs[0].CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		b.res.note("delete namespace %s: %v", ns, err)
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// namespace creates a fresh namespace and waits for what pods with a
// service-account token need: ServiceAccount default and kube-root-ca.crt.
func (b *kubeletBench) namespace(ctx context.Context) (string, error) {
	cs := b.t.admin()
	ns, err := newNamespace(ctx, cs, kubeletNSPrefix, false)
	if err != nil {
		return "", err
	}
	b.namespaces = append(b.namespaces, ns)
	err = poll(ctx, nil, 100*time.Millisecond, time.Minute, func() (bool, string) {
		_, errSA := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		_, errCM := cs.CoreV1().ConfigMaps(ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		return errSA == nil && errCM == nil, fmt.Sprintf("serviceaccount default: %v; configmap kube-root-ca.crt: %v", errSA, errCM)
	})
	return ns, err
}

func podName(i int) string { return fmt.Sprintf("p-%03d", i) }

func benchPod(i int, automount bool, grace int64) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: podName(i), Labels: map[string]string{"app": "bench-kubelet"}},
		Spec: corev1.PodSpec{
			NodeName:                      benchNodeName,
			AutomountServiceAccountToken:  ptr.To(automount),
			TerminationGracePeriodSeconds: ptr.To(grace),
			Containers: []corev1.Container{{
				Name: "sleep", Image: builtin.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sleep", "3600"},
			}},
		},
	}
}

// forEachPod runs op for pods 0..n-1 spread over the clients, all at once.
func forEachPod(ctx context.Context, cs []kubernetes.Interface, n int, op func(context.Context, kubernetes.Interface, int) error) error {
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			for i := range next {
				if err := op(ctx, c, i); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", podName(i), err))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// measureStats GETs /stats/summary straight from the kubelet (the admin's
// client certificate, verified by the cluster CA) and through nodes/proxy.
func (b *kubeletBench) measureStats(ctx context.Context, k *kubeletRun, rec recorder, ns string) error {
	hc, err := componentClient(b.t.cfg)
	if err != nil {
		return err
	}
	direct := func(ctx context.Context) ([]byte, error) {
		code, body, err := k.p.get(ctx, hc, "/stats/summary")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("status %d: %s", code, strings.TrimSpace(body))
		}
		return []byte(body), err
	}
	proxied := func(ctx context.Context) ([]byte, error) {
		res := b.t.admin().CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", benchNodeName, "proxy", "stats", "summary").Do(ctx)
		body, err := res.Raw()
		if err != nil {
			var code int
			res.StatusCode(&code)
			return nil, fmt.Errorf("%w (status %d: %s)", err, code, strings.TrimSpace(string(body)))
		}
		return body, nil
	}
	node, err := b.t.admin().CoreV1().Nodes().Get(ctx, benchNodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	reported := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	for _, m := range []struct {
		how string
		get func(context.Context) ([]byte, error)
	}{{"direct", direct}, {"nodes/proxy", proxied}} {
		var lat []time.Duration
		var body []byte
		var failure error
		for range b.kc.statsGets {
			t0 := time.Now()
			data, err := m.get(ctx)
			if err != nil {
				failure = err
				break
			}
			lat = append(lat, time.Since(t0))
			body = data
		}
		metric := fmt.Sprintf("/stats/summary median of %d (%s)", b.kc.statsGets, m.how)
		if m.how == "nodes/proxy" && reported != k.p.port {
			// The API server would reach whatever listens on that port.
			rec.fail(metric, "ms", fmt.Sprintf("the Node's status.daemonEndpoints.kubeletEndpoint.port is %d, the kubelet serves on --port %d", reported, k.p.port))
			continue
		}
		if failure != nil {
			rec.fail(metric, "ms", failure.Error())
			continue
		}
		slices.Sort(lat)
		med := make([]float64, len(lat))
		for i, d := range lat {
			med[i] = ms(d)
		}
		rec.set(metric, "ms", median(med))
		rec.set(fmt.Sprintf("/stats/summary max (%s)", m.how), "ms", ms(lat[len(lat)-1]))
		if m.how == "direct" {
			rec.set("/stats/summary: the round's pods in it", "pods", float64(summaryPods(body, ns)))
			rec.set("/stats/summary size", "KiB", float64(len(body))/1024)
		}
	}
	return nil
}

// summaryPods counts the pods of namespace ns in a /stats/summary answer.
func summaryPods(body []byte, ns string) int {
	var s struct {
		Pods []struct {
			PodRef struct {
				Namespace string `json:"namespace"`
			} `json:"podRef"`
		} `json:"pods"`
	}
	if json.Unmarshal(body, &s) != nil {
		return -1
	}
	n := 0
	for _, p := range s.Pods {
		if p.PodRef.Namespace == ns {
			n++
		}
	}
	return n
}

// warningEvents lists the last warning events of ns, for a failure.
func warningEvents(ctx context.Context, cs kubernetes.Interface, ns string) string {
	list, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "type=Warning"})
	if err != nil || len(list.Items) == 0 {
		return ""
	}
	var lines []string
	for _, e := range list.Items[max(len(list.Items)-5, 0):] {
		lines = append(lines, fmt.Sprintf("%s %s: %s", e.InvolvedObject.Name, e.Reason, e.Message))
	}
	return "; warning events: " + strings.Join(lines, " | ")
}

// podStates is what the watch has seen of the round's pods.
type podStates struct {
	ready map[string]time.Time // first seen Ready
	gone  map[string]time.Time // deletion seen
	last  map[string]*corev1.Pod
}

// sample describes one pod that is not Ready, for a timeout.
func (s *podStates) sample() string {
	names := make([]string, 0, len(s.last))
	for n := range s.last {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		p := s.last[n]
		if _, ok := s.ready[n]; ok && p.DeletionTimestamp == nil {
			continue
		}
		state := string(p.Status.Phase)
		for _, c := range p.Status.ContainerStatuses {
			if c.State.Waiting != nil {
				state += fmt.Sprintf(", %s waiting: %s %s", c.Name, c.State.Waiting.Reason, c.State.Waiting.Message)
			}
		}
		for _, c := range p.Status.Conditions {
			if c.Status != corev1.ConditionTrue {
				state += fmt.Sprintf(", %s=%s %s", c.Type, c.Status, c.Message)
			}
		}
		return fmt.Sprintf("e.g. %s: %s", n, state)
	}
	return ""
}

// podTracker watches a namespace's pods and records when each turned
// Ready and when it was gone.
type podTracker struct {
	mu      sync.Mutex
	s       podStates
	changed chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
}

func trackPods(ctx context.Context, cs kubernetes.Interface, ns string) (*podTracker, error) {
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	tr := &podTracker{s: podStates{ready: map[string]time.Time{}, gone: map[string]time.Time{}, last: map[string]*corev1.Pod{}},
		changed: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	rv := list.ResourceVersion
	go func() {
		defer close(tr.done)
		for ctx.Err() == nil {
			w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
			if err != nil {
				_ = sleep(ctx, 100*time.Millisecond)
				continue
			}
			for ev := range w.ResultChan() {
				if ev.Type == watch.Error {
					rv = "" // expired: start over from the current state
					break
				}
				p, ok := ev.Object.(*corev1.Pod)
				if !ok {
					continue
				}
				rv = p.ResourceVersion
				if ev.Type != watch.Bookmark {
					tr.see(p, ev.Type == watch.Deleted)
				}
			}
			w.Stop()
		}
	}()
	return tr, nil
}

func (tr *podTracker) see(p *corev1.Pod, deleted bool) {
	now := time.Now()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.s.last[p.Name] = p
	if _, ok := tr.s.ready[p.Name]; !ok && podReady(p) {
		tr.s.ready[p.Name] = now
	}
	if _, ok := tr.s.gone[p.Name]; deleted && !ok {
		tr.s.gone[p.Name] = now
	}
	select {
	case tr.changed <- struct{}{}:
	default:
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (tr *podTracker) snapshot() podStates {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return podStates{ready: copyMap(tr.s.ready), gone: copyMap(tr.s.gone), last: tr.s.last}
}

func copyMap[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// wait returns once done holds, on every change the watch brings; it
// fails after within, when ctx ends or when p exits.
func (tr *podTracker) wait(ctx context.Context, p *process, within time.Duration, done func(*podStates) (bool, string)) error {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		tr.mu.Lock()
		ok, state := done(&tr.s)
		tr.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-tr.changed:
		case <-deadline.C:
			return fmt.Errorf("not done within %s: %s", within, state)
		case <-ctx.Done():
			return ctx.Err()
		case <-p.exited:
			return fmt.Errorf("kubelet exited: %v; log tail:\n%s", p.waitErr, p.logTail(8))
		}
	}
}

func (tr *podTracker) stop() {
	tr.cancel()
	<-tr.done
}

// resetNode removes what a kubelet left: every sandbox through CRI,
// mounts under its root dir, the Node, the CNI network's state.
func (b *kubeletBench) resetNode(k *kubeletRun) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var errs []error
	if n, err := removeAllPods(ctx, b.ctrd.Endpoint()); err != nil {
		errs = append(errs, err)
	} else if n > 0 {
		logf("%s: removed %d sandboxes the kubelet left in containerd", k.name, n)
	}
	if err := unmountUnder(k.rootDir); err != nil {
		errs = append(errs, err)
	}
	cs := b.t.admin()
	if err := cs.CoreV1().Nodes().Delete(ctx, benchNodeName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("delete Node: %w", err))
	}
	if err := poll(ctx, nil, 200*time.Millisecond, time.Minute, func() (bool, string) {
		_, err := cs.CoreV1().Nodes().Get(ctx, benchNodeName, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprintf("Node %s still there (%v)", benchNodeName, err)
	}); err != nil {
		errs = append(errs, err)
	}
	if err := cni.Cleanup(b.cniConf); err != nil {
		errs = append(errs, err)
	}
	if err := os.Remove(filepath.Join(b.cniConfDir, cni.ConfigFileName)); err != nil && !os.IsNotExist(err) {
		errs = append(errs, err)
	}
	b.host.restore(b.res) // upstream's kernel tunables; skiff's /etc/cni/net.d conflist
	return errors.Join(errs...)
}

// tearDown stops containerd and the server and removes everything of the
// run from the machine; what it could not remove goes into the notes.
func (b *kubeletBench) tearDown() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	note := func(what string, err error) {
		if err != nil {
			b.res.note("clean-up: %s: %v", what, err)
		}
	}
	if b.ctrd != nil {
		_, err := removeAllPods(ctx, b.ctrd.Endpoint())
		note("remove the pods through CRI", err)
		note("stop containerd", b.ctrd.Stop(ctx))
	}
	note("CNI network", cni.Cleanup(b.cniConf))
	note("cgroups", removeCgroupRoot(benchCgroupRoot))
	note("pod logs", removePodLogs(b.namespaces))
	if b.work != "" {
		note("mounts", unmountUnder(b.work))
		note("temporary directory", os.RemoveAll(b.work))
	}
	if b.host != nil {
		note("nat chains", b.host.removeStrayCNIChains())
		b.host.restore(b.res)
	}
	if b.srv != nil {
		if b.t != nil {
			b.t.closeIdle()
		}
		select {
		case <-b.srv.Exited():
			b.res.note("skiff server exited during the run; log: %s; tail:\n%s", b.srv.LogPath, b.srv.LogTail(20))
		default:
		}
		note("stop the server", b.srv.Stop())
		pruneDir(b.srv.Dir)
	}
}

// kubeletMarkdown writes the summary of the kubelet scenarios, then every
// row and the notes.
func kubeletMarkdown(out io.Writer, r *results) {
	fmt.Fprintln(out, "skiff and upstream are the kubelets (v1.37.2 for upstream), on one containerd and one skiff API server, node "+benchNodeName+":")
	fmt.Fprintln(out)
	r.markdown(out)
}
