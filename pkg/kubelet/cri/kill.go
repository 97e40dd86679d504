package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	crierrors "k8s.io/cri-api/pkg/errors"
	"k8s.io/klog/v2"
	kubelettypes "k8s.io/kubelet/pkg/types"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
	"github.com/skiff-dev/skiff/pkg/kubelet/containerspec"
)

// KillPod stops the pod's containers within gracePeriod — preStop hooks
// first, the containers after (sidecars after the others, the last
// started first) with what is left of it, at least 2s each as upstream —
// then its sandbox. The kill runs in the background: while it does, the
// result is running with a Requeue. A shorter gracePeriod than the one
// under way hurries it.
func (r *Runtime) KillPod(ctx context.Context, pod *corev1.Pod, gracePeriod time.Duration) (container.SyncResult, error) {
	st := r.state(pod.UID)
	v, err := r.view(ctx, pod.UID)
	if err != nil {
		return container.SyncResult{}, err
	}
	if len(v.sandboxes) == 0 && len(v.containers) == 0 {
		// Never had it: nothing to report.
		return container.SyncResult{Status: &container.PodStatus{UID: pod.UID}}, nil
	}
	r.mu.Lock()
	k := st.kill
	r.mu.Unlock()
	switch {
	case k != nil && !k.finished():
		if deadline := r.clock.Now().Add(gracePeriod); deadline.Before(k.deadline) {
			r.startKill(pod, v, st, gracePeriod)
		}
		return r.killResult(ctx, pod, v, st, true), nil
	case hasLive(v):
		r.startKill(pod, v, st, gracePeriod)
		return r.killResult(ctx, pod, v, st, true), nil
	}
	// Nothing runs: the sandbox goes.
	stopped := false
	for _, sb := range v.sandboxes {
		if sb.State != runtimeapi.PodSandboxState_SANDBOX_READY {
			continue
		}
		stopped = true
		if err := r.runtime.StopPodSandbox(ctx, sb.Id); err != nil && !crierrors.IsNotFound(err) {
			return container.SyncResult{}, fmt.Errorf("stopping sandbox %s of pod %s: %w", sb.Id, klog.KObj(pod), err)
		}
	}
	if stopped {
		if v, err = r.view(ctx, pod.UID); err != nil {
			return container.SyncResult{}, err
		}
	}
	return r.killResult(ctx, pod, v, st, false), nil
}

func (r *Runtime) killResult(ctx context.Context, pod *corev1.Pod, v *podView, st *podState, underWay bool) container.SyncResult {
	s := r.status(ctx, pod, v, st)
	// Stopped for good: nothing waits to restart.
	for _, list := range [][]container.ContainerStatus{s.InitContainers, s.Containers, s.EphemeralContainers} {
		for i := range list {
			list[i].WaitingReason, list[i].WaitingMessage = "", ""
		}
	}
	res := container.SyncResult{Status: s}
	if underWay || s.Running() {
		res.Requeue = r.cfg.PollInterval
	}
	return res
}

func hasLive(v *podView) bool {
	for _, c := range v.containers {
		if !exited(c) {
			return true
		}
	}
	return false
}

// startKill starts stopping the pod's live containers and its sandbox in
// the background.
func (r *Runtime) startKill(pod *corev1.Pod, v *podView, st *podState, grace time.Duration) {
	ctx, cancel := context.WithCancel(r.bg)
	k := &killRun{deadline: r.clock.Now().Add(grace), cancel: cancel, done: make(chan struct{})}
	r.mu.Lock()
	st.kill = k
	for _, h := range st.hooks {
		h.cancel()
	}
	r.mu.Unlock()
	live := []*runtimeapi.ContainerStatus{}
	for _, c := range v.containers {
		if !exited(c) {
			live = append(live, c)
		}
	}
	ips := r.podIPs(pod, v)
	go func() {
		defer close(k.done)
		defer cancel()
		r.killContainers(ctx, pod, live, k.deadline, ips)
		fresh, err := r.view(ctx, pod.UID)
		if err != nil {
			if ctx.Err() == nil {
				klog.ErrorS(err, "Reading the pod back after stopping its containers failed", "pod", klog.KObj(pod))
			}
			return
		}
		for _, sb := range fresh.sandboxes {
			if sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
				if err := r.runtime.StopPodSandbox(ctx, sb.Id); err != nil && !crierrors.IsNotFound(err) && ctx.Err() == nil {
					klog.ErrorS(err, "Stopping the pod sandbox failed", "pod", klog.KObj(pod), "sandbox", sb.Id)
				}
			}
		}
	}()
}

// killContainers stops the containers at once, but a sidecar only after
// the regular containers and the sidecars started after it stopped (or
// the deadline passed), as upstream's termination ordering.
func (r *Runtime) killContainers(ctx context.Context, pod *corev1.Pod, live []*runtimeapi.ContainerStatus, deadline time.Time, ips []string) {
	done := map[string]chan struct{}{}
	for _, c := range live {
		done[c.Id] = make(chan struct{})
	}
	sidecarIndex := map[string]int{}
	for i := range pod.Spec.InitContainers {
		if restartable(&pod.Spec.InitContainers[i]) {
			sidecarIndex[pod.Spec.InitContainers[i].Name] = i
		}
	}
	var wg sync.WaitGroup
	for _, c := range live {
		name := containerName(c)
		var before []chan struct{}
		if idx, ok := sidecarIndex[name]; ok {
			for _, o := range live {
				oi, sidecar := sidecarIndex[containerName(o)]
				if !sidecar || oi > idx {
					if o.Id != c.Id {
						before = append(before, done[o.Id])
					}
				}
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[c.Id])
			if c.State == runtimeapi.ContainerState_CONTAINER_CREATED {
				// Never started: nothing to stop, it goes.
				if err := r.runtime.RemoveContainer(ctx, c.Id); err != nil && !crierrors.IsNotFound(err) {
					klog.ErrorS(err, "Removing a created container failed", "pod", klog.KObj(pod), "container", name)
				}
				return
			}
			spec := specOf(pod, name, c)
			waitTurn := func() {
				timer := time.NewTimer(time.Until(deadline))
				defer timer.Stop()
				for _, ch := range before {
					select {
					case <-ch:
					case <-timer.C:
						return
					case <-ctx.Done():
						return
					}
				}
			}
			r.killContainer(ctx, pod, spec, c.Id, "", deadline, ips, waitTurn)
		}()
	}
	wg.Wait()
}

// specOf is the container's spec, or as much of it as its annotations
// keep (a container no longer in the spec).
func specOf(pod *corev1.Pod, name string, c *runtimeapi.ContainerStatus) *corev1.Container {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	for i := range pod.Spec.EphemeralContainers {
		if pod.Spec.EphemeralContainers[i].Name == name {
			return ephemeral(&pod.Spec.EphemeralContainers[i])
		}
	}
	spec := &corev1.Container{Name: name}
	if raw := c.Annotations[containerspec.ContainerPreStopHandlerAnnotation]; raw != "" {
		var h corev1.LifecycleHandler
		if err := json.Unmarshal([]byte(raw), &h); err == nil {
			spec.Lifecycle = &corev1.Lifecycle{PreStop: &h}
		}
	}
	if raw := c.Annotations[containerspec.ContainerPortsAnnotation]; raw != "" {
		_ = json.Unmarshal([]byte(raw), &spec.Ports)
	}
	return spec
}

// killContainer stops one container: its preStop hook within the
// deadline, then (after waitTurn, if any) StopContainer with what is left,
// at least minimumGracePeriod.
func (r *Runtime) killContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id, message string, deadline time.Time, ips []string, waitTurn func()) {
	if message == "" {
		message = fmt.Sprintf("Stopping container %s", c.Name)
	}
	r.containerEvent(pod, c, id, corev1.EventTypeNormal, eventKilling, "%v", message)
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && time.Until(deadline) > 0 {
		hookCtx, cancel := context.WithDeadline(ctx, deadline)
		msg, err := r.runHook(hookCtx, pod, c, id, c.Lifecycle.PreStop, ips)
		cancel()
		if err != nil {
			klog.ErrorS(err, "PreStop hook failed", "pod", klog.KObj(pod), "container", c.Name, "message", msg)
			r.containerEvent(pod, c, id, corev1.EventTypeWarning, eventFailedPreStopHook, "PreStopHook failed")
		}
	}
	if waitTurn != nil {
		waitTurn()
	}
	timeout := time.Until(deadline)
	if timeout < minimumGracePeriod {
		timeout = minimumGracePeriod
	}
	klog.V(2).InfoS("Killing container with a grace period", "pod", klog.KObj(pod), "container", c.Name, "id", id, "gracePeriod", timeout)
	// Whole seconds rounded up: the moments since the deadline was set must
	// not cut a second off the grace period (a 3 s one ran 2 s).
	if err := r.runtime.StopContainer(ctx, id, int64((timeout+time.Second-1)/time.Second)); err != nil && !crierrors.IsNotFound(err) && ctx.Err() == nil {
		klog.ErrorS(err, "Stopping the container failed", "pod", klog.KObj(pod), "container", c.Name, "id", id)
	}
}

// RemovePod removes the pod's sandboxes and containers from the runtime,
// tears its volumes down and removes its dirs.
func (r *Runtime) RemovePod(ctx context.Context, uid types.UID) error {
	r.forget(uid)
	v, err := r.view(ctx, uid)
	if err != nil {
		return err
	}
	var logDirs []string
	for _, sb := range v.sandboxes {
		if err := r.runtime.StopPodSandbox(ctx, sb.Id); err != nil && !crierrors.IsNotFound(err) {
			return fmt.Errorf("stopping sandbox %s of pod %s: %w", sb.Id, uid, err)
		}
		if err := r.runtime.RemovePodSandbox(ctx, sb.Id); err != nil && !crierrors.IsNotFound(err) {
			return fmt.Errorf("removing sandbox %s of pod %s: %w", sb.Id, uid, err)
		}
		if m := sb.GetMetadata(); m != nil {
			logDirs = append(logDirs, filepath.Join(r.cfg.PodLogsDir, fmt.Sprintf("%s_%s_%s", m.Namespace, m.Name, m.Uid)))
		}
	}
	for _, c := range v.containers {
		if err := r.runtime.RemoveContainer(ctx, c.Id); err != nil && !crierrors.IsNotFound(err) {
			return fmt.Errorf("removing container %s of pod %s: %w", c.Id, uid, err)
		}
	}
	if r.cfg.Volumes != nil {
		if err := r.cfg.Volumes.TearDown(ctx, uid); err != nil {
			return fmt.Errorf("tearing down the volumes of pod %s: %w", uid, err)
		}
	}
	for _, dir := range logDirs {
		_ = os.RemoveAll(dir)
	}
	// The kubelet's files of the pod; volumes are the volume manager's
	// and go with TearDown, so the dir is removed only once empty.
	dir := r.podDir(uid)
	_ = os.RemoveAll(filepath.Join(dir, "containers"))
	_ = os.Remove(filepath.Join(dir, "etc-hosts"))
	_ = os.Remove(filepath.Join(dir, "volumes"))
	_ = os.Remove(dir)
	return nil
}

// PodStatuses are the pods the runtime has (by their io.kubernetes.pod.uid
// label), their containers by name.
func (r *Runtime) PodStatuses(ctx context.Context) ([]*container.PodStatus, error) {
	sandboxes, err := r.runtime.ListPodSandbox(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("listing sandboxes: %w", err)
	}
	containers, err := r.runtime.ListContainers(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	pods := map[types.UID]*container.PodStatus{}
	var order []types.UID
	get := func(labels map[string]string) *container.PodStatus {
		uid := types.UID(labels[kubelettypes.KubernetesPodUIDLabel])
		if uid == "" {
			return nil
		}
		p := pods[uid]
		if p == nil {
			p = &container.PodStatus{UID: uid}
			pods[uid] = p
			order = append(order, uid)
		}
		return p
	}
	for _, sb := range sandboxes {
		if p := get(sb.Labels); p != nil {
			p.SandboxCreated = true
			p.SandboxReady = p.SandboxReady || sb.State == runtimeapi.PodSandboxState_SANDBOX_READY
		}
	}
	latest := map[string]*runtimeapi.Container{}
	for _, c := range containers {
		uid := c.Labels[kubelettypes.KubernetesPodUIDLabel]
		if uid == "" {
			continue
		}
		key := uid + "/" + c.Labels[kubelettypes.KubernetesContainerNameLabel]
		if l := latest[key]; l == nil || c.CreatedAt > l.CreatedAt {
			latest[key] = c
		}
	}
	for _, c := range latest {
		p := get(c.Labels)
		cs := container.ContainerStatus{
			Name: c.Labels[kubelettypes.KubernetesContainerNameLabel], ID: fullID(c.Id),
			Image: c.GetImage().GetImage(), ImageID: c.ImageRef,
		}
		if n, err := parseRestartCount(c.Annotations); err == nil {
			cs.RestartCount = int32(n)
		}
		switch c.State {
		case runtimeapi.ContainerState_CONTAINER_RUNNING:
			cs.State = container.StateRunning
		case runtimeapi.ContainerState_CONTAINER_CREATED:
			cs.State = container.StateCreated
		default:
			cs.State = container.StateExited
		}
		p.Containers = append(p.Containers, cs)
	}
	out := make([]*container.PodStatus, 0, len(order))
	for _, uid := range order {
		out = append(out, pods[uid])
	}
	return out, nil
}

func parseRestartCount(a map[string]string) (int, error) {
	var n int
	_, err := fmt.Sscan(a[containerspec.ContainerRestartCountAnnotation], &n)
	return n, err
}
