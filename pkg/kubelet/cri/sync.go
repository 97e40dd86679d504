package cri

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	crierrors "k8s.io/cri-api/pkg/errors"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
	"github.com/skiff-dev/skiff/pkg/kubelet/containerspec"
	"github.com/skiff-dev/skiff/pkg/kubelet/status"
)

// syncer is one SyncPod: the pod, what CRI has of it, and when to look
// again.
type syncer struct {
	r   *Runtime
	ctx context.Context
	pod *corev1.Pod
	st  *podState
	v   *podView
	// next is the soonest requeue asked for; 0: none.
	next time.Duration
	// dirty: the runtime changed, read the pod again for its status.
	dirty bool

	sandboxConfig *runtimeapi.PodSandboxConfig
	mounts        map[string]containerspec.Mount
	mountsErr     error
	mountsDone    bool
	// lastStarted is the id of the container started last.
	lastStarted string
}

func (s *syncer) after(d time.Duration) {
	if d <= 0 {
		d = time.Millisecond
	}
	if s.next == 0 || d < s.next {
		s.next = d
	}
}

func restartable(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

func restartOnFailure(pod *corev1.Pod) bool {
	return pod.Spec.RestartPolicy != corev1.RestartPolicyNever
}

// SyncPod moves the pod towards its spec as upstream's kuberuntime
// SyncPod: a sandbox when none is ready, the init containers one at a
// time (sidecars kept running), then the containers, restarting exited
// ones as the restart policy says after their back-off. It never waits:
// a back-off, a running init container or a hook under way is a Requeue.
func (r *Runtime) SyncPod(ctx context.Context, pod *corev1.Pod) (container.SyncResult, error) {
	if r.cfg.Volumes == nil && len(pod.Spec.Volumes) > 0 {
		return container.SyncResult{}, fmt.Errorf("pod %s has volumes, and this node's runtime has no volume support", klog.KObj(pod))
	}
	st := r.state(pod.UID)
	v, err := r.view(ctx, pod.UID)
	if err != nil {
		return container.SyncResult{}, err
	}
	s := &syncer{r: r, ctx: ctx, pod: pod, st: st, v: v}
	r.mu.Lock()
	killing := st.kill != nil && !st.kill.finished()
	r.mu.Unlock()
	if killing {
		// The pod is being stopped (all its containers finished): let it.
		s.after(r.cfg.PollInterval)
		return s.result(), nil
	}
	if !s.syncSandbox() {
		return s.result(), nil
	}
	// The containers run with the resources the node granted (an
	// in-place resize may be pending); the running ones get them now.
	s.pod = s.syncResize()
	// Before the init containers, as upstream: a debug container may
	// start while an init container fails.
	s.syncEphemeralContainers()
	if s.syncInitContainers() {
		s.syncContainers()
	}
	return s.result(), nil
}

func (s *syncer) result() container.SyncResult {
	if s.dirty {
		if v, err := s.r.view(s.ctx, s.pod.UID); err == nil {
			s.v = v
		} else {
			klog.FromContext(s.ctx).Error(err, "Reading the pod back from the runtime failed", "pod", klog.KObj(s.pod))
			s.after(s.r.cfg.PollInterval)
		}
	}
	ps := s.r.status(s.ctx, s.pod, s.v, s.st)
	if ps.Running() {
		s.after(s.r.cfg.PollInterval)
	}
	return container.SyncResult{Status: ps, Requeue: s.next}
}

// sandboxChanged tells whether the pod needs a new sandbox, with its
// attempt number and the sandbox it replaces, as upstream's
// PodSandboxChanged.
func sandboxChanged(pod *corev1.Pod, v *podView) (bool, uint32, string) {
	sb := v.sandbox()
	if sb == nil {
		return true, 0, ""
	}
	ready := 0
	for _, s := range v.sandboxes {
		if s.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			ready++
		}
	}
	attempt := sb.GetMetadata().GetAttempt() + 1
	switch {
	case ready > 1, sb.State != runtimeapi.PodSandboxState_SANDBOX_READY:
		return true, attempt, sb.Id
	case sb.GetLinux().GetNamespaces().GetOptions().GetNetwork() != networkMode(pod):
		return true, attempt, ""
	case !pod.Spec.HostNetwork && sb.Network != nil && sb.Network.Ip == "":
		return true, attempt, sb.Id
	}
	return false, sb.GetMetadata().GetAttempt(), sb.Id
}

func networkMode(pod *corev1.Pod) runtimeapi.NamespaceMode {
	if pod.Spec.HostNetwork {
		return runtimeapi.NamespaceMode_NODE
	}
	return runtimeapi.NamespaceMode_POD
}

// syncSandbox (re)creates the sandbox when none is ready; false: no
// container is to start now.
func (s *syncer) syncSandbox() bool {
	create, attempt, oldID := sandboxChanged(s.pod, s.v)
	if !create {
		return true
	}
	logger := klog.FromContext(s.ctx).WithValues("pod", klog.KObj(s.pod))
	if !restartOnFailure(s.pod) && attempt != 0 && len(s.v.containers) != 0 {
		// Its containers ran and must not run again: the pod is done.
		s.stopAll()
		return false
	}
	if s.nothingToStart() {
		s.stopAll()
		return false
	}
	if oldID != "" {
		s.r.cfg.Recorder.Eventf(podRef(s.pod), corev1.EventTypeNormal, eventSandboxChanged, "Pod sandbox changed, it will be killed and re-created.")
	}
	s.stopAll()
	// A new sandbox starts the pod over: its init containers run again.
	for i := range s.pod.Spec.InitContainers {
		for _, c := range s.v.instances(s.pod.Spec.InitContainers[i].Name) {
			s.removeContainer(c.Id)
		}
	}
	cfg, err := s.newSandboxConfig(attempt)
	if err == nil {
		err = os.MkdirAll(cfg.LogDirectory, 0o755)
	}
	var id string
	if err == nil {
		logger.V(4).Info("Creating pod sandbox", "attempt", attempt)
		id, err = s.r.runtime.RunPodSandbox(s.ctx, cfg, runtimeHandler(s.pod))
	}
	s.dirty = true
	if err != nil {
		logger.Error(err, "Creating the pod sandbox failed")
		s.r.cfg.Recorder.Eventf(podRef(s.pod), corev1.EventTypeWarning, eventFailedCreatePodSandBox, "Failed to create pod sandbox: %v", err)
		s.after(retryInterval)
		return false
	}
	logger.V(2).Info("Created pod sandbox", "sandbox", id, "attempt", attempt)
	v, err := s.r.view(s.ctx, s.pod.UID)
	if err != nil {
		s.after(s.r.cfg.PollInterval)
		return false
	}
	s.v, s.sandboxConfig = v, cfg
	return true
}

// nothingToStart: with a new sandbox, no container would run (those of an
// OnFailure pod succeeded) and the pod was initialized before.
func (s *syncer) nothingToStart() bool {
	anyCreated := false
	for i := range s.pod.Spec.Containers {
		c := &s.pod.Spec.Containers[i]
		latest := s.v.latest(c.Name)
		if latest != nil {
			anyCreated = true
		}
		if s.pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure && exited(latest) && exitCode(latest) == 0 {
			continue
		}
		return false
	}
	return anyCreated
}

// stopAll stops what still runs of the pod at once (its sandbox is gone
// or is to be replaced) and its sandboxes.
func (s *syncer) stopAll() {
	for _, c := range s.v.containers {
		if exited(c) {
			continue
		}
		s.dirty = true
		if c.State == runtimeapi.ContainerState_CONTAINER_CREATED {
			s.removeContainer(c.Id)
			continue
		}
		if err := s.r.runtime.StopContainer(s.ctx, c.Id, int64(minimumGracePeriod/time.Second)); err != nil && !crierrors.IsNotFound(err) {
			klog.FromContext(s.ctx).Error(err, "Stopping a container failed", "pod", klog.KObj(s.pod), "container", containerName(c))
		}
	}
	for _, sb := range s.v.sandboxes {
		if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			s.dirty = true
			if err := s.r.runtime.StopPodSandbox(s.ctx, sb.Id); err != nil && !crierrors.IsNotFound(err) {
				klog.FromContext(s.ctx).Error(err, "Stopping a pod sandbox failed", "pod", klog.KObj(s.pod), "sandbox", sb.Id)
				s.after(retryInterval)
			}
		}
	}
}

func (s *syncer) removeContainer(id string) {
	s.dirty = true
	if err := s.r.runtime.RemoveContainer(s.ctx, id); err != nil && !crierrors.IsNotFound(err) {
		klog.FromContext(s.ctx).Error(err, "Removing a container failed", "pod", klog.KObj(s.pod), "container", id)
	}
}

func runtimeHandler(pod *corev1.Pod) string {
	// RuntimeClass handlers are not supported: the runtime's default.
	return ""
}

func (s *syncer) newSandboxConfig(attempt uint32) (*runtimeapi.PodSandboxConfig, error) {
	o := containerspec.SandboxOptions{
		NodeName: s.r.cfg.NodeName, Attempt: attempt, ClusterDomain: s.r.cfg.ClusterDomain,
		LogDir: filepath.Join(s.r.cfg.PodLogsDir, fmt.Sprintf("%s_%s_%s", s.pod.Namespace, s.pod.Name, s.pod.UID)),
	}
	if s.r.cfg.CgroupParent != nil {
		o.CgroupParent = s.r.cfg.CgroupParent(s.pod)
	}
	if s.r.cfg.DNS != nil {
		dns, err := s.r.cfg.DNS(s.pod)
		if err != nil {
			return nil, fmt.Errorf("pod DNS config: %w", err)
		}
		o.DNS = dns
	}
	return containerspec.Sandbox(s.pod, o)
}

// sandbox is the current sandbox's id and config.
func (s *syncer) sandbox() (string, *runtimeapi.PodSandboxConfig, error) {
	sb := s.v.sandbox()
	if sb == nil {
		return "", nil, fmt.Errorf("pod %s has no sandbox", klog.KObj(s.pod))
	}
	if s.sandboxConfig == nil {
		cfg, err := s.newSandboxConfig(sb.GetMetadata().GetAttempt())
		if err != nil {
			return "", nil, err
		}
		s.sandboxConfig = cfg
	}
	return sb.Id, s.sandboxConfig, nil
}

// syncInitContainers runs the init containers in order, one at a time,
// keeping the sidecars running; true: the pod is initialized.
func (s *syncer) syncInitContainers() bool {
	initialized := false
	// A container of the current sandbox means the init containers
	// completed (their instances may have been removed since).
	for i := range s.pod.Spec.Containers {
		if s.v.active(s.pod.Spec.Containers[i].Name) != nil {
			initialized = true
		}
	}
	for i := range s.pod.Spec.InitContainers {
		c := &s.pod.Spec.InitContainers[i]
		cur := s.v.active(c.Name)
		if restartable(c) {
			if running(cur) {
				s.checkHealth(c, cur)
				if s.hookPending(cur.Id) && !initialized {
					return false
				}
				continue
			}
			// Not there, exited or never started: (re)start it.
			started := s.start(c, cur)
			if !initialized && (!started || s.hookPending(s.lastStarted)) {
				return false
			}
			continue
		}
		if initialized {
			continue
		}
		switch {
		case cur == nil:
			s.start(c, nil)
			return false
		case running(cur):
			return false
		case exited(cur) && exitCode(cur) == 0:
			continue
		case exited(cur):
			if !restartOnFailure(s.pod) {
				// The pod failed: what still runs stops.
				s.killPod()
				return false
			}
			s.start(c, cur)
			return false
		default:
			// Created but never started: start a new one.
			s.start(c, cur)
			return false
		}
	}
	return true
}

// syncEphemeralContainers starts the ephemeral containers that never
// ran; they are never restarted.
func (s *syncer) syncEphemeralContainers() {
	for i := range s.pod.Spec.EphemeralContainers {
		c := ephemeral(&s.pod.Spec.EphemeralContainers[i])
		if s.v.latest(c.Name) == nil {
			s.start(c, nil)
		}
	}
}

// syncContainers starts the containers not running that are to run and
// stops the pod once all finished for good.
func (s *syncer) syncContainers() {
	live := 0
	for i := range s.pod.Spec.Containers {
		c := &s.pod.Spec.Containers[i]
		latest := s.v.latest(c.Name)
		switch {
		case running(latest):
			live++
			s.checkHealth(c, latest)
		case latest == nil || !exited(latest):
			live++
			s.start(c, latest)
		case status.ShouldRestart(s.pod, c, exitCode(latest)):
			live++
			s.start(c, latest)
		}
	}
	if live == 0 && len(s.pod.Spec.Containers) > 0 {
		// All finished for good: the sidecars stop, then the sandbox.
		s.killPod()
	}
}

// killPod stops the pod in the background with its termination grace
// period.
func (s *syncer) killPod() {
	s.r.startKill(s.pod, s.v, s.st, terminationGrace(s.pod))
	s.after(s.r.cfg.PollInterval)
}

func (s *syncer) hookPending(id string) bool {
	if id == "" {
		return false
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	_, ok := s.st.hooks[id]
	return ok
}

// checkHealth kills a running container its probes found unhealthy, in
// the background; it restarts (or not) as its policy says once it exited.
func (s *syncer) checkHealth(c *corev1.Container, cur *runtimeapi.ContainerStatus) {
	if s.hookPending(cur.Id) {
		return
	}
	msg, grace, ok := s.r.toKill(s.pod, c, cur.Id)
	if !ok {
		return
	}
	s.r.killOne(s.pod, c, cur.Id, msg, grace, s.r.podIPs(s.pod, s.v), s.st)
	s.after(s.r.cfg.PollInterval)
}

// toKill asks the prober whether the running container is to be killed,
// and with which message and grace period.
func (r *Runtime) toKill(pod *corev1.Pod, c *corev1.Container, id string) (string, time.Duration, bool) {
	if r.cfg.ContainerToKill != nil {
		return r.cfg.ContainerToKill(pod, c.Name, fullID(id))
	}
	if r.cfg.Unhealthy == nil {
		return "", 0, false
	}
	msg := r.cfg.Unhealthy(pod, c.Name, fullID(id))
	if msg == "" {
		return "", 0, false
	}
	// Upstream's message says a regular container will be restarted; a
	// sidecar's never does (it always is).
	if !isInitContainer(pod, c.Name) {
		restart := restartOnFailure(pod)
		if c.RestartPolicy != nil {
			restart = *c.RestartPolicy != corev1.ContainerRestartPolicyNever
		}
		if restart {
			msg += ", will be restarted"
		}
	}
	return msg, terminationGrace(pod), true
}

func isInitContainer(pod *corev1.Pod, name string) bool {
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return true
		}
	}
	return false
}
