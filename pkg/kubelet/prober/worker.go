package prober

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/component-base/metrics"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
)

// worker runs one probe of one container periodically until it is
// stopped or the container will not run again.
type worker struct {
	m    *Manager
	key  probeKey
	spec *corev1.Probe
	// container is a copy of the pod's spec of it (probes cannot change).
	container corev1.Container
	init      bool
	// initial is the result of a new instance before it is probed.
	initial Result

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	manual chan struct{}
	// Metric series of the probe, by result.
	total    map[string]metrics.Labels
	duration metrics.Labels

	// Owned by the run goroutine.
	containerID string
	last        Result
	// streak is how many probes in a row gave last.
	streak int
	onHold bool
}

func newWorker(m *Manager, key probeKey, pod *corev1.Pod, c *corev1.Container, init bool, spec *corev1.Probe) *worker {
	ctx, cancel := context.WithCancel(context.Background())
	w := &worker{
		m: m, key: key, spec: withDefaults(spec, key.probe), container: *c.DeepCopy(), init: init,
		ctx: ctx, cancel: cancel, done: make(chan struct{}), manual: make(chan struct{}, 1),
		last: Unknown,
	}
	w.total = map[string]metrics.Labels{}
	for _, r := range []string{resultSuccessful, resultFailed, resultUnknown} {
		w.total[r] = metrics.Labels{"probe_type": string(key.probe), "result": r, "container": c.Name,
			"pod": pod.Name, "namespace": pod.Namespace, "pod_uid": string(pod.UID)}
	}
	w.duration = metrics.Labels{"probe_type": string(key.probe), "container": c.Name, "pod": pod.Name, "namespace": pod.Namespace}
	switch key.probe {
	case Readiness:
		w.initial = Failure
	case Liveness:
		w.initial = Success
	case Startup:
		w.initial = Unknown
	}
	return w
}

// withDefaults fills what the API server defaults (a static pod's, a
// test's probe may lack them) and holds the thresholds to what
// validation allows.
func withDefaults(p *corev1.Probe, typ ProbeType) *corev1.Probe {
	q := p.DeepCopy()
	if q.PeriodSeconds <= 0 {
		q.PeriodSeconds = 10
	}
	if q.TimeoutSeconds <= 0 {
		q.TimeoutSeconds = 1
	}
	if q.SuccessThreshold <= 0 || typ != Readiness {
		q.SuccessThreshold = 1
	}
	if q.FailureThreshold <= 0 {
		q.FailureThreshold = 3
	}
	if q.InitialDelaySeconds < 0 {
		q.InitialDelaySeconds = 0
	}
	return q
}

func (w *worker) stop() { w.cancel() }

func (w *worker) exited() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// trigger asks for a probe now.
func (w *worker) trigger() {
	select {
	case w.manual <- struct{}{}:
	default:
	}
}

func (w *worker) loop() {
	defer close(w.done)
	defer func() {
		if w.containerID != "" {
			w.m.results[w.key.probe].remove(w.containerID)
		}
		for _, l := range w.total {
			probeTotal.Delete(l)
		}
		probeDuration.Delete(w.duration)
	}()

	period := time.Duration(w.spec.PeriodSeconds) * time.Second
	// Right after a kubelet (re)start every container's probes would run
	// at once: spread them over a period.
	if w.m.clock.Since(w.m.start) < period {
		select {
		case <-w.ctx.Done():
			return
		case <-w.m.clock.After(w.m.jitter(period)):
		}
	}
	ticker := w.m.clock.NewTicker(period)
	defer func() { ticker.Stop() }()
	for w.probe() {
		select {
		case <-w.ctx.Done():
			return
		case <-ticker.C():
		case <-w.manual:
			// The next periodic probe is a period after this one.
			ticker.Stop()
			ticker = w.m.clock.NewTicker(period)
		}
	}
}

// probe probes once if it is time to, and tells whether to go on.
func (w *worker) probe() bool {
	begin := w.m.clock.Now()
	pod, rs, ok := w.m.entry(w.key.pod)
	if !ok || rs == nil {
		// Not created yet.
		return true
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	c := rs.Find(w.key.container, w.init)
	if c == nil || c.ID == "" {
		return true
	}
	logger := klog.Background().WithValues("probeType", w.key.probe, "pod", klog.KObj(pod), "containerName", w.key.container)

	if c.ID != w.containerID {
		if w.containerID != "" {
			w.m.results[w.key.probe].remove(w.containerID)
		}
		w.containerID = c.ID
		instance := instanceState{name: c.Name, id: c.ID, running: c.State == container.StateRunning, startedAt: c.StartedAt}
		switch {
		case !w.m.beforeRestart(instance):
			w.m.set(w, c.ID, w.initial, false)
		case w.key.probe == Startup && apiStarted(pod, c.Name):
			// Started before the kubelet restarted: it stays started.
			w.m.set(w, c.ID, Success, false)
		}
		// A new instance: probe it afresh.
		w.onHold, w.last, w.streak = false, Unknown, 0
	}
	if w.onHold {
		// Resting until a new instance, unless none will come.
		return c.State == container.StateRunning || willRun(pod, &w.container, w.init, c)
	}

	if c.State != container.StateRunning {
		logger.V(3).Info("Non-running container probed")
		if c.State == container.StateExited {
			// Not while only created: the same instance is about to run,
			// and a liveness Failure would have it killed.
			w.m.set(w, c.ID, Failure, false)
		}
		return willRun(pod, &w.container, w.init, c)
	}

	if pod.DeletionTimestamp != nil && w.key.probe != Readiness {
		// A container being stopped is not restarted: its liveness and
		// startup end quietly.
		logger.V(3).Info("Pod deletion requested, setting probe result to success")
		w.m.set(w, c.ID, Success, false)
		return false
	}

	if int32(w.m.clock.Since(c.StartedAt).Seconds()) < w.spec.InitialDelaySeconds {
		return true
	}

	// The startup probe gates the others; it rests once it succeeded.
	started := w.m.started(pod, instanceState{name: c.Name, id: c.ID, running: true, startedAt: c.StartedAt})
	if started == (w.key.probe == Startup) {
		return true
	}

	ip := pod.Status.PodIP
	if len(rs.IPs) > 0 {
		ip = rs.IPs[0]
	}
	result, err := w.m.runner.run(w.ctx, w.key.probe, w.spec, target{pod: pod, container: &w.container, containerID: c.ID, podIP: ip})
	if err != nil {
		// Could not probe: the result is not counted.
		return true
	}
	elapsed := w.m.clock.Since(begin).Seconds()
	switch result {
	case Success:
		probeTotal.With(w.total[resultSuccessful]).Inc()
		probeDuration.With(w.duration).Observe(elapsed)
	case Failure:
		probeTotal.With(w.total[resultFailed]).Inc()
	default:
		probeTotal.With(w.total[resultUnknown]).Inc()
		probeDuration.With(w.duration).Observe(elapsed)
	}

	if result == w.last {
		w.streak++
	} else {
		w.last, w.streak = result, 1
	}
	if (result == Failure && w.streak < int(w.spec.FailureThreshold)) ||
		(result == Success && w.streak < int(w.spec.SuccessThreshold)) {
		return true
	}
	w.m.set(w, c.ID, result, true)
	if (w.key.probe == Liveness && result == Failure) || w.key.probe == Startup {
		// A failed container is killed and a started one needs no startup
		// probe: rest until a new instance.
		w.onHold, w.streak = true, 0
	}
	return true
}

// willRun tells whether an instance that is not running may run again:
// created and not started yet, or restarted as the restart policy says.
func willRun(pod *corev1.Pod, spec *corev1.Container, init bool, c *container.ContainerStatus) bool {
	if c.State != container.StateExited {
		return true
	}
	if init && sidecar(spec) {
		return true
	}
	policy := pod.Spec.RestartPolicy
	if spec.RestartPolicy != nil {
		policy = corev1.RestartPolicy(*spec.RestartPolicy)
	}
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return c.Exited == nil || c.Exited.ExitCode != 0
	}
	return true
}
