// Command bench runs the same client-go workload against skiff and against
// upstream kube-apiserver (v1.37.2, on its own etcd) in one run, and reports
// each metric for both and the ratio skiff/upstream.
//
// Usage, from the repository root:
//
//	hack/upstream.sh kube-apiserver   # once: builds the upstream binary
//	go run ./hack/bench               # full run, ~7 minutes on 2 cores
//	go run ./hack/bench --quick       # smoke run, ~2 minutes
//	go run ./hack/bench --skip-upstream --only pods,list
//
// With --scenarios scheduler it benchmarks skiff's scheduler against
// upstream kube-scheduler (hack/upstream.sh kube-scheduler) on one skiff
// server with simulated nodes instead: see sched.go. With --scenarios
// controllers, skiff's controller manager against upstream
// kube-controller-manager (hack/upstream.sh kube-controller-manager) on one
// skiff apiserver with simulated nodes: see ctrl.go. With --scenarios
// kubelet, skiff's kubelet against upstream kubelet (hack/upstream.sh
// kubelet) with real pods on one containerd: see kubelet.go. With
// --scenarios proxy, skiff's proxy against upstream kube-proxy
// (hack/upstream.sh kube-proxy), each alone in a network namespace: see
// proxy.go. With --scenarios dns, skiff dns against CoreDNS
// (hack/tools/coredns/build.sh) over 10 000 Services: see dns.go.
//
// The markdown table goes to stdout, progress to stderr, the same data as
// JSON (plus every raw measurement and server run) to --out, default
// _output/bench/bench-<timestamp>.json; the servers' logs are kept next to
// it in bench-<timestamp>-logs/. skiff is built from the working tree
// ($SKIFF_BIN overrides), upstream is taken from hack/upstream.sh's cache.
//
// Workloads (client-go typed and metadata clients, which speak protobuf to
// both servers; no client-side rate limit; one connection per client):
//
//   - startup: each server is started --starts times; median time from
//     process start to the first 200 from /readyz.
//   - configmaps, pods: for each of --clients concurrent clients, in a fresh
//     namespace: create, get, list, update (an annotation), delete (pods
//     with grace period 0); ops/s and p50/p99 latency of each. Each
//     measurement runs for --duration, or --ops operations if set. get,
//     update and delete use the objects the client created; list lists a
//     namespace holding 100 objects of the kind (the same size on both
//     servers, however many objects create made). Pods are minimal
//     (one container, no service-account token) and stay Pending.
//   - list: --pods pods created by the largest client count, then --reps
//     times each: a full list (typed, and raw bytes without decoding), a
//     paged list (limit=500, following continue) and a metadata-only list
//     (PartialObjectMetadataList, metadata client); medians.
//   - watch: --watchers watches on one namespace's ConfigMaps, then
//     --events creates by 16 clients; time from the first create until the
//     last watcher has seen the last event.
//   - sar: --bindings ClusterRoleBindings and --bindings RoleBindings in one
//     namespace, each to a user of its own; then, with each client count,
//     SubjectAccessReviews (get configmaps in that namespace) allowed by a
//     ClusterRoleBinding, allowed by a RoleBinding, and denied; ops/s and
//     p50/p99 of each, every answer checked.
//   - RSS of the server process when idle (--settle after /readyz, before
//     load; median over starts) and after each workload.
//
// Fairness: only one server runs at a time. Every workload starts a fresh
// server of each kind, and the server that goes first alternates from one
// workload (and start-up round) to the next. Both servers get the same
// requests in the same order. The machine may be shared: each run records
// the CPU time of the server, of this process and of everything else, and
// the notes under the table name runs where other processes took more than
// 10% of the CPUs (see "cpu" in the JSON's runs).
//
// Caveats: upstream's etcd runs inside this process (harness.StartUpstream),
// so upstream's RSS excludes etcd while skiff's includes its embedded etcd,
// and upstream's start time excludes starting etcd. No controller manager
// or kubelet runs next to upstream.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skiff-dev/skiff/test/harness"
)

type config struct {
	scenarios    string // "apiserver", "scheduler" (sched.go) or "controllers" (ctrl.go)
	quick        bool
	skipUpstream bool
	clients      []int
	duration     time.Duration
	ops          int
	pods         int
	reps         int
	watchers     int
	events       int
	bindings     int
	starts       int
	settle       time.Duration
	only         []string
	out          string
}

// budget is what each CRUD measurement runs for.
func (c *config) budget() budget { return budget{ops: c.ops, d: c.duration} }

func (c *config) maxClients() int { return slices.Max(c.clients) }

func (c *config) wants(workload string) bool {
	return len(c.only) == 0 || slices.Contains(c.only, workload)
}

func (c *config) toJSON() map[string]any {
	return map[string]any{
		"quick": c.quick, "skip_upstream": c.skipUpstream, "clients": c.clients,
		"duration": c.duration.String(), "ops": c.ops, "pods": c.pods, "reps": c.reps,
		"watchers": c.watchers, "events": c.events, "bindings": c.bindings, "starts": c.starts,
		"settle": c.settle.String(), "only": c.only,
	}
}

var workloadNames = []string{"startup", "configmaps", "pods", "list", "watch", "sar"}

func parseFlags() *config {
	c := &config{}
	flag.StringVar(&c.scenarios, "scenarios", "apiserver", "apiserver: skiff server vs kube-apiserver; scheduler: skiff's scheduler vs kube-scheduler on one skiff server (see sched.go); controllers: skiff's controller manager vs kube-controller-manager (see ctrl.go); kubelet: skiff kubelet vs upstream kubelet on one containerd (see kubelet.go); proxy: skiff proxy vs kube-proxy in network namespaces (see proxy.go); dns: skiff dns vs CoreDNS (see dns.go)")
	flag.BoolVar(&c.quick, "quick", false, "smoke run: small sizes and short durations (flags set explicitly still win)")
	flag.BoolVar(&c.skipUpstream, "skip-upstream", false, "measure skiff only (ratios stay blank)")
	clients := flag.String("clients", "1,16,64", "comma-separated concurrent client counts for the CRUD workloads")
	flag.DurationVar(&c.duration, "duration", 5*time.Second, "how long each CRUD measurement runs (quick: 1s)")
	flag.IntVar(&c.ops, "ops", 0, "run each CRUD measurement for this many operations instead of --duration")
	flag.IntVar(&c.pods, "pods", 10000, "pods to create for the list workload (quick: 1000)")
	flag.IntVar(&c.reps, "reps", 5, "repetitions of each list; the median is reported (quick: 3)")
	flag.IntVar(&c.watchers, "watchers", 100, "concurrent watchers in the watch workload")
	flag.IntVar(&c.events, "events", 1000, "ConfigMaps created while watched (quick: 200)")
	flag.IntVar(&c.bindings, "bindings", 1000, "ClusterRoleBindings, and RoleBindings, in the sar workload (quick: 200)")
	flag.IntVar(&c.starts, "starts", 3, "start-up samples per server (quick: 1)")
	flag.DurationVar(&c.settle, "settle", 5*time.Second, "wait after /readyz before the idle RSS (quick: 2s)")
	only := flag.String("only", "", "comma-separated subset of workloads: "+strings.Join(workloadNames, ",")+
		" (--scenarios scheduler: "+strings.Join(schedScenarioNames, ",")+"; controllers: "+strings.Join(ctrlScenarioNames, ",")+"; kubelet: "+strings.Join(kubeletScenarioNames, ",")+"; proxy: "+strings.Join(proxyScenarioNames, ",")+"; dns: "+strings.Join(dnsScenarioNames, ",")+")")
	flag.StringVar(&c.out, "out", "", "JSON output (default _output/bench/bench-<timestamp>.json; sched-<timestamp>.json with --scenarios scheduler, ctrl-<timestamp>.json with controllers)")
	flag.Parse()

	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.quick {
		quick := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		quick("duration", func() { c.duration = time.Second })
		quick("pods", func() { c.pods = 1000 })
		quick("reps", func() { c.reps = 3 })
		quick("events", func() { c.events = 200 })
		quick("bindings", func() { c.bindings = 200 })
		quick("starts", func() { c.starts = 1 })
		quick("settle", func() { c.settle = 2 * time.Second })
	}
	for _, f := range strings.Split(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			usageError("bad --clients entry %q", f)
		}
		c.clients = append(c.clients, n)
	}
	names, prefix := workloadNames, "bench"
	switch c.scenarios {
	case "apiserver":
	case "scheduler":
		names, prefix = schedScenarioNames, "sched"
	case "controllers":
		names, prefix = ctrlScenarioNames, "ctrl"
	case "kubelet":
		names, prefix = kubeletScenarioNames, "kubelet"
	case "proxy":
		names, prefix = proxyScenarioNames, "proxy"
	case "dns":
		names, prefix = dnsScenarioNames, "dns"
	default:
		usageError("unknown --scenarios %q (have apiserver, scheduler, controllers, kubelet, proxy, dns)", c.scenarios)
	}
	if *only != "" {
		for _, w := range strings.Split(*only, ",") {
			if w = strings.TrimSpace(w); !slices.Contains(names, w) {
				usageError("unknown workload %q in --only (have %s)", w, strings.Join(names, ","))
			}
			c.only = append(c.only, strings.TrimSpace(w))
		}
	}
	if c.duration <= 0 && c.ops <= 0 || c.pods < 1 || c.reps < 1 || c.watchers < 1 || c.events < 1 || c.bindings < 1 || c.starts < 1 {
		usageError("sizes must be positive")
	}
	if c.out == "" {
		c.out = fmt.Sprintf("_output/bench/%s-%s.json", prefix, time.Now().Format("20060102-150405"))
	}
	return c
}

func usageError(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	flag.Usage()
	os.Exit(2)
}

// workload is run once on each server, each time on a fresh server.
type workload struct {
	key  string // its name for --only
	name string // in the report
	run  func(ctx context.Context, t *target, rec recorder) error
}

type bench struct {
	cfg    *config
	res    *results
	logDir string
	seq    int                  // servers started so far, names their directories
	idle   map[string][]float64 // idle RSS samples (MiB) per server
	stops  map[string][]float64 // seconds from SIGTERM to exit per server
	stray  *os.File             // this process' etcd and klog output, see quietStderr
}

func main() {
	cfg := parseFlags()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal kills at once
	}()
	if cfg.scenarios == "scheduler" {
		os.Exit(runSchedBench(ctx, cfg))
	}
	if cfg.scenarios == "controllers" {
		os.Exit(runCtrlBench(ctx, cfg))
	}
	if cfg.scenarios == "kubelet" {
		os.Exit(runKubeletBench(ctx, cfg))
	}
	if cfg.scenarios == "proxy" {
		os.Exit(runProxyBench(ctx, cfg))
	}
	if cfg.scenarios == "dns" {
		os.Exit(runDNSBench(ctx, cfg))
	}
	os.Exit(runBench(ctx, cfg))
}

var (
	benchStart = time.Now()
	progress   = os.Stderr // the real stderr, whatever quietStderr does
)

// logf prints a progress line to stderr.
func logf(format string, args ...any) {
	el := time.Since(benchStart).Round(time.Second)
	fmt.Fprintf(progress, "[%02d:%02d] %s\n", int(el.Minutes()), int(el.Seconds())%60, fmt.Sprintf(format, args...))
}

// startResults begins the report of a run of skiff and, unless
// skipUpstream, the upstream binary named upstream; the names the values go
// by ("skiff", "upstream"). Without the binary it says how to build it.
func startResults(config any, skipUpstream bool, upstream string) (*results, []string, error) {
	res := &results{Started: time.Now(), Config: config}
	res.Host = hostInfo{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), SkiffRevision: gitRevision(),
		UpstreamVersion: harness.UpstreamVersion}
	servers := []string{"skiff"}
	if !skipUpstream {
		bin, ok := harness.UpstreamBinary(upstream)
		if !ok {
			return nil, nil, fmt.Errorf("upstream %s %s not found.\n"+
				"Build it with:  hack/upstream.sh %s\n"+
				"or measure skiff alone with --skip-upstream", upstream, bin, upstream)
		}
		res.Host.UpstreamBinary = bin
		servers = append(servers, "upstream")
	}
	return res, servers, nil
}

// conclude ends a run: ratios, table (to stdout), the JSON; the exit status.
func (r *results) conclude(ctx context.Context, servers []string, table func(io.Writer), out string, failed bool) int {
	if ctx.Err() != nil {
		r.note("interrupted: %v", ctx.Err())
		failed = true
	}
	r.Finished = time.Now()
	r.finish(servers)
	table(os.Stdout)
	if err := r.writeJSON(out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	logf("done in %s; JSON: %s", r.Finished.Sub(r.Started).Round(time.Second), out)
	if failed {
		return 1
	}
	return 0
}

func runBench(ctx context.Context, cfg *config) int {
	res, servers, err := startResults(cfg.toJSON(), cfg.skipUpstream, "kube-apiserver")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	b := &bench{cfg: cfg, res: res, logDir: strings.TrimSuffix(cfg.out, ".json") + "-logs", idle: map[string][]float64{},
		stops: map[string][]float64{}}
	if err := os.MkdirAll(b.logDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if f, err := os.Create(filepath.Join(b.logDir, "bench-stderr.log")); err == nil {
		b.stray = f
		defer f.Close()
	}
	logf("load average %.2f on %d CPUs; servers: %s; logs in %s", loadAvg(), runtime.NumCPU(), strings.Join(servers, ", "), b.logDir)

	logf("building skiff")
	if _, err := harness.SkiffBinary(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer harness.Cleanup()

	failed := false
	if cfg.wants("startup") {
		logf("== startup: %d start(s) per server", cfg.starts)
		if err := b.measureStartup(ctx); err != nil {
			res.note("startup: %v", err)
			failed = true
		}
	}
	workloads := []workload{
		crudWorkload(cfg, configMaps),
		crudWorkload(cfg, pods),
		listWorkload(cfg),
		watchWorkload(cfg),
		sarWorkload(cfg),
	}
	var rounds []round
	for _, w := range workloads {
		if cfg.wants(w.key) {
			rounds = append(rounds, round{name: w.name, run: func(ctx context.Context, server string) error {
				return b.runWorkload(ctx, w, server)
			}})
		}
	}
	failed = res.runRounds(ctx, rounds, b.serverOrder) || failed
	return res.conclude(ctx, servers, res.markdown, cfg.out, failed)
}

// round is one workload run on every server in turn.
type round struct {
	name string
	run  func(ctx context.Context, server string) error
}

// runRounds runs each round on every server, in the order order(i) gives
// the i-th (alternating which goes first), notes the failures and reports
// whether there were any.
func (r *results) runRounds(ctx context.Context, rounds []round, order func(int) []string) bool {
	failed := false
	for i, rd := range rounds {
		logf("== %s", rd.name)
		for _, name := range order(i) {
			if ctx.Err() != nil {
				break
			}
			if err := rd.run(ctx, name); err != nil {
				r.note("%s: %s: %v", name, rd.name, err)
				failed = true
			}
		}
	}
	return failed
}

// maxOtherShare is how much of the machine other processes may take during
// a workload before the report warns.
const maxOtherShare = 0.10

// runWorkload runs w on a fresh server and records its idle RSS and its RSS
// after the workload.
func (b *bench) runWorkload(ctx context.Context, w workload, name string) error {
	load := loadAvg()
	t, err := b.start(ctx, name, w.key)
	if err != nil {
		return err
	}
	defer b.stop(t)
	ready := t.srv.ReadyAt.Sub(t.srv.StartedAt)
	select {
	case <-time.After(b.cfg.settle):
	case <-ctx.Done():
		return ctx.Err()
	}
	idle := rssMiB(t)
	b.idle[name] = append(b.idle[name], idle)
	b.res.set(name, "server", "RSS idle, median over workload starts", "MiB", median(b.idle[name]))
	logf("%s: %s: ready after %s, idle RSS %.0f MiB, load %.2f", name, w.name, ready.Round(time.Millisecond), idle, load)

	rec := recorder{res: b.res, server: name, workload: w.name}
	began := time.Now()
	cpu0 := sampleCPU(t.srv.PID)
	err = w.run(ctx, t, rec)
	cpu := cpu0.until(sampleCPU(t.srv.PID))
	after := rssMiB(t)
	rec.set("RSS after workload", "MiB", after)
	r := run{Server: name, Workload: w.name, Started: t.srv.StartedAt, ReadySeconds: ready.Seconds(),
		WallSeconds: time.Since(began).Seconds(), Load1Before: load, Load1After: loadAvg(), CPU: cpu, LogPath: t.srv.LogPath}
	if err != nil {
		r.Error = err.Error()
	}
	b.res.Runs = append(b.res.Runs, r)
	logf("%s: %s: done in %s, RSS %.0f MiB, load %.2f, CPU: server %.0fs, bench %.0fs, other processes %.0f%% of the machine",
		name, w.name, time.Since(began).Round(time.Second), after, r.Load1After, cpu.ServerSeconds, cpu.BenchSeconds, 100*cpu.OtherShare)
	if cpu.OtherShare > maxOtherShare {
		b.res.note("%s: %s: other processes used %.0f%% of the CPUs meanwhile (load %.1f → %.1f): these numbers are skewed",
			name, w.name, 100*cpu.OtherShare, load, r.Load1After)
	}
	return err
}

// gitRevision describes the working tree skiff is built from.
func gitRevision() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	rev := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		rev += "-dirty"
	}
	return rev
}
