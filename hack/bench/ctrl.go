package main

// The controller manager scenario set (--scenarios controllers), skiff's
// controllers against upstream's kube-controller-manager:
//
//	hack/upstream.sh kube-controller-manager   # once
//	go run ./hack/bench --scenarios controllers           # full run
//	go run ./hack/bench --scenarios controllers --quick   # smoke run
//
// One skiff apiserver (the API server without controllers), one skiff
// scheduler (its KubeSchedulerConfiguration as the scheduler scenarios',
// qps/burst --ctrl-sched-qps, so that it is not what is measured) and one
// skiff agent --simulate --ctrl-nodes (capacity cpu=8, memory=32Gi,
// pods=110) serve the whole run. For each round each controller manager
// runs alone, a fresh process, which goes first alternating per round:
//
//	skiff controller-manager --kubeconfig K --kube-api-qps Q --kube-api-burst B
//	    --use-service-account-credentials=false --leader-elect=false --controllers=*
//	    --bind-address 127.0.0.1 --secure-port P
//	    --authentication-kubeconfig K --authorization-kubeconfig K
//	kube-controller-manager (v1.37.2, hack/upstream.sh) with the same flags
//
// (K the admin kubeconfig, Q and B --ctrl-qps and --ctrl-burst, upstream's
// defaults 20 and 30; both publish the kubeconfig's CA as kube-root-ca.crt;
// neither gets a --service-account-private-key-file nor
// --cluster-signing-* files, so neither signs legacy tokens or CSRs;
// without leader election neither waits for a Lease the previous one left).
// A round first waits for /healthz, for every node to be Ready without
// taints (node-lifecycle-controller removes the not-ready taint new nodes
// get), for the ServiceAccount "default" of the round's namespace and for
// a canary Deployment of one replica to be Ready and, deleted, to take its
// ReplicaSet and pod with it (the garbage collector has synced). Before
// each measurement the bench waits until the controller manager is idle
// (--ctrl-quiet). Rounds (--only):
//
//	deployment  (a) a Deployment of --ctrl-replicas pods: time from its
//	            create call until status.readyReplicas is all of them;
//	            (b) then its image is changed (the strategic merge patch of
//	            kubectl set image; default strategy: maxSurge and
//	            maxUnavailable 25%): time until the rollout is complete
//	            (observedGeneration current; replicas, updatedReplicas,
//	            readyReplicas and availableReplicas all --ctrl-replicas; every
//	            older ReplicaSet at 0 desired and 0 current)
//	namespace   (c) a namespace holding --ctrl-objects objects, equal parts
//	            of 10 kinds that start no pods (ConfigMaps, Secrets, Services
//	            without selector, ServiceAccounts, Roles, RoleBindings,
//	            PodTemplates, suspended Jobs, ReplicaSets of 0 replicas,
//	            LimitRanges): time from its delete call until it is gone
//	cascade     (d) --ctrl-deployments Deployments of one replica, all
//	            Ready (that time is reported too), then each deleted with
//	            propagationPolicy Background by --ctrl-clients clients:
//	            time from the first delete call until no Deployment,
//	            ReplicaSet or pod is left in the namespace
//
// Pods are minimal (one container, 10m CPU, 16Mi, no service-account
// token); simulated containers stop at once, so pods deleted with the
// default grace period are gone as soon as the agent confirms. Progress is
// polled (every 100 ms for one object, 250 ms for lists). Each round ends
// by deleting its namespace while the controller manager still runs (that
// time is reported as clean-up), then it is stopped.
//
// For each scenario: its time; the controller manager's CPU seconds and
// peak RSS (sampled every 250 ms) during it; the CPU seconds of the API
// server, scheduler, agent and bench; the share of the machine other
// processes took. With --ctrl-wait-e2e D it first waits up to D while an
// e2e.test process runs.
//
// At upstream's default --kube-api-qps 20 (a), (b) and (d) are bound by
// the controllers' client rate limit (each controller has its own, in both
// managers): both take the same time, and only their CPU seconds and RSS
// tell them apart. Raise --ctrl-qps/--ctrl-burst (e.g. 500/1000) to see
// what the controllers themselves can do on the machine. The first round's
// first controller manager also lifts the not-ready taint of every node,
// which makes its start-up slower (hence the median).
import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/test/harness"
)

// ctrlConfig is the controller manager scenario set's part of the flags.
type ctrlConfig struct {
	nodes       int
	replicas    int
	objects     int
	deployments int
	clients     int
	qps         int
	burst       int
	schedQPS    int
	timeout     time.Duration
	quiet       time.Duration
	settle      time.Duration
	waitForE2E  time.Duration
}

var ctrlFlags ctrlConfig

// ctrlScenarioNames are the rounds --only accepts with --scenarios controllers.
var ctrlScenarioNames = []string{"deployment", "namespace", "cascade"}

// objectKinds is how many kinds the namespace scenario's objects are of.
const objectKinds = 10

func init() {
	f := &ctrlFlags
	flag.IntVar(&f.nodes, "ctrl-nodes", 100, "controller scenarios: simulated nodes (quick: 20)")
	flag.IntVar(&f.replicas, "ctrl-replicas", 3000, "controller scenarios: replicas of the Deployment of (a) and (b) (quick: 300)")
	flag.IntVar(&f.objects, "ctrl-objects", 5000, "controller scenarios: objects in the namespace of (c), a multiple of 10 (quick: 500)")
	flag.IntVar(&f.deployments, "ctrl-deployments", 500, "controller scenarios: Deployments of (d) (quick: 50)")
	flag.IntVar(&f.clients, "ctrl-clients", 16, "controller scenarios: concurrent clients creating and deleting objects")
	flag.IntVar(&f.qps, "ctrl-qps", 20, "controller scenarios: both controller managers' --kube-api-qps (upstream's default)")
	flag.IntVar(&f.burst, "ctrl-burst", 30, "controller scenarios: both controller managers' --kube-api-burst (upstream's default)")
	flag.IntVar(&f.schedQPS, "ctrl-sched-qps", 5000, "controller scenarios: the skiff scheduler's clientConnection qps and burst")
	flag.DurationVar(&f.timeout, "ctrl-timeout", 15*time.Minute, "controller scenarios: give up on a measurement not done by then")
	flag.DurationVar(&f.quiet, "ctrl-quiet", 2*time.Minute, "controller scenarios: wait up to this long for the controller manager to be idle before each measurement")
	flag.DurationVar(&f.settle, "ctrl-settle", 5*time.Second, "controller scenarios: pause after a controller manager stopped")
	flag.DurationVar(&f.waitForE2E, "ctrl-wait-e2e", 0, "controller scenarios: first wait up to this long while an e2e.test process runs (0: do not wait)")
}

// ctrlDefaults applies --quick and checks the sizes.
func (f *ctrlConfig) ctrlDefaults(quick bool) error {
	set := map[string]bool{}
	flag.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	quickly := func(name string, p *int, v int) {
		if quick && !set[name] {
			*p = v
		}
	}
	quickly("ctrl-nodes", &f.nodes, 20)
	quickly("ctrl-replicas", &f.replicas, 300)
	quickly("ctrl-objects", &f.objects, 500)
	quickly("ctrl-deployments", &f.deployments, 50)
	switch {
	case f.nodes < 1 || f.replicas < 1 || f.objects < 1 || f.deployments < 1 || f.clients < 1 || f.qps < 1 || f.burst < 1 || f.schedQPS < 1:
		return fmt.Errorf("sizes must be positive")
	case f.objects%objectKinds != 0:
		return fmt.Errorf("--ctrl-objects must be a multiple of %d (equal parts of each kind)", objectKinds)
	case (f.replicas*5+3)/4 > f.nodes*100:
		// 110 pods a node, less the canary and some slack: a rolling
		// update surges by 25%.
		return fmt.Errorf("--ctrl-replicas %d do not fit on %d nodes during a rolling update (at most 100 pods a node)", f.replicas, f.nodes)
	case f.deployments > f.nodes*100:
		return fmt.Errorf("--ctrl-deployments %d do not fit on %d nodes", f.deployments, f.nodes)
	}
	return nil
}

func (f *ctrlConfig) toJSON(c *config) map[string]any {
	return map[string]any{
		"scenarios": "controllers", "quick": c.quick, "skip_upstream": c.skipUpstream, "only": c.only,
		"nodes": f.nodes, "replicas": f.replicas, "objects": f.objects, "object_kinds": objectKinds,
		"deployments": f.deployments, "clients": f.clients, "kube_api_qps": f.qps, "kube_api_burst": f.burst,
		"scheduler_qps": f.schedQPS, "timeout": f.timeout.String(), "quiet": f.quiet.String(), "settle": f.settle.String(),
	}
}

// ctrlBench is one run of the controller manager scenario set.
type ctrlBench struct {
	cfg         *config
	cc          *ctrlConfig
	res         *results
	logDir      string
	srv         *harness.Server
	t           *target // the server, with the bench's clients
	agent       *process
	sched       *process
	seq         int // controller managers started so far
	upstreamBin string
	warmUps     map[string][]float64 // start → synced, per controller manager
	idleRSS     map[string][]float64 // RSS once synced, per controller manager
}

func runCtrlBench(ctx context.Context, cfg *config) int {
	cc := &ctrlFlags
	if err := cc.ctrlDefaults(cfg.quick); err != nil {
		usageError("%v", err)
	}
	res, managers, err := startResults(cc.toJSON(cfg), cfg.skipUpstream, "kube-controller-manager")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	b := &ctrlBench{cfg: cfg, cc: cc, res: res, logDir: strings.TrimSuffix(cfg.out, ".json") + "-logs",
		upstreamBin: res.Host.UpstreamBinary, warmUps: map[string][]float64{}, idleRSS: map[string][]float64{}}
	if err := os.MkdirAll(b.logDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if waitForE2E(ctx, cc.waitForE2E); ctx.Err() != nil {
		return 1
	}
	logf("load average %.2f on %d CPUs; controller managers: %s; %d nodes; logs in %s", loadAvg(), runtime.NumCPU(),
		strings.Join(managers, ", "), cc.nodes, b.logDir)
	defer harness.Cleanup() // the skiff binary StartSkiff builds

	failed := false
	if err := b.setUp(ctx); err != nil {
		res.note("set-up: %v", err)
		failed = true
	} else {
		var rounds []round
		for _, r := range b.rounds() {
			if cfg.wants(r.key) {
				rounds = append(rounds, round{name: r.name, run: func(ctx context.Context, manager string) error {
					return b.runRound(ctx, r, manager)
				}})
			}
		}
		// Which controller manager goes first alternates as the servers do.
		failed = res.runRounds(ctx, rounds, (&bench{cfg: cfg}).serverOrder)
	}
	b.tearDown()
	return res.conclude(ctx, managers, func(out io.Writer) { ctrlMarkdown(out, res, b.rounds()) }, cfg.out, failed)
}

// setUp starts the API server, the scheduler and the agent, and waits for
// every node to be registered (Ready and untainted only once a controller
// manager runs).
func (b *ctrlBench) setUp(ctx context.Context) error {
	logf("building skiff, starting skiff apiserver")
	srv, err := harness.StartSkiff(ctx, harness.Options{Dir: filepath.Join(b.logDir, "server"), Command: "apiserver"})
	if err != nil {
		return fmt.Errorf("start skiff apiserver: %w", err)
	}
	b.srv = srv
	cfg, err := srv.RESTConfig()
	if err != nil {
		return err
	}
	b.t = &target{name: "skiff", srv: srv, cfg: cfg}
	bin, _ := harness.SkiffBinary()

	schedConfig := filepath.Join(b.logDir, "scheduler-config.yaml")
	if err := os.WriteFile(schedConfig, []byte(schedulerConfigYAML(srv.Kubeconfig, b.cc.schedQPS)), 0o644); err != nil {
		return err
	}
	logf("starting skiff scheduler")
	b.sched, err = startProcess(filepath.Join(b.logDir, "scheduler.log"), bin, func(port int) []string {
		return []string{"scheduler", "--config", schedConfig, "--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(port),
			"--authentication-kubeconfig", srv.Kubeconfig, "--authorization-kubeconfig", srv.Kubeconfig}
	})
	if err != nil {
		return fmt.Errorf("start scheduler: %w", err)
	}

	logf("starting skiff agent --simulate %d", b.cc.nodes)
	b.agent, err = startProcess(filepath.Join(b.logDir, "agent.log"), bin, func(port int) []string {
		return []string{"agent", "--kubeconfig", srv.Kubeconfig, "--simulate", fmt.Sprint(b.cc.nodes),
			"--simulate-capacity", "cpu=8,memory=32Gi,pods=110", "--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(port)}
	})
	if err != nil {
		return fmt.Errorf("start agent: %w", err)
	}
	t0 := time.Now()
	err = poll(ctx, b.agent, time.Second, 5*time.Minute, func() (bool, string) {
		list, err := b.client().CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return false, err.Error()
		}
		return len(list.Items) >= b.cc.nodes, fmt.Sprintf("%d of %d nodes registered", len(list.Items), b.cc.nodes)
	})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	logf("%d nodes registered after %s", b.cc.nodes, time.Since(t0).Round(time.Second))
	return nil
}

func (b *ctrlBench) tearDown() {
	for _, p := range []struct {
		name string
		p    *process
	}{{"agent", b.agent}, {"scheduler", b.sched}} {
		if p.p == nil {
			continue
		}
		b.res.set("skiff", "set-up", p.name+" RSS at the end", "MiB", p.p.rssMiB())
		if err := p.p.stop(); err != nil {
			b.res.note("%s did not stop cleanly: %v (log %s)", p.name, err, p.p.logPath)
		}
	}
	if b.srv != nil {
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
}

// controllerManagerCommand is the command line of controller manager name
// serving on port.
func (b *ctrlBench) controllerManagerCommand(name string, port int) (string, []string) {
	k := b.srv.Kubeconfig
	args := []string{"--kubeconfig", k, "--kube-api-qps", fmt.Sprint(b.cc.qps), "--kube-api-burst", fmt.Sprint(b.cc.burst),
		"--use-service-account-credentials=false", "--leader-elect=false", "--controllers=*",
		"--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(port),
		"--authentication-kubeconfig", k, "--authorization-kubeconfig", k}
	if name == "upstream" {
		return b.upstreamBin, args
	}
	bin, _ := harness.SkiffBinary()
	return bin, append([]string{"controller-manager"}, args...)
}

// client is the bench's client for set-up calls and progress polls.
func (b *ctrlBench) client() kubernetes.Interface { return b.t.admin() }
