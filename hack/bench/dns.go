package main

// The DNS scenario set (--scenarios dns), skiff dns against CoreDNS
// v1.15.0 with kubeadm's default Corefile:
//
//	hack/tools/coredns/build.sh            # once
//	go run ./hack/bench --scenarios dns
//
// One skiff apiserver serves the whole run, with --dns-services Services
// (svc-NNNNN in bench-dns, ClusterIP, one EndpointSlice of 5 endpoints
// each, as the proxy scenarios'). A fake upstream resolver in this process
// (127.0.0.1, UDP and TCP) answers every A question under bench.test.
// with an address made from the name (TTL 300) and NXDOMAIN otherwise, so
// that no internet is needed. Each DNS server runs alone, a fresh process,
// pinned with taskset to CPU --dns-server-cpu; the bench's load generator
// is pinned to --dns-load-cpu meanwhile (every thread of this process):
//
//	skiff dns --kubeconfig K --bind-address 127.0.0.1 --port P --upstream-servers 127.0.0.1:U
//	    --ttl 30 --health-port H --ready-port R --metrics-port M
//	coredns -conf F   (kubeadm's Corefile: errors, health {lameduck 5s}, ready,
//	    kubernetes cluster.local in-addr.arpa ip6.arpa {pods insecure; fallthrough
//	    in-addr.arpa ip6.arpa; ttl 30}, prometheus, forward . U {max_concurrent 1000},
//	    cache 30 {disable success cluster.local; disable denial cluster.local},
//	    loop, reload, loadbalance; but .:P with bind 127.0.0.1, the kubernetes
//	    plugin's kubeconfig K, health/ready/prometheus on free loopback ports,
//	    and forward to U instead of /etc/resolv.conf)
//
// Measured: process start → /ready 200 (records synced); RSS once ready
// (after --dns-settle); then for each query kind (--only internal,forwarded)
// and each client count of --dns-clients, --dns-duration of load (after a
// short warm-up): N clients, each with its own UDP socket, one query in
// flight each (closed loop, 2 s timeout), A questions for
// svc-<random>.bench-dns.svc.cluster.local. (internal; the answer must be
// the Service's ClusterIP) or name-<random of --dns-forward-names>.bench.test.
// (forwarded; cached by both, so mostly cache hits; the answer must be the
// fake upstream's); queries/s, p50/p99 latency, errors, the server's CPU
// (% of its one core) and the share of the machine other processes took;
// peak RSS over the load; the fake upstream's query count.
//
// Published anchor (the CoreDNS project's scaling notes): one CoreDNS on
// 2 vCPU serves ~33 700 internal queries/s; here each server has 1 core.
import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/skiff-dev/skiff/test/harness"
)

// dnsConfig is the DNS scenario set's part of the flags.
type dnsConfig struct {
	services     int
	clientsFlag  string
	clients      []int
	duration     time.Duration
	warmup       time.Duration
	settle       time.Duration
	forwardNames int
	serverCPU    int
	loadCPU      int
	order        string
	creaters     int
	timeout      time.Duration
}

var dnsFlags dnsConfig

// dnsScenarioNames are the query kinds --only accepts with --scenarios dns.
var dnsScenarioNames = []string{"internal", "forwarded"}

const (
	dnsNamespace   = "bench-dns"
	dnsForwardZone = "bench.test."
	// corednsVersion is the CoreDNS hack/tools/coredns builds.
	corednsVersion = "v1.15.0"
	dnsAnchor      = "published anchor: one CoreDNS on 2 vCPU serves ~33 700 internal queries/s (CoreDNS's scaling notes); each server here has 1 core"
)

func init() {
	f := &dnsFlags
	flag.IntVar(&f.services, "dns-services", 10000, "dns scenarios: Services (quick: 1000)")
	flag.StringVar(&f.clientsFlag, "dns-clients", "1,16,64", "dns scenarios: comma-separated concurrent client counts")
	flag.DurationVar(&f.duration, "dns-duration", 10*time.Second, "dns scenarios: how long each measurement runs (quick: 2s)")
	flag.DurationVar(&f.warmup, "dns-warmup", 2*time.Second, "dns scenarios: unrecorded load before each query kind (quick: 1s)")
	flag.DurationVar(&f.settle, "dns-settle", 5*time.Second, "dns scenarios: pause after /ready before the idle RSS (quick: 2s)")
	flag.IntVar(&f.forwardNames, "dns-forward-names", 100, "dns scenarios: distinct forwarded names queried")
	flag.IntVar(&f.serverCPU, "dns-server-cpu", 0, "dns scenarios: the CPU each DNS server is pinned to (taskset)")
	flag.IntVar(&f.loadCPU, "dns-load-cpu", 1, "dns scenarios: the CPU the load generator is pinned to")
	flag.StringVar(&f.order, "dns-order", "skiff,upstream", "dns scenarios: which DNS server runs first")
	flag.IntVar(&f.creaters, "dns-create-clients", 16, "dns scenarios: concurrent clients creating the Services")
	flag.DurationVar(&f.timeout, "dns-timeout", 5*time.Minute, "dns scenarios: give up on a server not ready by then")
}

func (f *dnsConfig) defaults(quick bool) error {
	set := map[string]bool{}
	flag.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if quick {
		for name, apply := range map[string]func(){
			"dns-services": func() { f.services = 1000 }, "dns-duration": func() { f.duration = 2 * time.Second },
			"dns-warmup": func() { f.warmup = time.Second }, "dns-settle": func() { f.settle = 2 * time.Second },
		} {
			if !set[name] {
				apply()
			}
		}
	}
	f.clients = nil
	for _, s := range strings.Split(f.clientsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("--dns-clients: bad count %q", s)
		}
		f.clients = append(f.clients, n)
	}
	if f.services < 1 || f.services > 12000 || f.forwardNames < 1 || f.duration <= 0 || f.creaters < 1 {
		return errors.New("--dns-services must be 1..12000; --dns-forward-names, --dns-duration, --dns-create-clients positive")
	}
	if n := runtime.NumCPU(); f.serverCPU < 0 || f.serverCPU >= n || f.loadCPU < 0 || f.loadCPU >= n {
		return fmt.Errorf("--dns-server-cpu and --dns-load-cpu must be CPUs of this machine (0..%d)", n-1)
	}
	for _, s := range f.servers() {
		if s != "skiff" && s != "upstream" {
			return fmt.Errorf("--dns-order: unknown server %q (have skiff, upstream)", s)
		}
	}
	return nil
}

func (f *dnsConfig) servers() []string {
	var out []string
	for _, s := range strings.Split(f.order, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (f *dnsConfig) toJSON(c *config) map[string]any {
	return map[string]any{"scenarios": "dns", "quick": c.quick, "skip_upstream": c.skipUpstream, "only": c.only,
		"services": f.services, "clients": f.clients, "duration": f.duration.String(), "warmup": f.warmup.String(),
		"settle": f.settle.String(), "forward_names": f.forwardNames, "server_cpu": f.serverCPU, "load_cpu": f.loadCPU,
		"order": f.servers(), "coredns_version": corednsVersion, "anchor": dnsAnchor}
}

// corednsBinary is where hack/tools/coredns/build.sh puts CoreDNS.
func corednsBinary() (string, bool) {
	dir := filepath.Join(filepath.Dir(harness.UpstreamDir()), "coredns-"+corednsVersion)
	if d := os.Getenv("SKIFF_UPSTREAM_CACHE"); d != "" {
		dir = filepath.Join(d, "coredns-"+corednsVersion)
	}
	path := filepath.Join(dir, "coredns")
	info, err := os.Stat(path)
	return path, err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0
}

// dnsBench is one run of the DNS scenario set.
type dnsBench struct {
	cfg      *config
	dc       *dnsConfig
	res      *results
	logDir   string
	srv      *harness.Server
	t        *target
	coredns  string
	ips      map[int]string
	upstream *fakeResolver
}

func runDNSBench(ctx context.Context, cfg *config) int {
	dc := &dnsFlags
	if err := dc.defaults(cfg.quick); err != nil {
		usageError("%v", err)
	}
	res := &results{Started: time.Now(), Config: dc.toJSON(cfg)}
	res.Host = hostInfo{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), SkiffRevision: gitRevision(),
		UpstreamVersion: "CoreDNS " + corednsVersion}
	servers := dc.servers()
	bin, ok := corednsBinary()
	if cfg.skipUpstream {
		servers = deleteString(servers, "upstream")
	} else if !ok {
		fmt.Fprintf(os.Stderr, "bench: CoreDNS %s not found at %s.\nBuild it with:  hack/tools/coredns/build.sh\nor measure skiff alone with --skip-upstream\n", corednsVersion, bin)
		return 1
	}
	res.Host.UpstreamBinary = bin
	if _, err := exec.LookPath("taskset"); err != nil {
		fmt.Fprintln(os.Stderr, "bench: the dns scenarios need taskset (apt-get install util-linux)")
		return 1
	}
	logDir, err := filepath.Abs(strings.TrimSuffix(cfg.out, ".json") + "-logs")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	b := &dnsBench{cfg: cfg, dc: dc, res: res, logDir: logDir, coredns: bin}
	kinds := dnsScenarioNames
	if len(cfg.only) > 0 {
		kinds = cfg.only
	}
	logf("load average %.2f on %d CPUs; DNS servers: %s (CPU %d), load generator on CPU %d; %d services; logs in %s", loadAvg(),
		runtime.NumCPU(), strings.Join(servers, ", "), dc.serverCPU, dc.loadCPU, dc.services, logDir)
	res.note("%s", dnsAnchor)
	defer harness.Cleanup()

	failed := false
	if err := b.setUp(ctx); err != nil {
		res.note("set-up: %v", err)
		failed = true
	} else {
		for _, name := range servers {
			if ctx.Err() != nil {
				break
			}
			logf("== %s DNS server", name)
			if err := b.runServer(ctx, name, kinds); err != nil {
				res.note("%s DNS server: %v", name, err)
				failed = true
			}
		}
	}
	b.tearDown()
	return res.conclude(ctx, []string{"skiff", "upstream"}, func(out io.Writer) { dnsMarkdown(out, res, dc.clients, kinds) }, cfg.out, failed)
}

func deleteString(xs []string, x string) []string {
	var out []string
	for _, v := range xs {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

func (b *dnsBench) setUp(ctx context.Context) error {
	var err error
	if b.upstream, err = startFakeResolver(); err != nil {
		return fmt.Errorf("fake upstream resolver: %w", err)
	}
	logf("building skiff, starting skiff apiserver; fake upstream resolver on %s", b.upstream.addr)
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
	if err := ensureNamespace(ctx, b.t.admin(), dnsNamespace); err != nil {
		return err
	}
	cs, err := b.t.clients(b.dc.creaters)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if b.ips, err = createServices(ctx, cs, dnsNamespace, 0, b.dc.services, 5); err != nil {
		return err
	}
	logf("%d services created with their EndpointSlices in %s", b.dc.services, time.Since(t0).Round(time.Second))
	return nil
}

func (b *dnsBench) tearDown() {
	if b.upstream != nil {
		b.upstream.stop()
	}
	if b.srv == nil {
		return
	}
	b.t.closeIdle()
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

// dnsPorts are a DNS server's loopback ports.
type dnsPorts struct{ dns, health, ready, metrics int }

func freeDNSPorts() (dnsPorts, error) {
	var p dnsPorts
	for _, port := range []*int{&p.dns, &p.health, &p.ready, &p.metrics} {
		n, err := harness.FreePort()
		if err != nil {
			return p, err
		}
		*port = n
	}
	return p, nil
}

// corefile is kubeadm's default Corefile with the bench's addresses.
func corefile(p dnsPorts, kubeconfig, upstream string) string {
	return fmt.Sprintf(`.:%d {
    bind 127.0.0.1
    errors
    health 127.0.0.1:%d {
       lameduck 5s
    }
    ready 127.0.0.1:%d
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       kubeconfig %s
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus 127.0.0.1:%d
    forward . %s {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    loop
    reload
    loadbalance
}
`, p.dns, p.health, p.ready, kubeconfig, p.metrics, upstream)
}

// serverCommand is the command line of DNS server name (taskset first).
func (b *dnsBench) serverCommand(name string, p dnsPorts, dir string) ([]string, error) {
	argv := []string{"-c", strconv.Itoa(b.dc.serverCPU)}
	if name == "skiff" {
		bin, err := harness.SkiffBinary()
		if err != nil {
			return nil, err
		}
		return append(argv, bin, "dns", "--kubeconfig", b.srv.Kubeconfig, "--bind-address", "127.0.0.1",
			"--port", strconv.Itoa(p.dns), "--upstream-servers", b.upstream.addr, "--ttl", "30",
			"--health-port", strconv.Itoa(p.health), "--ready-port", strconv.Itoa(p.ready), "--metrics-port", strconv.Itoa(p.metrics)), nil
	}
	conf := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(conf, []byte(corefile(p, b.srv.Kubeconfig, b.upstream.addr)), 0o644); err != nil {
		return nil, err
	}
	return append(argv, b.coredns, "-conf", conf), nil
}

// runServer starts DNS server name and runs every query kind against it.
func (b *dnsBench) runServer(ctx context.Context, name string, kinds []string) error {
	rec := recorder{res: b.res, server: name, workload: "server"}
	dir := filepath.Join(b.logDir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ports, err := freeDNSPorts()
	if err != nil {
		return err
	}
	argv, err := b.serverCommand(name, ports, dir)
	if err != nil {
		return err
	}
	started := time.Now()
	p, err := startProcess(filepath.Join(dir, name+"-dns.log"), "taskset", func(int) []string { return argv })
	if err != nil {
		return err
	}
	defer func() {
		t0 := time.Now()
		if err := p.stop(); err != nil {
			b.res.note("%s DNS server did not stop cleanly: %v (log %s)", name, err, p.logPath)
		}
		rec.set("SIGTERM → exited (CoreDNS: lameduck 5s)", "s", time.Since(t0).Seconds())
	}()
	hc := &http.Client{Timeout: 5 * time.Second}
	readyURL := fmt.Sprintf("http://127.0.0.1:%d/ready", ports.ready)
	err = poll(ctx, p, 50*time.Millisecond, b.dc.timeout, func() (bool, string) {
		resp, err := hc.Get(readyURL)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, "/ready: " + resp.Status
	})
	if err != nil {
		return fmt.Errorf("not ready: %w", err)
	}
	rec.set("process start → /ready 200 (records synced)", "s", time.Since(started).Seconds())
	if err := sleep(ctx, b.dc.settle); err != nil {
		return err
	}
	rec.set("RSS, ready and idle", "MiB", p.rssMiB())
	cpuStart := procCPU(strconv.Itoa(p.pid))

	addr := fmt.Sprintf("127.0.0.1:%d", ports.dns)
	restore, err := pinProcess(b.dc.loadCPU)
	if err != nil {
		return fmt.Errorf("pinning the load generator to CPU %d: %w", b.dc.loadCPU, err)
	}
	defer restore()
	peak := newRSSSampler(p)
	defer peak.stop()
	upstream0 := b.upstream.queries.Load()
	for _, kind := range kinds {
		gen := b.generator(kind, addr)
		if b.dc.warmup > 0 {
			_ = runClients(ctx, b.dc.clients[len(b.dc.clients)-1], budget{d: b.dc.warmup}, gen.op(b.dc.clients[len(b.dc.clients)-1]))
			gen.close()
		}
		for _, n := range b.dc.clients {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			wrec := recorder{res: b.res, server: name, workload: fmt.Sprintf("%s, %d clients", kind, n)}
			cpu0 := sampleCPU(p.pid)
			st := runClients(ctx, n, budget{d: b.dc.duration}, gen.op(n))
			cpu := cpu0.until(sampleCPU(p.pid))
			gen.close()
			wrec.stats("queries", budget{d: b.dc.duration}, st)
			wrec.set("server CPU", "% of a core", 100*cpu.ServerSeconds/st.Elapsed.Seconds())
			wrec.set("other processes' share of the machine", "%", 100*cpu.OtherShare)
			logf("%s: %s, %d clients: %s; server CPU %.0f%%, other processes %.0f%% of the machine", name, kind, n, st,
				100*cpu.ServerSeconds/st.Elapsed.Seconds(), 100*cpu.OtherShare)
			if cpu.OtherShare > maxOtherShare {
				b.res.note("%s: %s, %d clients: other processes used %.0f%% of the CPUs meanwhile: these numbers are skewed",
					name, kind, n, 100*cpu.OtherShare)
			}
		}
	}
	peak.stop()
	rec.set("peak RSS under load (sampled every 250 ms)", "MiB", peak.peak())
	rec.set("RSS after the load", "MiB", p.rssMiB())
	rec.set("CPU, all the load", "s", (procCPU(strconv.Itoa(p.pid)) - cpuStart).Seconds())
	rec.set("queries the fake upstream got", "queries", float64(b.upstream.queries.Load()-upstream0))
	return nil
}

// queryGen makes the load of one query kind: one UDP socket per client.
type queryGen struct {
	kind     string
	addr     string
	services int
	names    int
	ips      map[int]string
	mu       sync.Mutex
	conns    []*dns.Conn
}

func (b *dnsBench) generator(kind, addr string) *queryGen {
	return &queryGen{kind: kind, addr: addr, services: b.dc.services, names: b.dc.forwardNames, ips: b.ips}
}

// op is the clientOp of n clients: one A query, its answer checked.
func (g *queryGen) op(n int) clientOp {
	conns := make([]*dns.Conn, n)
	rngs := make([]*rand.Rand, n)
	for c := range n {
		rngs[c] = rand.New(rand.NewPCG(uint64(c), uint64(time.Now().UnixNano())))
	}
	return func(ctx context.Context, c, i int) (bool, error) {
		if conns[c] == nil {
			co, err := dns.Dial("udp", g.addr)
			if err != nil {
				return false, err
			}
			conns[c] = co
			g.mu.Lock()
			g.conns = append(g.conns, co)
			g.mu.Unlock()
		}
		var name, want string
		if g.kind == "internal" {
			k := rngs[c].IntN(g.services)
			name, want = svcName(k)+"."+dnsNamespace+".svc.cluster.local.", g.ips[k]
		} else {
			k := rngs[c].IntN(g.names)
			name = fmt.Sprintf("name-%d.%s", k, dnsForwardZone)
			want = fakeAnswer(name).String()
		}
		return false, exchangeA(conns[c], name, want)
	}
}

// close closes the sockets of the last op.
func (g *queryGen) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.conns {
		c.Close()
	}
	g.conns = nil
}

// exchangeA asks co for name's A record and checks that the answer is
// want; answers to earlier, timed-out queries are skipped.
func exchangeA(co *dns.Conn, name, want string) error {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	deadline := time.Now().Add(2 * time.Second)
	_ = co.SetDeadline(deadline)
	if err := co.WriteMsg(m); err != nil {
		return err
	}
	for {
		resp, err := co.ReadMsg()
		if err != nil {
			return err
		}
		if resp.Id != m.Id {
			continue
		}
		if resp.Rcode != dns.RcodeSuccess {
			return fmt.Errorf("%s: %s", name, dns.RcodeToString[resp.Rcode])
		}
		for _, rr := range resp.Answer {
			if a, ok := rr.(*dns.A); ok && a.A.String() == want {
				return nil
			}
		}
		return fmt.Errorf("%s: answer %v, want A %s", name, resp.Answer, want)
	}
}

// pinProcess sets the CPU affinity of every thread of this process to cpu
// (threads made later inherit it) and returns how to undo it.
func pinProcess(cpu int) (func(), error) {
	tids, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	var set, all cpuSet
	set.add(cpu)
	for c := range runtime.NumCPU() {
		all.add(c)
	}
	for _, t := range tids {
		tid, _ := strconv.Atoi(t.Name())
		if err := setAffinity(tid, set); err != nil && !errors.Is(err, errNoThread) {
			return nil, err
		}
	}
	return func() {
		if tids, err := os.ReadDir("/proc/self/task"); err == nil {
			for _, t := range tids {
				tid, _ := strconv.Atoi(t.Name())
				_ = setAffinity(tid, all)
			}
		}
	}, nil
}

// rssSampler samples a process' RSS every 250 ms for its peak.
type rssSampler struct {
	mu   sync.Mutex
	max  float64
	done chan struct{}
	once sync.Once
}

func newRSSSampler(p *process) *rssSampler {
	s := &rssSampler{done: make(chan struct{})}
	go func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			rss := p.rssMiB()
			s.mu.Lock()
			s.max = max(s.max, rss)
			s.mu.Unlock()
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) stop() { s.once.Do(func() { close(s.done) }) }

func (s *rssSampler) peak() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max
}

// fakeResolver is the upstream resolver of forwarded names.
type fakeResolver struct {
	addr    string
	udp     *dns.Server
	tcp     *dns.Server
	queries atomic.Int64
}

// fakeAnswer is the fake upstream's A record of name: 198.18.x.y from a
// hash of the name.
func fakeAnswer(name string) net.IP {
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h = (h ^ uint32(name[i])) * 16777619
	}
	return net.IPv4(198, 18, byte(h>>8), byte(h))
}

func startFakeResolver() (*fakeResolver, error) {
	f := &fakeResolver{}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		f.queries.Add(1)
		m := new(dns.Msg)
		m.SetReply(r)
		if len(r.Question) == 1 && dns.IsSubDomain(dnsForwardZone, strings.ToLower(r.Question[0].Name)) && r.Question[0].Qtype == dns.TypeA {
			q := r.Question[0]
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
				A: fakeAnswer(strings.ToLower(q.Name))}}
		} else if len(r.Question) != 1 || !dns.IsSubDomain(dnsForwardZone, strings.ToLower(r.Question[0].Name)) {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f.addr = pc.LocalAddr().String()
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		pc.Close()
		return nil, err
	}
	f.udp = &dns.Server{PacketConn: pc, Handler: handler}
	f.tcp = &dns.Server{Listener: ln, Handler: handler}
	started := make(chan struct{}, 2)
	f.udp.NotifyStartedFunc = func() { started <- struct{}{} }
	f.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	go func() { _ = f.udp.ActivateAndServe() }()
	go func() { _ = f.tcp.ActivateAndServe() }()
	for range 2 {
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			f.stop()
			return nil, errors.New("fake resolver did not start")
		}
	}
	return f, nil
}

func (f *fakeResolver) stop() {
	_ = f.udp.Shutdown()
	_ = f.tcp.Shutdown()
}

// dnsMarkdown writes the summary table (one line a query kind and client
// count), then every row and the notes.
func dnsMarkdown(out io.Writer, r *results, clients []int, kinds []string) {
	get := func(workload, metric string) (*float64, *float64, *float64) {
		if w, ok := r.index[[2]string{workload, metric}]; ok {
			return w.Skiff, w.Upstream, w.Ratio
		}
		return nil, nil, nil
	}
	fmt.Fprintln(out, "| queries, clients | skiff q/s | CoreDNS q/s | ratio | p99 ms skiff / CoreDNS (ratio) | server CPU % skiff / CoreDNS | errors skiff / CoreDNS |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|---:|")
	for _, kind := range kinds {
		for _, n := range clients {
			w := fmt.Sprintf("%s, %d clients", kind, n)
			sk, up, ratio := get(w, "queries")
			if sk == nil && up == nil {
				continue
			}
			skP, upP, rP := get(w, "queries p99")
			skC, upC, _ := get(w, "server CPU")
			skE, upE, _ := get(w, "queries errors")
			zero := 0.0
			if skE == nil && sk != nil {
				skE = &zero
			}
			if upE == nil && up != nil {
				upE = &zero
			}
			fmt.Fprintf(out, "| %s | %s | %s | %s | %s / %s (%s) | %s / %s | %s / %s |\n", w, fmtValue(sk), fmtValue(up), fmtRatio(ratio),
				fmtValue(skP), fmtValue(upP), fmtRatio(rP), fmtValue(skC), fmtValue(upC), fmtValue(skE), fmtValue(upE))
		}
	}
	for _, m := range []string{"RSS, ready and idle", "peak RSS under load (sampled every 250 ms)", "process start → /ready 200 (records synced)"} {
		if w, ok := r.index[[2]string{"server", m}]; ok {
			fmt.Fprintf(out, "| %s (%s) | %s | %s | %s | | | |\n", m, w.Unit, fmtValue(w.Skiff), fmtValue(w.Upstream), fmtRatio(w.Ratio))
		}
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "All rows (skiff is skiff dns, upstream CoreDNS "+corednsVersion+" with kubeadm's Corefile; one core each, the load generator on another; the API server is skiff's for both):")
	fmt.Fprintln(out)
	r.markdown(out)
}
