package main

// The proxy scenario set (--scenarios proxy), skiff's service proxy against
// upstream kube-proxy, each mode (--only iptables,nftables):
//
//	hack/upstream.sh kube-proxy              # once
//	go run ./hack/bench --scenarios proxy    # root; iptables, nft, ip netns
//
// One skiff apiserver (no controllers; bound to every address so that the
// proxies' namespaces reach it) serves the whole run, with namespace
// bench-proxy and Node bench-proxy-node. For each size of --proxy-services
// (ascending) the bench creates the Services and EndpointSlices missing so
// far (svc-NNNNN, ClusterIP port 80, one slice of --proxy-endpoints ready
// endpoints each, written by the bench: no controller runs), once; then for
// each mode each proxy runs alone, a fresh process in a fresh network
// namespace (bn-proxy-<n>, veth to the host, IPv6 off inside so that
// upstream runs single-stack as skiff does), the one that goes first
// alternating:
//
//	ip netns exec NS skiff proxy --kubeconfig K --mode M --hostname-override bench-proxy-node
//	    --cluster-cidr 10.214.0.0/15 --metrics-bind-address NSIP:10249 --healthz-bind-address NSIP:10256
//	ip netns exec NS kube-proxy (v1.37.2) --config F   (the same settings; conntrack sysctls left alone)
//
// K is the admin kubeconfig pointing at the host end of the veth
// (tls-server-name 127.0.0.1). The Node's InternalIP is set to the
// namespace's address first (kube-proxy waits for its Node's IPs).
//
// Measured, from the proxy's /metrics (polled every 100 ms, every 20 ms
// during a change) and its process:
//   - first full sync: process start → kubeproxy_sync_proxy_rules_last_timestamp_seconds
//     first set; the first sync's kubeproxy_sync_proxy_rules_duration_seconds
//     (its sum at count 1); the proxy's CPU seconds (its own and its
//     children's: iptables-restore, nft) and RSS then; the Services found
//     in the rules (iptables-save -t nat, or nft list table) and the size of
//     the rules.
//   - --proxy-changes endpoint changes, one at a time, --proxy-gap apart,
//     each to another Service: one endpoint's address replaced, with the
//     slice's endpoints.kubernetes.io/last-change-trigger-time set to the
//     update's start (as the endpointslice controller does). Per change:
//     update call → kubeproxy_network_programming_duration_seconds counted
//     one more (the change's sync done), that sync's duration; over all
//     changes kubeproxy_network_programming_duration_seconds p50/p99 as
//     histogram_quantile from the buckets (upstream's buckets: 0.25 s,
//     0.5 s, then 1 s steps, so coarse), CPU seconds per change. The new
//     addresses are checked in the rules at the end.
//   - peak RSS (sampled with the metrics), CPU seconds of the whole run.
//
// A proxy mode the binary refuses (skiff's nftables until it exists) is
// reported as not available, with its message.
import (
	"context"
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
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-dev/skiff/test/harness"
)

// proxyConfig is the proxy scenario set's part of the flags.
type proxyConfig struct {
	services  string
	endpoints int
	changes   int
	gap       time.Duration
	settle    time.Duration
	clients   int
	timeout   time.Duration
	sizes     []int
}

var proxyFlags proxyConfig

// proxyScenarioNames are the modes --only accepts with --scenarios proxy.
var proxyScenarioNames = []string{"iptables", "nftables"}

const (
	proxyNamespace   = "bench-proxy"
	proxyNodeName    = "bench-proxy-node"
	proxyClusterCIDR = "10.214.0.0/15"
	proxyMetricsPort = 10249
	proxyHealthzPort = 10256
	// changedEndpointBase: the addresses the changes put in (10.216.0.0/16).
	proxyChangedBase = "10.216.0.1"
)

func init() {
	f := &proxyFlags
	flag.StringVar(&f.services, "proxy-services", "1000,10000", "proxy scenarios: comma-separated Service counts, each run with every proxy (quick: 200,1000)")
	flag.IntVar(&f.endpoints, "proxy-endpoints", 5, "proxy scenarios: ready endpoints per Service")
	flag.IntVar(&f.changes, "proxy-changes", 5, "proxy scenarios: endpoint changes after the first sync, one at a time (quick: 3)")
	flag.DurationVar(&f.gap, "proxy-gap", 2*time.Second, "proxy scenarios: pause before each endpoint change (more than the proxies' 1s minSyncPeriod)")
	flag.DurationVar(&f.settle, "proxy-settle", 3*time.Second, "proxy scenarios: pause after the first sync before the changes")
	flag.IntVar(&f.clients, "proxy-clients", 16, "proxy scenarios: concurrent clients creating the Services and slices")
	flag.DurationVar(&f.timeout, "proxy-timeout", 10*time.Minute, "proxy scenarios: give up on a first sync not done by then")
}

func (f *proxyConfig) defaults(quick bool) error {
	set := map[string]bool{}
	flag.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if quick && !set["proxy-services"] {
		f.services = "200,1000"
	}
	if quick && !set["proxy-changes"] {
		f.changes = 3
	}
	f.sizes = nil
	for _, s := range strings.Split(f.services, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 12000 {
			return fmt.Errorf("--proxy-services: bad count %q (1..12000: the endpoints' and changes' address ranges)", s)
		}
		f.sizes = append(f.sizes, n)
	}
	slices.Sort(f.sizes)
	f.sizes = slices.Compact(f.sizes)
	if f.endpoints < 1 || f.endpoints > 5 || f.changes < 1 || f.clients < 1 {
		return errors.New("--proxy-endpoints must be 1..5, --proxy-changes and --proxy-clients positive")
	}
	return nil
}

func (f *proxyConfig) toJSON(c *config) map[string]any {
	return map[string]any{"scenarios": "proxy", "quick": c.quick, "skip_upstream": c.skipUpstream, "only": c.only,
		"services": f.sizes, "endpoints_per_service": f.endpoints, "changes": f.changes, "gap": f.gap.String(),
		"settle": f.settle.String(), "clients": f.clients, "timeout": f.timeout.String(), "cluster_cidr": proxyClusterCIDR}
}

// proxyBench is one run of the proxy scenario set.
type proxyBench struct {
	cfg         *config
	pc          *proxyConfig
	res         *results
	logDir      string
	srv         *harness.Server
	t           *target
	upstreamBin string
	seq         int
	created     int // Services created so far
}

func runProxyBench(ctx context.Context, cfg *config) int {
	pc := &proxyFlags
	if err := pc.defaults(cfg.quick); err != nil {
		usageError("%v", err)
	}
	res, _, err := startResults(pc.toJSON(cfg), cfg.skipUpstream, "kube-proxy")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if why := proxyHostMissing(); why != "" {
		fmt.Fprintln(os.Stderr, "bench: the proxy scenarios need", why)
		return 1
	}
	logDir, err := filepath.Abs(strings.TrimSuffix(cfg.out, ".json") + "-logs")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	b := &proxyBench{cfg: cfg, pc: pc, res: res, logDir: logDir, upstreamBin: res.Host.UpstreamBinary}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	modes := proxyScenarioNames
	if len(cfg.only) > 0 {
		modes = cfg.only
	}
	proxies := []string{"skiff"}
	if !cfg.skipUpstream {
		proxies = append(proxies, "upstream")
	}
	logf("load average %.2f on %d CPUs; proxies: %s; modes: %s; services: %v; logs in %s", loadAvg(), runtime.NumCPU(),
		strings.Join(proxies, ", "), strings.Join(modes, ", "), pc.sizes, logDir)
	defer harness.Cleanup()
	removeStaleProxyNetns()

	failed := false
	if err := b.setUp(ctx); err != nil {
		res.note("set-up: %v", err)
		failed = true
	} else {
		round := 0
		for _, size := range pc.sizes {
			if ctx.Err() != nil {
				break
			}
			if err := b.ensureServices(ctx, size); err != nil {
				res.note("creating %d services: %v", size, err)
				failed = true
				break
			}
			for _, mode := range modes {
				order := slices.Clone(proxies)
				if round%2 == 1 {
					slices.Reverse(order)
				}
				round++
				for _, name := range order {
					if ctx.Err() != nil {
						break
					}
					if err := b.runProxy(ctx, name, mode, size); err != nil {
						res.note("%s proxy, %s, %d services: %v", name, mode, size, err)
						failed = true
					}
				}
			}
		}
	}
	b.tearDown()
	return res.conclude(ctx, []string{"skiff", "upstream"}, func(out io.Writer) { proxyMarkdown(out, res) }, cfg.out, failed)
}

// proxyHostMissing says what this machine lacks, "" if nothing.
func proxyHostMissing() string {
	if os.Geteuid() != 0 {
		return "root (network namespaces, iptables, nft)"
	}
	for _, bin := range []string{"ip", "iptables-save", "iptables-restore", "nft", "sysctl"} {
		if _, err := exec.LookPath(bin); err != nil {
			return bin + " (apt-get install iproute2 iptables nftables procps, or hack/node-deps.sh)"
		}
	}
	return ""
}

func (b *proxyBench) setUp(ctx context.Context) error {
	logf("building skiff, starting skiff apiserver")
	srv, err := harness.StartSkiff(ctx, harness.Options{Dir: filepath.Join(b.logDir, "server"), Command: "apiserver",
		Args: []string{"--bind-address", "0.0.0.0"}})
	if err != nil {
		return fmt.Errorf("start skiff apiserver: %w", err)
	}
	b.srv = srv
	cfg, err := srv.RESTConfig()
	if err != nil {
		return err
	}
	b.t = &target{name: "skiff", srv: srv, cfg: cfg}
	cs := b.t.admin()
	if err := ensureNamespace(ctx, cs, proxyNamespace); err != nil {
		return err
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: proxyNodeName, Labels: map[string]string{"kubernetes.io/hostname": proxyNodeName}}}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create node: %w", err)
	}
	return nil
}

// ensureServices creates the Services (and slices) up to size.
func (b *proxyBench) ensureServices(ctx context.Context, size int) error {
	if b.created >= size {
		return nil
	}
	t0 := time.Now()
	cs, err := b.t.clients(b.pc.clients)
	if err != nil {
		return err
	}
	if _, err := createServices(ctx, cs, proxyNamespace, b.created, size, b.pc.endpoints); err != nil {
		return err
	}
	logf("services %d..%d created with their EndpointSlices in %s", b.created, size-1, time.Since(t0).Round(time.Second))
	b.created = size
	return nil
}

func (b *proxyBench) tearDown() {
	if b.srv == nil {
		return
	}
	if b.t != nil {
		b.t.closeIdle()
	}
	select {
	case <-b.srv.Exited():
		b.res.note("skiff apiserver exited during the run; log: %s; tail:\n%s", b.srv.LogPath, b.srv.LogTail(20))
	default:
	}
	if err := b.srv.Stop(); err != nil {
		b.res.note("skiff apiserver did not stop cleanly: %v (log %s)", err, b.srv.LogPath)
	}
	pruneDir(b.srv.Dir)
}

// setNodeIP points the Node's InternalIP at the proxy's namespace.
func (b *proxyBench) setNodeIP(ctx context.Context, ip string) error {
	cs := b.t.admin()
	node, err := cs.CoreV1().Nodes().Get(ctx, proxyNodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}, {Type: corev1.NodeHostName, Address: proxyNodeName}}
	_, err = cs.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
	return err
}

// writeNetnsKubeconfig writes the admin kubeconfig with the server at
// host:port, its certificate checked for 127.0.0.1.
func (b *proxyBench) writeNetnsKubeconfig(path, host string) error {
	kc, err := clientcmd.LoadFromFile(b.srv.Kubeconfig)
	if err != nil {
		return err
	}
	for _, c := range kc.Clusters {
		c.Server = fmt.Sprintf("https://%s:%d", host, b.srv.Port)
		c.TLSServerName = "127.0.0.1"
	}
	return clientcmd.WriteToFile(*kc, path)
}

// proxyCommand is the command line of proxy name in mode, run in ns.
func (b *proxyBench) proxyCommand(name, mode string, ns *proxyNetns, dir string) ([]string, error) {
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := b.writeNetnsKubeconfig(kubeconfig, ns.hostIP); err != nil {
		return nil, err
	}
	metricsAddr := fmt.Sprintf("%s:%d", ns.nsIP, proxyMetricsPort)
	healthzAddr := fmt.Sprintf("%s:%d", ns.nsIP, proxyHealthzPort)
	prefix := []string{"netns", "exec", ns.name}
	if name == "skiff" {
		bin, err := harness.SkiffBinary()
		if err != nil {
			return nil, err
		}
		return append(prefix, bin, "proxy", "--kubeconfig", kubeconfig, "--mode", mode, "--hostname-override", proxyNodeName,
			"--cluster-cidr", proxyClusterCIDR, "--metrics-bind-address", metricsAddr, "--healthz-bind-address", healthzAddr), nil
	}
	config := filepath.Join(dir, "kube-proxy-config.yaml")
	// conntrack: 0 leaves the (partly host-wide) conntrack sysctls alone,
	// which skiff's proxy does not set either.
	yaml := fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: %s
clientConnection:
  kubeconfig: %s
hostnameOverride: %s
clusterCIDR: %s
metricsBindAddress: %s
healthzBindAddress: %s
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, mode, kubeconfig, proxyNodeName, proxyClusterCIDR, metricsAddr, healthzAddr)
	if err := os.WriteFile(config, []byte(yaml), 0o644); err != nil {
		return nil, err
	}
	return append(prefix, b.upstreamBin, "--config", config), nil
}

// proxyRun is one proxy process under measurement.
type proxyRun struct {
	p       *process
	ns      *proxyNetns
	mode    string
	started time.Time
	metrics string // URL of its /metrics
	peakRSS float64
	hc      *http.Client
}

// scrape reads the proxy's metrics and samples its RSS.
func (r *proxyRun) scrape(ctx context.Context) (metrics, error) {
	if rss := r.p.rssMiB(); rss > r.peakRSS {
		r.peakRSS = rss
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.metrics, nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %d", resp.StatusCode)
	}
	return parseMetrics(string(body)), nil
}

const (
	syncDurationMetric  = "kubeproxy_sync_proxy_rules_duration_seconds"
	syncTimestampMetric = "kubeproxy_sync_proxy_rules_last_timestamp_seconds"
	programmingMetric   = "kubeproxy_network_programming_duration_seconds"
)

// proxySyncState is what the metrics say of the syncs so far.
type proxySyncState struct {
	syncs, syncSeconds float64 // the duration histogram's count and sum
	lastSync           float64 // unix seconds, 0 before the first
	programmed         float64 // network programming observations
	programming        []bucket
}

func syncState(m metrics) proxySyncState {
	return proxySyncState{syncs: m.sum(syncDurationMetric+"_count", nil), syncSeconds: m.sum(syncDurationMetric+"_sum", nil),
		lastSync: m.sum(syncTimestampMetric, nil), programmed: m.sum(programmingMetric+"_count", nil),
		programming: m.histogram(programmingMetric)}
}

// waitSync polls the metrics every interval until done says so.
func (r *proxyRun) waitSync(ctx context.Context, every, within time.Duration, done func(proxySyncState) bool) (proxySyncState, time.Time, error) {
	var st proxySyncState
	var lastErr error
	err := poll(ctx, r.p, every, within, func() (bool, string) {
		m, err := r.scrape(ctx)
		if err != nil {
			lastErr = err
			return false, "metrics: " + err.Error()
		}
		st = syncState(m)
		return done(st), fmt.Sprintf("%.0f syncs, last at %.3f, %.0f programming observations", st.syncs, st.lastSync, st.programmed)
	})
	if err != nil && lastErr != nil && errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w (last metrics error: %v)", err, lastErr)
	}
	return st, time.Now(), err
}

// runProxy measures proxy name in mode against size Services.
func (b *proxyBench) runProxy(ctx context.Context, name, mode string, size int) (err error) {
	workload := fmt.Sprintf("%s, %d services", mode, size)
	rec := recorder{res: b.res, server: name, workload: workload}
	b.seq++
	logf("== %s proxy, %s", name, workload)
	dir := filepath.Join(b.logDir, fmt.Sprintf("%02d-%s-%s-%d", b.seq, name, mode, size))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ns := newProxyNetns(b.seq)
	defer func() {
		if terr := ns.tearDown(); terr != nil {
			b.res.note("removing %s: %v", ns.name, terr)
		}
	}()
	if err := ns.setUp(); err != nil {
		return fmt.Errorf("network namespace: %w", err)
	}
	if err := b.setNodeIP(ctx, ns.nsIP); err != nil {
		return fmt.Errorf("node IP: %w", err)
	}
	argv, err := b.proxyCommand(name, mode, ns, dir)
	if err != nil {
		return err
	}
	load := loadAvg()
	cpu0 := sampleSchedCPU(b.srv.PID, 0, 0)
	started := time.Now()
	p, err := startProcess(filepath.Join(dir, name+"-proxy.log"), "ip", func(int) []string { return argv })
	if err != nil {
		return err
	}
	r := &proxyRun{p: p, ns: ns, mode: mode, started: started, hc: &http.Client{Timeout: 10 * time.Second},
		metrics: fmt.Sprintf("http://%s:%d/metrics", ns.nsIP, proxyMetricsPort)}
	notAvailable := false
	defer func() {
		end := sampleSchedCPU(b.srv.PID, 0, 0)
		end.sch = procCPUTree(p.pid) // before it exits: /proc goes with it
		cpu := cpu0.until(end, runtime.NumCPU())
		// kube-proxy does not catch SIGTERM: dying of it is its clean stop.
		if stopErr := p.stop(); stopErr != nil && !notAvailable && stopErr.Error() != "signal: terminated" {
			b.res.note("%s proxy did not stop cleanly: %v (log %s)", name, stopErr, p.logPath)
		}
		if notAvailable {
			return
		}
		rec.set("peak RSS (sampled with the metrics)", "MiB", r.peakRSS)
		rec.set("proxy CPU, whole run (own + iptables-restore/nft children)", "s", cpu.Scheduler)
		rec.set("other processes' share of the machine, whole run", "%", 100*cpu.OtherShare)
		if cpu.OtherShare > maxOtherShare {
			b.res.note("%s proxy, %s: other processes used %.0f%% of the CPUs meanwhile (load %.1f → %.1f): these numbers are skewed",
				name, workload, 100*cpu.OtherShare, load, loadAvg())
		}
	}()

	// The first full sync.
	st, seen, err := r.waitSync(ctx, 100*time.Millisecond, b.pc.timeout, func(s proxySyncState) bool { return s.syncs >= 1 && s.lastSync > 0 })
	if err != nil {
		if why := b.unavailable(p); why != "" {
			notAvailable = true
			if strings.Contains(why, "not implemented") {
				rec.fail("process start → first sync done", "s", "not yet available: "+why)
				return nil
			}
			rec.fail("process start → first sync done", "s", "exited before its first sync: "+why)
			return fmt.Errorf("exited before its first sync (log %s)", p.logPath)
		}
		return fmt.Errorf("first sync: %w", err)
	}
	cpuFirst := procCPUTree(p.pid)
	rssFirst := p.rssMiB()
	first := time.Unix(0, int64(st.lastSync*1e9))
	rec.set("process start → first sync done", "s", first.Sub(started).Seconds())
	rec.set("first sync: sync_proxy_rules_duration", "s", st.syncSeconds/st.syncs)
	if st.syncs > 1 {
		b.res.note("%s proxy, %s: %.0f syncs by the first scrape after the first (the first sync's duration is their mean)", name, workload, st.syncs)
	}
	rec.set("proxy CPU, start → first sync seen", "s", cpuFirst.Seconds())
	rec.set("RSS after the first sync", "MiB", rssFirst)
	logf("%s proxy: first sync %s after start (took %.3fs), seen after %s, CPU %.1fs, RSS %.0f MiB", name,
		first.Sub(started).Round(time.Millisecond), st.syncSeconds/st.syncs, seen.Sub(started).Round(time.Millisecond), cpuFirst.Seconds(), rssFirst)
	if n, lines, err := rulesServices(ns, mode); err != nil {
		b.res.note("%s proxy, %s: reading the rules: %v", name, workload, err)
	} else {
		rec.set("services in the rules after the first sync", "services", float64(n))
		rec.set("rules size (iptables-save -t nat / nft list table lines)", "lines", float64(lines))
		if n < size {
			b.res.note("%s proxy, %s: only %d of the %d services are in the rules after the first sync", name, workload, n, size)
		}
	}
	if err := sleep(ctx, b.pc.settle); err != nil {
		return err
	}

	// Endpoint changes, one at a time.
	m, err := r.scrape(ctx)
	if err != nil {
		return err
	}
	before := syncState(m)
	var lat, syncDur []time.Duration
	var changed []string
	cpuChanges0 := procCPUTree(p.pid)
	for k := range b.pc.changes {
		if err := sleep(ctx, b.pc.gap); err != nil {
			return err
		}
		m, err := r.scrape(ctx)
		if err != nil {
			return err
		}
		st0 := syncState(m)
		svc := k * size / b.pc.changes
		addr := endpointIP(parseIPv4(proxyChangedBase), b.seq*b.pc.changes+k)
		t0, err := b.changeEndpoint(ctx, svc, addr)
		if err != nil {
			return fmt.Errorf("change %d: %w", k+1, err)
		}
		st1, seen, err := r.waitSync(ctx, 20*time.Millisecond, time.Minute, func(s proxySyncState) bool { return s.programmed > st0.programmed })
		if err != nil {
			return fmt.Errorf("change %d (service %s): no network programming observed: %w", k+1, svcName(svc), err)
		}
		changed = append(changed, addr)
		lat = append(lat, seen.Sub(t0))
		if n := st1.syncs - st0.syncs; n > 0 {
			syncDur = append(syncDur, time.Duration((st1.syncSeconds-st0.syncSeconds)/n*float64(time.Second)))
		}
	}
	cpuChanges := procCPUTree(p.pid) - cpuChanges0
	m, err = r.scrape(ctx)
	if err != nil {
		return err
	}
	after := syncState(m)
	slices.Sort(lat)
	rec.set("endpoint change: update call → programming observed, p50 (polled every 20 ms)", "ms", ms(percentile(lat, 50)))
	rec.set("endpoint change: update call → programming observed, max", "ms", ms(lat[len(lat)-1]))
	if len(syncDur) > 0 {
		rec.set("endpoint change: the first change's sync_proxy_rules_duration", "ms", ms(syncDur[0]))
		sorted := slices.Clone(syncDur)
		slices.Sort(sorted)
		rec.set("endpoint change: sync_proxy_rules_duration, median of the changes", "ms", ms(percentile(sorted, 50)))
	}
	delta := histogramDelta(before.programming, after.programming)
	rec.set("network_programming_duration p50 (histogram, the changes)", "s", histogramQuantile(0.50, delta))
	rec.set("network_programming_duration p99 (histogram, the changes)", "s", histogramQuantile(0.99, delta))
	rec.set("proxy CPU per endpoint change (incl. the gaps)", "s", cpuChanges.Seconds()/float64(b.pc.changes))
	if missing, err := rulesMissing(ns, mode, changed); err != nil {
		b.res.note("%s proxy, %s: checking the changed endpoints in the rules: %v", name, workload, err)
	} else if len(missing) > 0 {
		b.res.note("%s proxy, %s: changed endpoints missing from the rules: %s", name, workload, strings.Join(missing, ", "))
	}
	logf("%s proxy: %d endpoint changes: programmed after p50 %s, max %s; CPU %.2fs a change", name, len(lat),
		fmtDur(percentile(lat, 50)), fmtDur(lat[len(lat)-1]), cpuChanges.Seconds()/float64(b.pc.changes))
	return nil
}

// unavailable is the reason a proxy process that exited on its own gave,
// "" if it still runs or exited without saying why.
func (b *proxyBench) unavailable(p *process) string {
	select {
	case <-p.exited:
	case <-time.After(100 * time.Millisecond):
		return ""
	}
	lines := strings.Split(p.logTail(30), "\n")
	for _, line := range lines {
		if _, msg, ok := strings.Cut(line, "Error: "); ok {
			return strings.TrimSpace(msg)
		}
		if _, msg, ok := strings.Cut(line, `err="`); ok {
			return strings.TrimSuffix(strings.TrimSpace(msg), `"`)
		}
	}
	for _, line := range slices.Backward(lines) {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "====") {
			return l
		}
	}
	return fmt.Sprintf("exited: %v", p.waitErr)
}

// changeEndpoint replaces the first endpoint of Service svc's slice with
// addr, the trigger time being the update's start, which it returns.
func (b *proxyBench) changeEndpoint(ctx context.Context, svc int, addr string) (time.Time, error) {
	cs := b.t.admin().DiscoveryV1().EndpointSlices(proxyNamespace)
	slice, err := cs.Get(ctx, sliceName(svc), metav1.GetOptions{})
	if err != nil {
		return time.Time{}, err
	}
	t0 := time.Now()
	if slice.Annotations == nil {
		slice.Annotations = map[string]string{}
	}
	slice.Annotations[corev1.EndpointsLastChangeTriggerTime] = t0.UTC().Format(time.RFC3339Nano)
	slice.Endpoints[0].Addresses = []string{addr}
	_, err = cs.Update(ctx, slice, metav1.UpdateOptions{})
	return t0, err
}

func parseIPv4(s string) []byte {
	var a, b, c, d byte
	fmt.Sscanf(s, "%d.%d.%d.%d", &a, &b, &c, &d)
	return []byte{a, b, c, d}
}

// rulesText is the proxy's rules in ns: the nat table, or the nftables
// table kube-proxy (upstream's name).
func rulesText(ns *proxyNetns, mode string) (string, error) {
	if mode == "iptables" {
		return ns.exec("iptables-save", "-t", "nat")
	}
	return ns.exec("nft", "list", "table", "ip", "kube-proxy")
}

// rulesServices counts the Services with endpoints in the rules (the
// KUBE-SERVICES jumps to KUBE-SVC-*, or the service-ips map's elements)
// and the rules' lines.
func rulesServices(ns *proxyNetns, mode string) (int, int, error) {
	text, err := rulesText(ns, mode)
	if err != nil {
		return 0, 0, err
	}
	return countServiceRules(text, mode), strings.Count(text, "\n"), nil
}

func countServiceRules(text, mode string) int {
	n := 0
	if mode == "iptables" {
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, "-A KUBE-SERVICES ") && strings.Contains(line, " -j KUBE-SVC-") {
				n++
			}
		}
		return n
	}
	// nft prints the map's elements as "IP . tcp . PORT : goto service-...".
	return strings.Count(text, ": goto service-")
}

// rulesMissing returns the addresses not found in the rules.
func rulesMissing(ns *proxyNetns, mode string, addrs []string) ([]string, error) {
	text, err := rulesText(ns, mode)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, a := range addrs {
		if !strings.Contains(text, a+":") && !strings.Contains(text, a+" ") && !strings.Contains(text, a+"/") {
			missing = append(missing, a)
		}
	}
	return missing, nil
}

// procCPUTree is utime+stime of pid and of its children it waited for
// (iptables-restore, nft), /proc/<pid>/stat fields 14–17.
func procCPUTree(pid int) time.Duration {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(data), ')')
	f := strings.Fields(string(data)[i+1:])
	if len(f) < 15 {
		return 0
	}
	var total int64
	for _, k := range []int{11, 12, 13, 14} {
		n, _ := strconv.ParseInt(f[k], 10, 64)
		total += n
	}
	return ticks(total)
}

// proxyMarkdown writes the summary table (one line a mode and size), then
// every row and the notes.
func proxyMarkdown(out io.Writer, r *results) {
	get := func(workload, metric string) (*float64, *float64, *float64) {
		if w, ok := r.index[[2]string{workload, metric}]; ok {
			return w.Skiff, w.Upstream, w.Ratio
		}
		return nil, nil, nil
	}
	failed := func(workload, metric, server string) string {
		if w, ok := r.index[[2]string{workload, metric}]; ok {
			if why, ok := w.Failed[server]; ok {
				return why
			}
		}
		return ""
	}
	var workloads []string
	for _, w := range r.Rows {
		if !slices.Contains(workloads, w.Workload) {
			workloads = append(workloads, w.Workload)
		}
	}
	cols := []struct{ title, metric string }{
		{"start → first sync s", "process start → first sync done"},
		{"first sync s", "first sync: sync_proxy_rules_duration"},
		{"change → programmed p50 ms", "endpoint change: update call → programming observed, p50 (polled every 20 ms)"},
		{"change sync median ms", "endpoint change: sync_proxy_rules_duration, median of the changes"},
		{"netprog p99 s", "network_programming_duration p99 (histogram, the changes)"},
		{"CPU whole run s", "proxy CPU, whole run (own + iptables-restore/nft children)"},
		{"peak RSS MiB", "peak RSS (sampled with the metrics)"},
	}
	fmt.Fprint(out, "| mode, services |")
	for _, c := range cols {
		fmt.Fprintf(out, " %s skiff / upstream (ratio) |", c.title)
	}
	fmt.Fprintln(out)
	fmt.Fprint(out, "|---|")
	for range cols {
		fmt.Fprint(out, "---:|")
	}
	fmt.Fprintln(out)
	for _, w := range workloads {
		fmt.Fprintf(out, "| %s |", w)
		for _, c := range cols {
			sk, up, ratio := get(w, c.metric)
			skS, upS := fmtValue(sk), fmtValue(up)
			if why := failed(w, cols[0].metric, "skiff"); why != "" {
				skS = "n/a"
			}
			if why := failed(w, cols[0].metric, "upstream"); why != "" {
				upS = "n/a"
			}
			if ratio != nil {
				fmt.Fprintf(out, " %s / %s (%s) |", skS, upS, fmtRatio(ratio))
			} else {
				fmt.Fprintf(out, " %s / %s |", skS, upS)
			}
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "All rows (skiff and upstream are the proxies, v1.37.2 kube-proxy for upstream, each alone in a fresh network namespace; the API server is skiff's for both):")
	fmt.Fprintln(out)
	r.markdown(out)
}
