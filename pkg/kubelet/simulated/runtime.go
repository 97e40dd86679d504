// Package simulated runs many nodes in one process, as kwok and kubemark's
// hollow nodes do: each is a pkg/kubelet Node on a runtime that runs
// nothing, and all share one client and one informer of each kind.
package simulated

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
	"github.com/skiff-dev/skiff/pkg/kubelet/status"
)

const (
	runtimeName    = "skiff-simulated"
	runtimeVersion = "1.0.0"
	// Upstream kubelet's container restart back-off: 10s doubling to 5min,
	// forgotten after a container ran twice the maximum.
	backoffInitial = 10 * time.Second
	backoffMax     = 5 * time.Minute
	// retryNetwork: how soon a pod without a free IP tries again.
	retryNetwork = 10 * time.Second
)

// Runtime is one simulated node's runtime: its containers exist only in
// memory and change state at the times the pod's annotations say, worked
// out whenever the pod is synced.
type Runtime struct {
	Clock clock.Clock
	// StartDelay is the time from a pod's first sync to its sandbox.
	StartDelay time.Duration
	// PodCIDRs are the node's pod CIDRs at the time a sandbox is created.
	PodCIDRs func() []netip.Prefix
	// HostIPs are the node's addresses, which hostNetwork pods take.
	HostIPs  []string
	Recorder record.EventRecorder

	mu        sync.Mutex
	pods      map[types.UID]*simPod
	ips       *allocator
	ipsFor    string
	nextIDSeq uint64
}

type simPod struct {
	name      string
	seen      time.Time
	behaviour behaviour
	sandbox   bool
	// hadSandbox: the sandbox was stopped (a finished pod).
	hadSandbox bool
	ips        []netip.Addr
	hostIPs    bool
	init       []*simContainer
	main       []*simContainer
}

type simContainer struct {
	name, image  string
	id           string
	state        container.State
	startedAt    time.Time
	exited       *container.Termination
	last         *container.Termination
	restarts     int32
	waitReason   string
	waitMessage  string
	backoff      time.Duration
	backoffSince time.Time
}

// Version names the runtime in nodeInfo.
func (*Runtime) Version() string { return runtimeName + "://" + runtimeVersion }

// Errors: none, it is always ready.
func (*Runtime) Errors(context.Context) []error { return nil }

func (r *Runtime) now() time.Time {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	return r.Clock.Now()
}

// Usage is what a pod's skiff.dev/sim-usage annotation says it uses; nil
// if the runtime does not have the pod.
func (r *Runtime) Usage(uid types.UID) corev1.ResourceList {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.pods[uid]; p != nil {
		return p.behaviour.usage
	}
	return nil
}

// SyncPod runs the pod as its spec and annotations say: after the start
// delay the sandbox with its IPs, the init containers completed in order,
// the sidecars and containers running; with sim-exit-after the containers
// exit and restart as the restart policy says, after upstream's back-off.
func (r *Runtime) SyncPod(_ context.Context, pod *corev1.Pod) (container.SyncResult, error) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.podLocked(pod, now)
	var next time.Duration
	after := func(d time.Duration) {
		if d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	if start := p.seen.Add(r.StartDelay); now.Before(start) {
		after(start.Sub(now))
		return container.SyncResult{Status: p.status(pod.UID), Requeue: next}, nil
	}
	if !p.sandbox {
		if err := r.createSandbox(pod, p); err != nil {
			klog.V(2).InfoS("Simulated pod has no IP yet", "pod", klog.KObj(pod), "err", err)
			for _, c := range append(append([]*simContainer{}, p.init...), p.main...) {
				c.waitMessage = err.Error()
			}
			after(retryNetwork)
			return container.SyncResult{Status: p.status(pod.UID), Requeue: next}, nil
		}
	}
	// Init containers in order: each completes at once; sidecars keep
	// running.
	for i, c := range p.init {
		spec := &pod.Spec.InitContainers[i]
		sidecar := spec.RestartPolicy != nil && *spec.RestartPolicy == corev1.ContainerRestartPolicyAlways
		switch {
		case c.state == container.StateNone && sidecar:
			r.start(pod, c, now)
		case c.state == container.StateNone:
			r.start(pod, c, now)
			c.exit(now, 0)
		}
	}
	done := 0
	for i, c := range p.main {
		spec := &pod.Spec.Containers[i]
		switch c.state {
		case container.StateNone:
			r.start(pod, c, now)
		case container.StateExited:
			if !status.ShouldRestart(pod, spec, c.exited.ExitCode) {
				done++
				continue
			}
			if wait := c.inBackoff(now); wait > 0 {
				c.waitReason = container.ReasonCrashLoopBackOff
				c.waitMessage = fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", c.backoff, c.name, pod.Name, pod.Namespace, pod.UID)
				after(wait)
				continue
			}
			c.nextBackoff(now)
			c.last, c.exited = c.exited, nil
			c.restarts++
			r.start(pod, c, now)
		}
		if c.state == container.StateRunning && p.behaviour.exitAfter > 0 {
			exitAt := c.startedAt.Add(p.behaviour.exitAfter)
			if now.Before(exitAt) {
				after(exitAt.Sub(now))
				continue
			}
			c.exit(exitAt, p.behaviour.exitCode)
			// Look again at once: it may restart or back off.
			after(time.Millisecond)
			if !status.ShouldRestart(pod, spec, p.behaviour.exitCode) {
				done++
			}
		}
	}
	if done == len(p.main) {
		// Every container finished for good: the sidecars stop and the
		// sandbox goes, as upstream's kubelet ends a finished pod.
		r.stopLocked(p, now)
	}
	return container.SyncResult{Status: p.status(pod.UID), Requeue: next}, nil
}

// KillPod stops the pod's containers at once (a simulated container
// obeys SIGTERM immediately: exit code 0, Completed) and its sandbox.
func (r *Runtime) KillPod(_ context.Context, pod *corev1.Pod, _ time.Duration) (container.SyncResult, error) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pods[pod.UID]
	if p == nil {
		return container.SyncResult{Status: &container.PodStatus{UID: pod.UID}}, nil
	}
	r.stopLocked(p, now)
	return container.SyncResult{Status: p.status(pod.UID)}, nil
}

func (r *Runtime) stopLocked(p *simPod, now time.Time) {
	for _, c := range append(append([]*simContainer{}, p.init...), p.main...) {
		if c.state == container.StateRunning || c.state == container.StateCreated {
			c.exit(now, 0)
		}
		c.waitReason, c.waitMessage = "", ""
	}
	if p.sandbox {
		p.sandbox, p.hadSandbox = false, true
		if !p.hostIPs && r.ips != nil {
			r.ips.release(p.ips)
		}
		p.ips = nil
	}
}

// RemovePod forgets the pod and frees its IPs.
func (r *Runtime) RemovePod(_ context.Context, uid types.UID) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.pods[uid]; p != nil {
		r.stopLocked(p, r.now())
		delete(r.pods, uid)
	}
	return nil
}

// PodStatuses are the pods the runtime has.
func (r *Runtime) PodStatuses(context.Context) ([]*container.PodStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*container.PodStatus, 0, len(r.pods))
	for uid, p := range r.pods {
		out = append(out, p.status(uid))
	}
	return out, nil
}

func (r *Runtime) podLocked(pod *corev1.Pod, now time.Time) *simPod {
	if r.pods == nil {
		r.pods = map[types.UID]*simPod{}
	}
	if p := r.pods[pod.UID]; p != nil {
		return p
	}
	b, problems := parseBehaviour(pod.Annotations)
	if len(problems) > 0 {
		klog.V(2).InfoS("Simulated pod has bad annotations", "pod", klog.KObj(pod), "problems", problems)
		if r.Recorder != nil {
			r.Recorder.Eventf(pod, corev1.EventTypeWarning, ReasonFailedSimulation, "%s", strings.Join(problems, "; "))
		}
	}
	p := &simPod{name: pod.Namespace + "/" + pod.Name, seen: now, behaviour: b}
	if pod.Status.StartTime != nil && pod.Status.StartTime.Time.Before(now) {
		// Started by an agent before this one: no second start delay.
		p.seen = pod.Status.StartTime.Time
	}
	for _, c := range pod.Spec.InitContainers {
		p.init = append(p.init, adopt(c, pod.Status.InitContainerStatuses))
	}
	for _, c := range pod.Spec.Containers {
		p.main = append(p.main, adopt(c, pod.Status.ContainerStatuses))
	}
	r.pods[pod.UID] = p
	return p
}

// adopt takes a container over as the pod's status reports it, so an
// agent restarted finds its containers as a kubelet finds them in its
// runtime: same IDs, start times and restart counts.
func adopt(spec corev1.Container, statuses []corev1.ContainerStatus) *simContainer {
	c := &simContainer{name: spec.Name, image: spec.Image}
	for _, s := range statuses {
		if s.Name != spec.Name || !strings.HasPrefix(s.ContainerID, runtimeName+"://") {
			continue
		}
		c.id, c.restarts = s.ContainerID, s.RestartCount
		if t := s.LastTerminationState.Terminated; t != nil {
			c.last = termination(t)
		}
		switch {
		case s.State.Running != nil:
			c.state, c.startedAt = container.StateRunning, s.State.Running.StartedAt.Time
		case s.State.Terminated != nil:
			c.state, c.startedAt, c.exited = container.StateExited, s.State.Terminated.StartedAt.Time, termination(s.State.Terminated)
		case s.State.Waiting != nil && c.last != nil:
			// Backing off: the last exit is the current one.
			c.state, c.exited, c.last = container.StateExited, c.last, nil
		}
	}
	return c
}

func termination(t *corev1.ContainerStateTerminated) *container.Termination {
	return &container.Termination{ID: t.ContainerID, ExitCode: t.ExitCode, Reason: t.Reason, Message: t.Message,
		StartedAt: t.StartedAt.Time, FinishedAt: t.FinishedAt.Time}
}

// createSandbox gives the pod its IPs: the node's for hostNetwork, else
// from the node's pod CIDRs, keeping those it reported before (the agent
// restarted) when free.
func (r *Runtime) createSandbox(pod *corev1.Pod, p *simPod) error {
	if pod.Spec.HostNetwork {
		for _, ip := range r.HostIPs {
			if a, err := netip.ParseAddr(ip); err == nil {
				p.ips = append(p.ips, a)
			}
		}
		p.hostIPs, p.sandbox = true, true
		return nil
	}
	var cidrs []netip.Prefix
	if r.PodCIDRs != nil {
		cidrs = r.PodCIDRs()
	}
	key := fmt.Sprint(cidrs)
	if r.ips == nil || key != r.ipsFor {
		a, err := newAllocator(cidrs)
		if err != nil {
			return err
		}
		r.ips, r.ipsFor = a, key
		// A pod keeps its address for life (the node got its podCIDR after
		// the pod started): the new range only must not hand it out again.
		for _, other := range r.pods {
			if other.sandbox && !other.hostIPs {
				for _, ip := range other.ips {
					a.reserve(ip)
				}
			}
		}
	}
	var want []netip.Addr
	for _, ip := range pod.Status.PodIPs {
		if a, err := netip.ParseAddr(ip.IP); err == nil {
			want = append(want, a)
		}
	}
	ips, err := r.ips.allocate(want)
	if err != nil {
		return err
	}
	p.ips, p.sandbox = ips, true
	return nil
}

func (r *Runtime) start(pod *corev1.Pod, c *simContainer, now time.Time) {
	r.nextIDSeq++
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%s/%d/%d", pod.UID, c.name, c.restarts, r.nextIDSeq))
	c.id = runtimeName + "://" + hex.EncodeToString(sum[:])
	c.state, c.startedAt = container.StateRunning, now
	c.waitReason, c.waitMessage = "", ""
}

// exit ends the running instance with code at t.
func (c *simContainer) exit(t time.Time, code int32) {
	reason := container.ReasonCompleted
	if code != 0 {
		reason = container.ReasonError
	}
	c.state = container.StateExited
	c.exited = &container.Termination{ID: c.id, ExitCode: code, Reason: reason, StartedAt: c.startedAt, FinishedAt: t}
}

// inBackoff is how long the exited container still waits before its
// restart, as upstream's flowcontrol.Backoff: the back-off last set
// counted from its exit, unless it is older than twice the maximum.
func (c *simContainer) inBackoff(now time.Time) time.Duration {
	if c.backoff == 0 || c.exited.FinishedAt.Sub(c.backoffSince) > 2*backoffMax {
		return 0
	}
	if wait := c.exited.FinishedAt.Add(c.backoff).Sub(now); wait > 0 {
		return wait
	}
	return 0
}

// nextBackoff records a restart: the next exit waits twice as long.
func (c *simContainer) nextBackoff(now time.Time) {
	if c.backoff == 0 || c.exited.FinishedAt.Sub(c.backoffSince) > 2*backoffMax {
		c.backoff = backoffInitial
	} else {
		c.backoff = min(2*c.backoff, backoffMax)
	}
	c.backoffSince = now
}

func (p *simPod) status(uid types.UID) *container.PodStatus {
	s := &container.PodStatus{UID: uid, SandboxReady: p.sandbox, SandboxCreated: p.sandbox || p.hadSandbox}
	for _, ip := range p.ips {
		s.IPs = append(s.IPs, ip.String())
	}
	for _, c := range p.init {
		s.InitContainers = append(s.InitContainers, c.status())
	}
	for _, c := range p.main {
		s.Containers = append(s.Containers, c.status())
	}
	return s
}

func (c *simContainer) status() container.ContainerStatus {
	s := container.ContainerStatus{
		Name: c.name, ID: c.id, Image: c.image, State: c.state, StartedAt: c.startedAt,
		Exited: c.exited, Last: c.last, RestartCount: c.restarts,
		WaitingReason: c.waitReason, WaitingMessage: c.waitMessage,
	}
	if c.id != "" {
		s.ImageID = imageID(c.image)
	}
	return s
}

// imageID is a digest reference for the image, as a runtime reports what
// it pulled.
func imageID(image string) string {
	name := image
	if at := strings.Index(name, "@"); at >= 0 {
		return image
	}
	if slash, colon := strings.LastIndex(name, "/"), strings.LastIndex(name, ":"); colon > slash {
		name = name[:colon]
	}
	sum := sha256.Sum256([]byte(image))
	return name + "@sha256:" + hex.EncodeToString(sum[:])
}
