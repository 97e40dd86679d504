package prober

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
	"github.com/skiff-dev/skiff/pkg/kubelet/prober/probe"
)

// restartGrace: a container started this long before the Manager is
// taken to have run before a kubelet restart, as upstream.
const restartGrace = 10 * time.Second

// minimumGracePeriod is upstream's grace period of a kill when the pod
// names none.
const minimumGracePeriod = 2 * time.Second

// Options configure a Manager.
type Options struct {
	// Execer runs exec probes; nil: exec probes error.
	Execer Execer
	// Recorder gets the Unhealthy and ProbeWarning events; nil: none.
	Recorder record.EventRecorder
	// Clock times the probes; nil: the real clock.
	Clock clock.WithTicker
	// OnUpdate is told every result that changed, from the probing
	// goroutine: it must not block (queue the pod). A readiness change or
	// a startup success asks for the pod's status to be written again
	// (Ready/Started); an Update with Kill asks for the container to be
	// killed and restarted.
	OnUpdate func(Update)
}

// Manager probes the containers of one node's pods as upstream kubelet's
// prober manager: one goroutine per probe of each container, started by
// AddPod, and results the kubelet reads when it builds a pod's status
// (Ready, Started, UpdatePodStatus) and syncs its containers
// (ContainerToKill).
//
// It learns each container's instance (ID, state, start time) and the pod
// IP from SetRuntimeStatus, which the kubelet calls with every runtime
// status it gets of the pod.
type Manager struct {
	runner   *runner
	clock    clock.WithTicker
	onUpdate func(Update)
	// start is when the Manager began: containers started before it are
	// from before a kubelet restart.
	start  time.Time
	jitter func(period time.Duration) time.Duration

	// results by probe type; the map itself is never written after New.
	results map[ProbeType]*results

	mu      sync.RWMutex
	pods    map[types.UID]*podEntry
	workers map[probeKey]*worker
}

type podEntry struct {
	pod *corev1.Pod
	rs  *container.PodStatus
}

type probeKey struct {
	pod       types.UID
	container string
	probe     ProbeType
}

// NewManager is a Manager probing with o. Its metrics are registered in
// legacyregistry.
func NewManager(o Options) *Manager {
	registerMetrics()
	clk := o.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Manager{
		runner:   &runner{http: probe.NewHTTP(), execer: o.Execer, recorder: o.Recorder},
		clock:    clk,
		onUpdate: o.OnUpdate,
		start:    clk.Now(),
		jitter: func(period time.Duration) time.Duration {
			return time.Duration(rand.Int64N(int64(period)))
		},
		results: map[ProbeType]*results{Liveness: newResults(), Readiness: newResults(), Startup: newResults()},
		pods:    map[types.UID]*podEntry{},
		workers: map[probeKey]*worker{},
	}
}

// AddPod starts probing the pod's containers and sidecars (init
// containers with restartPolicy Always) that have probes. It may be called
// again with each new version of the pod: probes already running keep
// running and see the new pod (its deletion, for instance); probes cannot
// change in a pod's life.
func (m *Manager) AddPod(pod *corev1.Pod) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.pods[pod.UID]
	if e == nil {
		e = &podEntry{}
		m.pods[pod.UID] = e
	}
	e.pod = pod
	add := func(c *corev1.Container, init bool) {
		for _, p := range []struct {
			typ  ProbeType
			spec *corev1.Probe
		}{{Startup, c.StartupProbe}, {Readiness, c.ReadinessProbe}, {Liveness, c.LivenessProbe}} {
			if p.spec == nil {
				continue
			}
			key := probeKey{pod.UID, c.Name, p.typ}
			if _, ok := m.workers[key]; ok {
				continue
			}
			w := newWorker(m, key, pod, c, init, p.spec)
			m.workers[key] = w
			go w.loop()
		}
	}
	for i := range pod.Spec.Containers {
		add(&pod.Spec.Containers[i], false)
	}
	for i := range pod.Spec.InitContainers {
		if sidecar(&pod.Spec.InitContainers[i]) {
			add(&pod.Spec.InitContainers[i], true)
		}
	}
}

// SetRuntimeStatus is the pod's latest status from its runtime: the
// instances to probe and the pod's IP. Call it with every status the
// runtime reports, before building the API status from it.
func (m *Manager) SetRuntimeStatus(rs *container.PodStatus) {
	if rs == nil {
		return
	}
	c := *rs
	c.IPs = append([]string(nil), rs.IPs...)
	c.Containers = append([]container.ContainerStatus(nil), rs.Containers...)
	c.InitContainers = append([]container.ContainerStatus(nil), rs.InitContainers...)
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.pods[rs.UID]
	if e == nil {
		// Not added (no probes, or not yet): kept for Ready and Started.
		e = &podEntry{}
		m.pods[rs.UID] = e
	}
	e.rs = &c
}

// StopLivenessAndStartup stops a terminating pod's liveness and startup
// probes (a container being stopped is not restarted); readiness goes on
// until the containers stop.
func (m *Manager) StopLivenessAndStartup(uid types.UID) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for key, w := range m.workers {
		if key.pod == uid && key.probe != Readiness {
			w.stop()
		}
	}
}

// RemovePod stops the pod's probes and forgets it and its results.
func (m *Manager) RemovePod(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, w := range m.workers {
		if key.pod == uid {
			w.stop()
			delete(m.workers, key)
		}
	}
	delete(m.pods, uid)
}

// Stop stops every probe (the kubelet's end).
func (m *Manager) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, w := range m.workers {
		w.stop()
		delete(m.workers, key)
	}
	m.pods = map[types.UID]*podEntry{}
}

// Started tells whether the pod's running container name has started: its
// startup probe succeeded, or it has none. For the API's
// containerStatuses[].started.
func (m *Manager) Started(pod *corev1.Pod, name string) bool {
	c, ok := m.instance(pod, name)
	return ok && m.started(pod, c)
}

// Ready tells whether the pod's running container name is ready: started,
// and its readiness probe succeeded (or it has none). Its signature is
// status.Options.Ready's.
func (m *Manager) Ready(pod *corev1.Pod, name string) bool {
	c, ok := m.instance(pod, name)
	return ok && m.ready(pod, c)
}

// UpdatePodStatus sets Started and Ready of s's container statuses (and
// of its sidecars') from the probes, as upstream's prober manager does,
// reading the instances from s itself. Init containers that are not
// sidecars are ready once they exited 0. Conditions are not touched.
func (m *Manager) UpdatePodStatus(pod *corev1.Pod, s *corev1.PodStatus) {
	for i := range s.ContainerStatuses {
		cs := &s.ContainerStatuses[i]
		c := instanceOf(cs)
		started := m.started(pod, c)
		cs.Started = &started
		if started {
			cs.Ready = m.ready(pod, c)
		}
	}
	for i := range s.InitContainerStatuses {
		cs := &s.InitContainerStatuses[i]
		c := instanceOf(cs)
		started := m.started(pod, c)
		cs.Started = &started
		spec := findContainer(pod.Spec.InitContainers, cs.Name)
		if spec == nil {
			continue
		}
		if !sidecar(spec) {
			if cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0 {
				cs.Ready = true
			}
			continue
		}
		if started {
			cs.Ready = m.ready(pod, c)
		}
	}
}

// ContainerToKill tells whether the pod's running container instance
// containerID failed its liveness or startup probe, and so is to be
// killed. The runtime asks it of each running container when it syncs the
// pod (an instance that is not running has a Failure too, as upstream's).
func (m *Manager) ContainerToKill(pod *corev1.Pod, name, containerID string) (*Kill, bool) {
	if containerID == "" {
		return nil, false
	}
	for _, typ := range []ProbeType{Liveness, Startup} {
		if r, ok := m.results[typ].get(containerID); ok && r == Failure {
			return killFor(pod, name, containerID, typ), true
		}
	}
	return nil, false
}

// Unhealthy is ContainerToKill's Cause, "" for a healthy instance: the
// signature of cri.Config.Unhealthy.
func (m *Manager) Unhealthy(pod *corev1.Pod, name, containerID string) string {
	if k, ok := m.ContainerToKill(pod, name, containerID); ok {
		return k.Cause
	}
	return ""
}

// killFor is upstream's kill of a container that failed its typ probe.
func killFor(pod *corev1.Pod, name, containerID string, typ ProbeType) *Kill {
	k := &Kill{ContainerID: containerID, Probe: typ}
	what := "liveness"
	if typ == Startup {
		what = "startup"
	}
	spec := findContainer(pod.Spec.Containers, name)
	if spec == nil {
		// A sidecar: restarted always.
		spec = findContainer(pod.Spec.InitContainers, name)
		k.Restart = true
		k.Cause = fmt.Sprintf("Init container %s failed %s probe", name, what)
		k.Message = k.Cause
	} else {
		k.Restart = pod.Spec.RestartPolicy != corev1.RestartPolicyNever
		if spec.RestartPolicy != nil {
			k.Restart = *spec.RestartPolicy != corev1.ContainerRestartPolicyNever
		}
		k.Cause = fmt.Sprintf("Container %s failed %s probe", name, what)
		k.Message = k.Cause
		if k.Restart {
			k.Message += ", will be restarted"
		}
	}
	k.GracePeriod = minimumGracePeriod
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		k.GracePeriod = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		k.GracePeriod = time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
		if spec != nil {
			p := spec.LivenessProbe
			if typ == Startup {
				p = spec.StartupProbe
			}
			if p != nil && p.TerminationGracePeriodSeconds != nil {
				k.GracePeriod = time.Duration(*p.TerminationGracePeriodSeconds) * time.Second
			}
		}
	}
	return k
}

// instanceState is what readiness and startup depend on of a container.
type instanceState struct {
	name      string
	id        string
	running   bool
	startedAt time.Time
}

func instanceOf(cs *corev1.ContainerStatus) instanceState {
	c := instanceState{name: cs.Name, id: cs.ContainerID, running: cs.State.Running != nil}
	if c.running {
		c.startedAt = cs.State.Running.StartedAt.Time
	}
	return c
}

// instance is the container's current instance: from the runtime status,
// else from the pod's API status.
func (m *Manager) instance(pod *corev1.Pod, name string) (instanceState, bool) {
	m.mu.RLock()
	e := m.pods[pod.UID]
	m.mu.RUnlock()
	if e != nil && e.rs != nil {
		c := e.rs.Find(name, false)
		if c == nil {
			c = e.rs.Find(name, true)
		}
		if c == nil {
			return instanceState{}, false
		}
		return instanceState{name: name, id: c.ID, running: c.State == container.StateRunning, startedAt: c.StartedAt}, true
	}
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return instanceOf(&list[i]), true
			}
		}
	}
	return instanceState{}, false
}

// beforeRestart: the instance ran before this kubelet started.
func (m *Manager) beforeRestart(c instanceState) bool {
	return c.running && !c.startedAt.IsZero() && c.startedAt.Before(m.start.Add(-restartGrace))
}

func (m *Manager) started(pod *corev1.Pod, c instanceState) bool {
	if !c.running {
		return false
	}
	if r, ok := m.results[Startup].get(c.id); ok {
		return r == Success
	}
	if m.beforeRestart(c) && apiStarted(pod, c.name) {
		// Started before a kubelet restart; its probe is not run again.
		return true
	}
	_, probed := m.worker(pod.UID, c.name, Startup)
	return !probed
}

func (m *Manager) ready(pod *corev1.Pod, c instanceState) bool {
	if !c.running || !m.started(pod, c) {
		return false
	}
	r, found := m.results[Readiness].get(c.id)
	if found && r == Success {
		return true
	}
	w, probed := m.worker(pod.UID, c.name, Readiness)
	if !probed {
		return true
	}
	// Not ready yet: probe now rather than a period from now (upstream's
	// manual trigger).
	w.trigger()
	if m.beforeRestart(c) && !found {
		// Until its first probe after a kubelet restart, a container is
		// as ready as its pod was.
		return podReady(pod)
	}
	return false
}

// worker is the container's probe of type typ while it runs: a probe
// that stopped (its container will not run again, its pod is being
// deleted) counts as none, as upstream's.
func (m *Manager) worker(uid types.UID, name string, typ ProbeType) (*worker, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	w, ok := m.workers[probeKey{uid, name, typ}]
	if !ok || w.exited() {
		return nil, false
	}
	return w, true
}

// entry is the pod and its runtime status, as last given.
func (m *Manager) entry(uid types.UID) (*corev1.Pod, *container.PodStatus, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e := m.pods[uid]
	if e == nil || e.pod == nil {
		return nil, nil, false
	}
	return e.pod, e.rs, true
}

// set records a worker's result and tells the kubelet if it changed;
// probed: the result is a running instance's probes' (a failure kills it).
func (m *Manager) set(w *worker, containerID string, r Result, probed bool) {
	if !m.results[w.key.probe].set(containerID, r) {
		return
	}
	klog.V(3).InfoS("Probe result changed", "probeType", w.key.probe, "podUID", w.key.pod, "containerName", w.key.container, "containerID", containerID, "result", r)
	if m.onUpdate == nil {
		return
	}
	u := Update{PodUID: w.key.pod, ContainerName: w.key.container, ContainerID: containerID, Probe: w.key.probe, Result: r}
	if probed && r == Failure && w.key.probe != Readiness {
		if pod, _, ok := m.entry(w.key.pod); ok {
			u.Kill = killFor(pod, w.key.container, containerID, w.key.probe)
		}
	}
	m.onUpdate(u)
}

func sidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

func findContainer(list []corev1.Container, name string) *corev1.Container {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

func apiStarted(pod *corev1.Pod, name string) bool {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses} {
		for _, cs := range list {
			if cs.Name == name {
				return cs.Started != nil && *cs.Started
			}
		}
	}
	return false
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
