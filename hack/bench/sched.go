package main

// The scheduler scenario set (--scenarios scheduler), skiff's scheduler
// against upstream's kube-scheduler:
//
//	hack/upstream.sh kube-scheduler   # once
//	go run ./hack/bench --scenarios scheduler           # full run
//	go run ./hack/bench --scenarios scheduler --quick   # 100 nodes, 1000 pods
//
// Each run (a scenario with one scheduler) gets a fresh skiff server
// (--disable-scheduler, --cluster-cidr 172.16.0.0/12, embedded etcd) and
// skiff agent --simulate --sched-nodes (capacity cpu=8, memory=32Gi,
// pods=110; node i labeled topology.kubernetes.io/zone=zone-<i mod 10> by a
// patch after it registered): on 2 cores, deleting 10 000 pods takes
// longer than starting over. For each scenario each scheduler runs alone,
// a fresh process (skiff scheduler, or upstream
// kube-scheduler v1.37.2 from hack/upstream.sh's cache), with the same
// KubeSchedulerConfiguration (--config: leaderElect false, clientConnection
// qps/burst --sched-qps, default 5000 as upstream's scheduler_perf, since at
// both schedulers' default of 50 the client rate limit would be all that is
// measured; protobuf; everything else default); which goes first alternates
// per scenario. Both reach the server through a reverse proxy in this
// process (sched_proxy.go) that answers the list and watch of the
// resources skiff does not serve yet (resource.k8s.io, CSIStorageCapacity)
// with nothing: kube-scheduler waits for those informers to sync before it
// schedules anything. Once a canary pod is bound (the scheduler has
// synced), --sched-clients clients create the scenario's pods in a fresh
// namespace; a watch records when each pod gets spec.nodeName.
//
//	plain         --sched-pods pods (cpu 100m, memory 128Mi)
//	spread        the same with a topology spread constraint (maxSkew 1,
//	              topology.kubernetes.io/zone, DoNotSchedule) over 10 zones
//	antiaffinity  --sched-anti-pods pods with required pod anti-affinity on
//	              kubernetes.io/hostname against each other (one per node)
//	preemption    every node filled with --sched-fill-per-node low-priority
//	              pods (PriorityClass bench-low, bound by spec.nodeName at
//	              creation, cpu 8/fill-per-node each; all Running before the
//	              scheduler starts), then --sched-preemptors pods of
//	              PriorityClass bench-high of the same size: each needs a
//	              victim
//	backlog       --sched-backlog-pods plain pods created while no scheduler runs,
//	              then the scheduler starts: its throughput unbounded by
//	              the creates (pods/s and latencies from its process start)
//
// pods/s is created pods / (first create call → last bind seen). A pod's
// scheduling latency is from the start of its create call to the watch
// event that shows it bound (client-side monotonic clock: creationTimestamp
// and the PodScheduled condition have 1 s resolution); p50/p99 over all
// pods. The scheduler's own scheduler_pod_scheduling_sli_duration_seconds
// (queue entry → bound, estimated from its histogram buckets), the mean of
// scheduler_scheduling_attempt_duration_seconds, attempts by result and
// the CPU seconds of the scheduler, server and agent are reported too.
// With --sched-wait-e2e D it first waits up to D while a process
// whose command line names e2e.test runs.
import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/test/harness"
)

// schedConfig is the scheduler scenario set's part of the flags.
type schedConfig struct {
	nodes        int
	pods         int
	backlogPods  int
	antiPods     int
	preemptors   int
	fillPerNode  int
	clients      int
	qps          int
	timeout      time.Duration
	settle       time.Duration
	zones        int
	waitForE2E   time.Duration
	upstreamPath string
}

var schedFlags schedConfig

// schedScenarioNames are the names --only accepts with --scenarios scheduler.
var schedScenarioNames = []string{"plain", "spread", "antiaffinity", "preemption", "backlog"}

func init() {
	f := &schedFlags
	flag.IntVar(&f.nodes, "sched-nodes", 1000, "scheduler scenarios: simulated nodes (quick: 100)")
	flag.IntVar(&f.pods, "sched-pods", 10000, "scheduler scenarios: pods of plain and spread (quick: 1000)")
	flag.IntVar(&f.backlogPods, "sched-backlog-pods", 0, "scheduler scenarios: pods of backlog (0: half of --sched-pods)")
	flag.IntVar(&f.antiPods, "sched-anti-pods", 0, "scheduler scenarios: pods of antiaffinity, at most --sched-nodes (0: --sched-nodes)")
	flag.IntVar(&f.preemptors, "sched-preemptors", 0, "scheduler scenarios: high-priority pods of preemption, at most nodes × fill-per-node (0: nodes/2)")
	flag.IntVar(&f.fillPerNode, "sched-fill-per-node", 4, "scheduler scenarios: low-priority pods filling each node in preemption (1, 2, 4 or 8)")
	flag.IntVar(&f.clients, "sched-clients", 16, "scheduler scenarios: concurrent clients creating the pods")
	flag.IntVar(&f.qps, "sched-qps", 5000, "scheduler scenarios: the schedulers' clientConnection qps and burst (both schedulers' default is 50/100)")
	flag.DurationVar(&f.timeout, "sched-timeout", 10*time.Minute, "scheduler scenarios: give up on a run whose pods are not all bound by then")
	flag.DurationVar(&f.settle, "sched-settle", 5*time.Second, "scheduler scenarios: pause after a fresh server's nodes are Ready, before the run")
	flag.DurationVar(&f.waitForE2E, "sched-wait-e2e", 0, "scheduler scenarios: first wait up to this long while an e2e.test process runs (0: do not wait)")
	f.zones = 10
}

// schedDefaults applies --quick and the derived defaults.
func (f *schedConfig) schedDefaults(quick bool) error {
	set := map[string]bool{}
	flag.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if quick && !set["sched-nodes"] {
		f.nodes = 100
	}
	if quick && !set["sched-pods"] {
		f.pods = 1000
	}
	if f.backlogPods == 0 {
		f.backlogPods = max(f.pods/2, 1)
	}
	if f.antiPods == 0 {
		f.antiPods = f.nodes
	}
	if f.preemptors == 0 {
		f.preemptors = f.nodes / 2
	}
	switch {
	case f.nodes < f.zones:
		return fmt.Errorf("--sched-nodes must be at least %d (the zones)", f.zones)
	case f.pods < 1 || f.clients < 1 || f.qps < 1 || f.preemptors < 1:
		return fmt.Errorf("sizes must be positive")
	case f.antiPods > f.nodes:
		return fmt.Errorf("--sched-anti-pods %d > --sched-nodes %d: the rest could never be scheduled", f.antiPods, f.nodes)
	case !slices.Contains([]int{1, 2, 4, 8}, f.fillPerNode):
		return fmt.Errorf("--sched-fill-per-node must divide the nodes' 8 CPUs: 1, 2, 4 or 8")
	case f.preemptors > f.nodes*f.fillPerNode:
		return fmt.Errorf("--sched-preemptors %d > the %d low-priority pods", f.preemptors, f.nodes*f.fillPerNode)
	}
	return nil
}

func (f *schedConfig) toJSON(c *config) map[string]any {
	return map[string]any{
		"scenarios": "scheduler", "quick": c.quick, "skip_upstream": c.skipUpstream, "only": c.only,
		"nodes": f.nodes, "pods": f.pods, "backlog_pods": f.backlogPods, "anti_pods": f.antiPods, "preemptors": f.preemptors,
		"fill_per_node": f.fillPerNode, "clients": f.clients, "scheduler_qps": f.qps, "scheduler_burst": f.qps,
		"timeout": f.timeout.String(), "settle": f.settle.String(), "zones": f.zones,
	}
}

// schedBench is one run of the scheduler scenario set.
type schedBench struct {
	cfg    *config
	sc     *schedConfig
	res    *results
	logDir string
	srv    *harness.Server
	t      *target // the server, with the bench's clients
	agent  *process
	proxy  *schedProxy // the schedulers' way to the server
	seq    int         // runs so far, names their directories
	// stubbed counts the requests the proxies answered with the stub.
	stubbed int64
	// schedulerConfig is the KubeSchedulerConfiguration both run with.
	schedulerConfig string
	upstreamBin     string
}

func runSchedBench(ctx context.Context, cfg *config) int {
	sc := &schedFlags
	if err := sc.schedDefaults(cfg.quick); err != nil {
		usageError("%v", err)
	}
	res, schedulers, err := startResults(sc.toJSON(cfg), cfg.skipUpstream, "kube-scheduler")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	b := &schedBench{cfg: cfg, sc: sc, res: res, logDir: strings.TrimSuffix(cfg.out, ".json") + "-logs",
		upstreamBin: res.Host.UpstreamBinary}
	if err := os.MkdirAll(b.logDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if waitForE2E(ctx, sc.waitForE2E); ctx.Err() != nil {
		return 1
	}
	logf("load average %.2f on %d CPUs; schedulers: %s; %d nodes; logs in %s", loadAvg(), runtime.NumCPU(),
		strings.Join(schedulers, ", "), sc.nodes, b.logDir)
	defer harness.Cleanup() // the skiff binary StartSkiff builds

	var rounds []round
	for _, s := range b.scenarios() {
		if cfg.wants(s.key) {
			rounds = append(rounds, round{name: s.name, run: func(ctx context.Context, scheduler string) error {
				return b.runScenario(ctx, s, scheduler)
			}})
		}
	}
	// Which scheduler goes first alternates as the servers do.
	failed := res.runRounds(ctx, rounds, (&bench{cfg: cfg}).serverOrder)
	res.note("the schedulers' proxies answered %d list/watch requests of resources skiff does not serve with their stub", b.stubbed)
	return res.conclude(ctx, schedulers, func(out io.Writer) { schedMarkdown(out, res, b.scenarios()) }, cfg.out, failed)
}

// waitForE2E waits, up to max, while an e2e.test process (the conformance
// suite, or skiff's e2e tests) runs on the machine, until none has run for
// a minute (the conformance suite starts one batch after another).
func waitForE2E(ctx context.Context, max time.Duration) {
	if max <= 0 || len(otherProcesses("e2e.test")) == 0 {
		return
	}
	logf("waiting up to %s for e2e.test (pids %v) to finish", max, otherProcesses("e2e.test"))
	quiet := 0
	err := poll(ctx, nil, 15*time.Second, max, func() (bool, string) {
		pids := otherProcesses("e2e.test")
		if quiet = quiet + 1; len(pids) > 0 {
			quiet = 0
		}
		return quiet >= 5, fmt.Sprintf("e2e.test pids %v", pids)
	})
	if err != nil && ctx.Err() == nil {
		logf("measuring anyway: %v", err)
	}
}

// otherProcesses lists the pids of the other processes whose command line
// contains s (as pgrep -f does).
func otherProcesses(s string) []string {
	entries, _ := os.ReadDir("/proc")
	self := fmt.Sprint(os.Getpid())
	var pids []string
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && e.Name() != self && strings.Contains(string(data), s) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// setUp starts a fresh server (data in dir/server) with the schedulers'
// proxy and the agent, waits for every node to be Ready and untainted,
// labels the zones and creates the PriorityClasses.
func (b *schedBench) setUp(ctx context.Context, dir string, rec recorder) error {
	t0 := time.Now()
	srv, err := harness.StartSkiff(ctx, harness.Options{Dir: filepath.Join(dir, "server"),
		Args: []string{"--disable-scheduler", "--cluster-cidr", "172.16.0.0/12"}})
	if err != nil {
		return fmt.Errorf("start skiff server: %w", err)
	}
	b.srv = srv
	cfg, err := srv.RESTConfig()
	if err != nil {
		return err
	}
	b.t = &target{name: "skiff", srv: srv, cfg: cfg}
	if b.proxy, err = startSchedProxy(cfg, filepath.Join(dir, "proxy.log")); err != nil {
		return fmt.Errorf("start the schedulers' proxy: %w", err)
	}
	proxyKubeconfig := filepath.Join(dir, "scheduler.kubeconfig")
	if err := b.proxy.kubeconfig(proxyKubeconfig); err != nil {
		return err
	}
	b.schedulerConfig = filepath.Join(dir, "kube-scheduler-config.yaml")
	if err := os.WriteFile(b.schedulerConfig, []byte(schedulerConfigYAML(proxyKubeconfig, b.sc.qps)), 0o644); err != nil {
		return err
	}

	bin, _ := harness.SkiffBinary()
	b.agent, err = startProcess(filepath.Join(dir, "agent.log"), bin, func(port int) []string {
		return []string{"agent", "--kubeconfig", srv.Kubeconfig, "--simulate", fmt.Sprint(b.sc.nodes),
			"--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(port)}
	})
	if err != nil {
		return fmt.Errorf("start agent: %w", err)
	}
	t1 := time.Now()
	if err := b.waitNodes(ctx, false); err != nil {
		return err
	}
	ready := time.Since(t1)
	if err := b.labelZones(ctx); err != nil {
		return err
	}
	if err := b.waitNodes(ctx, true); err != nil {
		return err
	}
	for name, value := range map[string]int32{lowPriorityClass: 100, highPriorityClass: 1000} {
		pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: value}
		if _, err := b.client().SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create PriorityClass %s: %w", name, err)
		}
	}
	rec.set(fmt.Sprintf("set-up: agent start → %d nodes Ready, untainted", b.sc.nodes), "s", ready.Seconds())
	logf("server ready, %d nodes Ready after %s, zones labeled; set-up took %s", b.sc.nodes, ready.Round(time.Second),
		time.Since(t0).Round(time.Second))
	return sleep(ctx, b.sc.settle)
}

// tearDown stops the agent, the proxy and the server, removing the
// server's data but for its log.
func (b *schedBench) tearDown(rec recorder) {
	if b.agent != nil {
		rec.set("agent RSS at the end", "MiB", b.agent.rssMiB())
		if err := b.agent.stop(); err != nil {
			b.res.note("agent did not stop cleanly: %v (log %s)", err, b.agent.logPath)
		}
		b.agent = nil
	}
	if b.proxy != nil {
		b.stubbed += b.proxy.stubbed.Load()
		b.proxy.close()
		b.proxy = nil
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
		if err := b.srv.Stop(); err != nil {
			b.res.note("skiff server did not stop cleanly: %v (log %s)", err, b.srv.LogPath)
		}
		pruneDir(b.srv.Dir)
		b.srv, b.t = nil, nil
	}
}

const (
	zoneLabel         = "topology.kubernetes.io/zone"
	lowPriorityClass  = "bench-low"
	highPriorityClass = "bench-high"
)

func zoneOf(i, zones int) string { return fmt.Sprintf("zone-%d", i%zones) }

// waitNodes waits until every simulated node is Ready without taints (and,
// with zones, has its zone label).
func (b *schedBench) waitNodes(ctx context.Context, zones bool) error {
	err := poll(ctx, b.agent, time.Second, 5*time.Minute, func() (bool, string) {
		list, err := b.client().CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for i := range list.Items {
			n := &list.Items[i]
			if len(n.Spec.Taints) == 0 && nodeReady(n) && (!zones || n.Labels[zoneLabel] != "") {
				ready++
			}
		}
		return ready >= b.sc.nodes, fmt.Sprintf("%d of %d nodes listed, %d Ready and untainted", len(list.Items), b.sc.nodes, ready)
	})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	return nil
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// labelZones gives node <prefix>i the zone label zone-<i mod zones> (the
// agent labels all its nodes alike; it keeps labels others add).
func (b *schedBench) labelZones(ctx context.Context) error {
	cs, err := b.t.clients(8)
	if err != nil {
		return err
	}
	s := runClients(ctx, len(cs), budget{ops: b.sc.nodes}, func(ctx context.Context, c, i int) (bool, error) {
		n := i*len(cs) + c
		patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, zoneLabel, zoneOf(n, b.sc.zones))
		_, err := cs[c].CoreV1().Nodes().Patch(ctx, fmt.Sprintf("sim-%d", n), types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		return false, err
	})
	if s.Errors > 0 {
		return fmt.Errorf("labeling zones: %d errors, e.g. %s", s.Errors, strings.Join(s.ErrorSamples, " | "))
	}
	logf("labeled %d nodes with %d zones in %s", s.Ops, b.sc.zones, s.Elapsed.Round(time.Millisecond))
	return nil
}

// schedulerConfigYAML is the configuration both schedulers run with.
func schedulerConfigYAML(kubeconfig string, qps int) string {
	return fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %q
  qps: %d
  burst: %d
  contentType: application/vnd.kubernetes.protobuf
leaderElection:
  leaderElect: false
`, kubeconfig, qps, qps)
}

// schedulerCommand is the command line of scheduler name serving on port.
func (b *schedBench) schedulerCommand(name string, port int) (string, []string) {
	args := []string{"--config", b.schedulerConfig, "--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(port),
		"--authentication-kubeconfig", b.srv.Kubeconfig, "--authorization-kubeconfig", b.srv.Kubeconfig}
	if name == "upstream" {
		return b.upstreamBin, args
	}
	bin, _ := harness.SkiffBinary()
	return bin, append([]string{"scheduler"}, args...)
}

// client is one of the bench's clients of the server.
func (b *schedBench) client() kubernetes.Interface { return b.t.admin() }
