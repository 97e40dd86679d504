package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	kresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	watchtools "k8s.io/client-go/tools/watch"
)

// schedScenario is one scheduling workload.
type schedScenario struct {
	key  string // its name for --only
	name string // in the report
	pods int
	pod  func(name string) *corev1.Pod
	fill bool // preemption: fill every node with low-priority pods first
	// backlog: the pods are created before the scheduler starts; pods/s
	// and latencies count from its start.
	backlog bool
}

func (b *schedBench) scenarios() []schedScenario {
	sc := b.sc
	fillCPU := kresource.NewMilliQuantity(int64(8000/sc.fillPerNode), kresource.DecimalSI)
	return []schedScenario{
		{key: "plain", name: fmt.Sprintf("(a) plain: %d pods / %d nodes", sc.pods, sc.nodes), pods: sc.pods,
			pod: func(name string) *corev1.Pod { return schedPod(name, "plain") }},
		{key: "spread", name: fmt.Sprintf("(b) topology spread over %d zones: %d pods", sc.zones, sc.pods), pods: sc.pods,
			pod: func(name string) *corev1.Pod {
				p := schedPod(name, "spread")
				p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
					MaxSkew: 1, TopologyKey: zoneLabel, WhenUnsatisfiable: corev1.DoNotSchedule,
					LabelSelector: &metav1.LabelSelector{MatchLabels: p.Labels},
				}}
				return p
			}},
		{key: "antiaffinity", name: fmt.Sprintf("(c) required anti-affinity on hostname: %d pods", sc.antiPods), pods: sc.antiPods,
			pod: func(name string) *corev1.Pod {
				p := schedPod(name, "antiaffinity")
				p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
					RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
						LabelSelector: &metav1.LabelSelector{MatchLabels: p.Labels}, TopologyKey: corev1.LabelHostname,
					}},
				}}
				return p
			}},
		{key: "preemption", name: fmt.Sprintf("(d) preemption: %d high-priority pods, %d nodes full of %d low-priority pods",
			sc.preemptors, sc.nodes, sc.nodes*sc.fillPerNode), pods: sc.preemptors, fill: true,
			pod: func(name string) *corev1.Pod {
				p := schedPod(name, "preemption")
				p.Spec.PriorityClassName = highPriorityClass
				p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = *fillCPU
				return p
			}},
		{key: "backlog", name: fmt.Sprintf("(e) backlog: %d plain pods created first, times from the scheduler's start", sc.backlogPods),
			pods: sc.backlogPods, backlog: true,
			pod: func(name string) *corev1.Pod { return schedPod(name, "backlog") }},
	}
}

// schedPod is a scenario's pod: one container asking for 100m CPU and
// 128Mi, no service-account token, deleted at once.
func schedPod(name, app string) *corev1.Pod {
	automount := false
	var grace int64
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: kresource.MustParse("100m"), corev1.ResourceMemory: kresource.MustParse("128Mi")}}}},
			AutomountServiceAccountToken:  &automount,
			TerminationGracePeriodSeconds: &grace,
		},
	}
}

// fillerPod is a low-priority pod bound to node at creation.
func (b *schedBench) fillerPod(node, j int) *corev1.Pod {
	p := schedPod(fmt.Sprintf("fill-%d-%d", node, j), "fill")
	p.Spec.NodeName = fmt.Sprintf("sim-%d", node)
	p.Spec.PriorityClassName = lowPriorityClass
	p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = *kresource.NewMilliQuantity(int64(8000/b.sc.fillPerNode), kresource.DecimalSI)
	return p
}

// canaryName is the pod that tells a fresh scheduler has synced; the
// measurement ignores it.
const canaryName = "canary"

// runScenario measures s with scheduler name: a fresh server and agent,
// the scheduler started, the pods created and watched until all are
// bound, then everything stopped.
func (b *schedBench) runScenario(ctx context.Context, s schedScenario, name string) error {
	rec := recorder{res: b.res, server: name, workload: s.name}
	runtime.GC()
	b.seq++
	dir := filepath.Join(b.logDir, fmt.Sprintf("%02d-%s-%s", b.seq, name, s.key))
	defer b.tearDown(rec)
	if err := b.setUp(ctx, dir, rec); err != nil {
		return fmt.Errorf("set-up: %w", err)
	}
	cs := b.client()
	ns, err := newNamespace(ctx, cs, "sched-"+s.key, true)
	if err != nil {
		return err
	}
	if s.fill {
		fillNS, err := newNamespace(ctx, cs, "sched-fill", true)
		if err != nil {
			return err
		}
		if err := b.fill(ctx, fillNS); err != nil {
			return err
		}
	}

	bin, _ := b.schedulerCommand(name, 0)
	logPath := filepath.Join(dir, "scheduler.log")
	var sched *process
	start := func() (*process, error) {
		p, err := startProcess(logPath, bin, func(port int) []string {
			_, args := b.schedulerCommand(name, port)
			return args
		})
		if err != nil {
			return nil, fmt.Errorf("start %s scheduler: %w", name, err)
		}
		sched = p
		return p, nil
	}
	defer func() {
		// Without leader election kube-scheduler exits 1 on SIGTERM.
		if sched == nil {
			return
		}
		if serr := sched.stop(); serr != nil && !(name == "upstream" && strings.Contains(sched.logTail(5), "finished without leader elect")) {
			b.res.note("%s: %s: scheduler did not stop cleanly: %v (log %s)", name, s.name, serr, logPath)
		}
	}()
	hc, err := componentClient(b.t.cfg)
	if err != nil {
		return err
	}
	var before metrics // a fresh scheduler's counters are 0
	var load float64
	var cpu0 schedCPU
	var m outcome
	t0 := time.Now()
	if s.backlog {
		creators, cerr := b.t.clients(b.sc.clients + 1)
		if cerr != nil {
			return cerr
		}
		cr := createPods(ctx, creators[1:], ns, s)
		logf("%s: %s: %d pods created in %s (%d errors); starting the scheduler", name, s.name, len(cr.at),
			cr.last.Sub(firstTime(cr.at)).Round(time.Millisecond), cr.errs)
		load = loadAvg()
		cpu0 = sampleSchedCPU(b.srv.PID, b.agent.pid, 0)
		t0 = time.Now()
		m, err = b.measure(ctx, s, ns, nil, &backlogStart{cr: cr, start: start})
	} else {
		if _, err := start(); err != nil {
			return err
		}
		if err := sched.waitHealthy(ctx, hc, 2*time.Minute); err != nil {
			return fmt.Errorf("%s scheduler: %w", name, err)
		}
		if err := b.canary(ctx, ns, sched); err != nil {
			return fmt.Errorf("%s scheduler: %w", name, err)
		}
		rec.set("scheduler start → canary pod bound", "s", time.Since(t0).Seconds())
		if before, err = scrape(ctx, sched, hc); err != nil {
			return err
		}
		load = loadAvg()
		cpu0 = sampleSchedCPU(b.srv.PID, b.agent.pid, sched.pid)
		logf("%s: %s: scheduler ready after %s, load %.2f; creating %d pods with %d clients",
			name, s.name, time.Since(t0).Round(time.Millisecond), load, s.pods, b.sc.clients)
		m, err = b.measure(ctx, s, ns, sched, nil)
	}
	if sched == nil {
		return err
	}
	cpu := cpu0.until(sampleSchedCPU(b.srv.PID, b.agent.pid, sched.pid), runtime.NumCPU())
	// The metrics of the last binds may trail the watch events.
	_ = sleep(ctx, time.Second)
	after, serr := scrape(ctx, sched, hc)
	rss := sched.rssMiB()
	b.res.Runs = append(b.res.Runs, run{Server: name, Workload: s.name, Started: t0, WallSeconds: time.Since(t0).Seconds(),
		Load1Before: load, Load1After: loadAvg(), LogPath: logPath,
		CPU: cpuUse{ServerSeconds: cpu.Server, BenchSeconds: cpu.Bench, OtherShare: cpu.OtherShare}, Error: errString(err)})
	b.res.Details = append(b.res.Details, detail{Server: name, Workload: s.name, Measurement: "bind latency",
		Budget: fmt.Sprintf("%d pods", s.pods), Stats: m.stats})
	if err != nil {
		rec.fail("pods/s (first create → last bound)", "pods/s", err.Error())
		return err
	}
	rec.set("pods/s (first create → last bound)", "pods/s", m.stats.throughput())
	rec.set("latency p50 (create → bound seen)", "ms", ms(m.stats.P50))
	rec.set("latency p99 (create → bound seen)", "ms", ms(m.stats.P99))
	if !s.backlog {
		rec.set("create calls: pods/s", "pods/s", float64(m.stats.Ops)/m.createPhase.Seconds())
	} else {
		rec.set("scheduler start → first bind seen", "s", m.firstBind.Seconds())
		if steady := m.stats.Elapsed - m.firstBind; steady > 0 && m.stats.Ops > 1 {
			rec.set("pods/s from the first bind to the last", "pods/s", float64(m.stats.Ops-1)/steady.Seconds())
		}
	}
	if m.stats.Errors > 0 {
		rec.set("create errors", "count", float64(m.stats.Errors))
		b.res.note("%s: %s: %d create errors, e.g. %s", name, s.name, m.stats.Errors, strings.Join(m.stats.ErrorSamples, " | "))
	}
	if serr != nil {
		b.res.note("%s: %s: scraping /metrics: %v", name, s.name, serr)
	} else {
		recordSchedulerMetrics(rec, before, after)
	}
	rec.set("scheduler CPU", "s", cpu.Scheduler)
	rec.set("server CPU", "s", cpu.Server)
	rec.set("agent CPU", "s", cpu.Agent)
	rec.set("scheduler RSS after", "MiB", rss)
	rec.set("other processes' CPU share", "%", 100*cpu.OtherShare)
	logf("%s: %s: %d pods bound in %s: %.0f pods/s, p50 %s, p99 %s; CPU s: scheduler %.0f, server %.0f, agent %.0f, bench %.0f, other processes %.0f%% of the machine",
		name, s.name, m.stats.Ops, m.stats.Elapsed.Round(time.Millisecond), m.stats.throughput(), fmtDur(m.stats.P50), fmtDur(m.stats.P99),
		cpu.Scheduler, cpu.Server, cpu.Agent, cpu.Bench, 100*cpu.OtherShare)
	if cpu.OtherShare > maxOtherShare {
		b.res.note("%s: %s: other processes used %.0f%% of the CPUs meanwhile (load %.1f → %.1f): these numbers are skewed",
			name, s.name, 100*cpu.OtherShare, load, loadAvg())
	}
	return nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func scrape(ctx context.Context, p *process, hc *http.Client) (metrics, error) {
	code, body, err := p.get(ctx, hc, "/metrics")
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("/metrics: %d %s", code, strings.TrimSpace(body))
	}
	return parseMetrics(body), nil
}

// recordSchedulerMetrics records what the scheduler's own metrics say of
// the run (after − before).
func recordSchedulerMetrics(rec recorder, before, after metrics) {
	delta := func(name string, match map[string]string) float64 {
		return after.sum(name, match) - before.sum(name, match)
	}
	for _, result := range []string{"scheduled", "unschedulable", "error"} {
		rec.set("attempts "+result, "count", delta("scheduler_schedule_attempts_total", map[string]string{"result": result}))
	}
	rec.set("preemption attempts", "count", delta("scheduler_preemption_attempts_total", nil))
	if n := delta("scheduler_scheduling_attempt_duration_seconds_count", nil); n > 0 {
		rec.set("scheduling attempt duration, mean", "ms", 1000*delta("scheduler_scheduling_attempt_duration_seconds_sum", nil)/n)
	}
	sli := histogramDelta(before.histogram("scheduler_pod_scheduling_sli_duration_seconds"),
		after.histogram("scheduler_pod_scheduling_sli_duration_seconds"))
	rec.set("scheduler SLI p50 (queued → bound, histogram estimate)", "ms", 1000*histogramQuantile(0.5, sli))
	rec.set("scheduler SLI p99 (queued → bound, histogram estimate)", "ms", 1000*histogramQuantile(0.99, sli))
}

// fill creates cfg.fillPerNode low-priority pods on every node, bound by
// spec.nodeName, and waits until the agent runs them all.
func (b *schedBench) fill(ctx context.Context, ns string) error {
	cs, err := b.t.clients(b.sc.clients)
	if err != nil {
		return err
	}
	total := b.sc.nodes * b.sc.fillPerNode
	t0 := time.Now()
	s := runClients(ctx, len(cs), budget{ops: total}, func(ctx context.Context, c, i int) (bool, error) {
		n := i*len(cs) + c
		_, err := cs[c].CoreV1().Pods(ns).Create(ctx, b.fillerPod(n/b.sc.fillPerNode, n%b.sc.fillPerNode), metav1.CreateOptions{})
		return false, err
	})
	if s.Errors > 0 {
		return fmt.Errorf("filling the nodes: %d errors, e.g. %s", s.Errors, strings.Join(s.ErrorSamples, " | "))
	}
	err = poll(ctx, b.agent, time.Second, 5*time.Minute, func() (bool, string) {
		list, err := b.client().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return false, err.Error()
		}
		running := 0
		for i := range list.Items {
			if list.Items[i].Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == total, fmt.Sprintf("%d of %d low-priority pods Running", running, total)
	})
	if err != nil {
		return fmt.Errorf("filling the nodes: %w", err)
	}
	logf("filled %d nodes with %d low-priority pods, all Running, in %s", b.sc.nodes, total, time.Since(t0).Round(time.Second))
	return nil
}

// canary creates a pod the scheduler must bind before the measurement
// starts (its informers have synced then), and deletes it.
func (b *schedBench) canary(ctx context.Context, ns string, sched *process) error {
	pods := b.client().CoreV1().Pods(ns)
	p := schedPod(canaryName, "canary")
	p.Spec.Containers[0].Resources = corev1.ResourceRequirements{} // fits a full node
	if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create canary: %w", err)
	}
	err := poll(ctx, sched, 100*time.Millisecond, 2*time.Minute, func() (bool, string) {
		got, err := pods.Get(ctx, canaryName, metav1.GetOptions{})
		return err == nil && got.Spec.NodeName != "", fmt.Sprintf("canary pod not bound (%v)", err)
	})
	if err != nil {
		return err
	}
	var grace int64
	return pods.Delete(ctx, canaryName, metav1.DeleteOptions{GracePeriodSeconds: &grace})
}

// outcome is a run's raw result.
type outcome struct {
	stats       opStats       // Ops: pods bound; Elapsed: first create → last bound; P50/P99 latencies
	createPhase time.Duration // first create → last create returned
	unbound     int           // created, never seen bound
	firstBind   time.Duration // first create → first bind seen
}

// creation is what creating a scenario's pods gave.
type creation struct {
	at    map[string]time.Time // pod → when its create call started
	last  time.Time            // the last create call returned
	errs  int
	first []string // error samples
}

// createPods creates s's pods pod-00000 ... in ns with the clients, each
// create retried up to twice.
func createPods(ctx context.Context, creators []kubernetes.Interface, ns string, s schedScenario) creation {
	names := make([]string, s.pods)
	for i := range names {
		names[i] = fmt.Sprintf("pod-%05d", i)
	}
	started := make([]time.Time, s.pods)
	errs := make([]error, s.pods)
	var mu sync.Mutex // guards last
	var last time.Time
	next := make(chan int)
	var wg sync.WaitGroup
	for _, c := range creators {
		wg.Go(func() {
			for i := range next {
				pod := s.pod(names[i])
				started[i] = time.Now()
				err := ctx.Err()
				// A retry after a create that timed out may find the pod
				// there.
				for attempt := 0; attempt < 3 && ctx.Err() == nil; attempt++ {
					if _, err = c.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err == nil || apierrors.IsAlreadyExists(err) {
						err = nil
						break
					}
				}
				errs[i] = err
				mu.Lock()
				if now := time.Now(); now.After(last) {
					last = now
				}
				mu.Unlock()
			}
		})
	}
	for i := range s.pods {
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	cr := creation{at: map[string]time.Time{}, last: last}
	for i, err := range errs {
		switch {
		case err != nil:
			cr.errs++
			if len(cr.first) < 3 {
				cr.first = append(cr.first, err.Error())
			}
		case !started[i].IsZero():
			cr.at[names[i]] = started[i]
		}
	}
	return cr
}

// backlogStart is the backlog scenario's: the pods created before
// the scheduler, and how to start it.
type backlogStart struct {
	cr    creation
	start func() (*process, error)
}

// measure creates s's pods in ns with cfg.clients clients and waits until
// the watch has seen every one bound. With backlog the pods are there
// already; it starts the scheduler, and each pod's latency and the run's
// time count from that start.
func (b *schedBench) measure(ctx context.Context, s schedScenario, ns string, sched *process, backlog *backlogStart) (outcome, error) {
	cs, err := b.t.clients(b.sc.clients + 1)
	if err != nil {
		return outcome{}, err
	}
	watcher, creators := cs[0], cs[1:]
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var cr creation
	created := make(chan struct{})
	if backlog != nil {
		cr = backlog.cr
		close(created)
	}
	// Before the scheduler starts in the backlog scenario, so that the
	// watch does not back up while the pods are created.
	list, err := watcher.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return outcome{}, err
	}
	rw, err := watchtools.NewRetryWatcherWithContext(wctx, list.ResourceVersion, &podWatcher{pods: watcher.CoreV1().Pods(ns)})
	if err != nil {
		return outcome{}, err
	}
	defer rw.Stop()
	var t0 time.Time
	if backlog != nil {
		t0 = time.Now()
		if sched, err = backlog.start(); err != nil {
			return outcome{}, err
		}
	} else {
		go func() {
			cr = createPods(wctx, creators, ns, s)
			close(created)
		}()
	}

	timeout := time.NewTimer(b.sc.timeout)
	defer timeout.Stop()
	bound := map[string]time.Time{}
	want := s.pods
	var waitErr error
	createdAll := created
	for done := false; !done; {
		select {
		case ev, ok := <-rw.ResultChan():
			switch {
			case !ok:
				waitErr = errors.New("the pod watch ended")
			case ev.Type == watch.Error:
				waitErr = fmt.Errorf("pod watch: %v", apierrors.FromObject(ev.Object))
			default:
				if p, ok := ev.Object.(*corev1.Pod); ok && p.Spec.NodeName != "" && p.Name != canaryName {
					if _, seen := bound[p.Name]; !seen {
						bound[p.Name] = time.Now()
					}
				}
			}
			done = waitErr != nil || len(bound) >= want
		case <-createdAll:
			createdAll = nil
			want = s.pods - cr.errs
			done = len(bound) >= want
		case <-timeout.C:
			waitErr = fmt.Errorf("%d of %d pods bound after %s", len(bound), want, b.sc.timeout)
			done = true
		case <-sched.exited:
			waitErr = fmt.Errorf("scheduler exited: %v; log tail:\n%s", sched.waitErr, sched.logTail(8))
			done = true
		case <-ctx.Done():
			waitErr = ctx.Err()
			done = true
		}
	}
	cancel()
	<-created
	from := cr.at
	if backlog != nil {
		from = map[string]time.Time{}
		for name := range cr.at {
			from[name] = t0
		}
	}
	o := summarize(from, bound)
	o.stats.Errors, o.stats.ErrorSamples = cr.errs, cr.first
	if first := firstTime(cr.at); !first.IsZero() && cr.last.After(first) {
		o.createPhase = cr.last.Sub(first)
	}
	if waitErr == nil && o.unbound > 0 {
		waitErr = fmt.Errorf("%d pods created but never seen bound", o.unbound)
	}
	return o, waitErr
}

func firstTime(ts map[string]time.Time) time.Time {
	var first time.Time
	for _, t := range ts {
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}
	return first
}

// summarize turns when each pod's create call started and when its bind
// was seen into the run's numbers: Ops pods bound, Elapsed from the first
// create to the last bind, P50/P99 of bind − create (a bind seen before
// its create call returned counts as 0), Unbound pods created but never
// seen bound.
func summarize(created, bound map[string]time.Time) outcome {
	var o outcome
	var lat []time.Duration
	first := firstTime(created)
	var firstBind, last time.Time
	for name, c := range created {
		b, ok := bound[name]
		if !ok {
			o.unbound++
			continue
		}
		lat = append(lat, max(b.Sub(c), 0))
		if b.After(last) {
			last = b
		}
		if firstBind.IsZero() || b.Before(firstBind) {
			firstBind = b
		}
	}
	slices.Sort(lat)
	o.stats = opStats{Clients: 0, Ops: len(lat), P50: percentile(lat, 50), P99: percentile(lat, 99)}
	if len(lat) > 0 {
		o.stats.Elapsed = last.Sub(first)
		o.firstBind = max(firstBind.Sub(first), 0)
	}
	return o
}

// podWatcher watches one namespace's pods for the RetryWatcher.
type podWatcher struct {
	pods interface {
		Watch(context.Context, metav1.ListOptions) (watch.Interface, error)
	}
}

func (w *podWatcher) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return w.pods.Watch(ctx, opts)
}
