package cri

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	crierrors "k8s.io/cri-api/pkg/errors"
	kubelettypes "k8s.io/kubelet/pkg/types"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
	"github.com/skiff-dev/skiff/pkg/kubelet/containerspec"
	"github.com/skiff-dev/skiff/pkg/kubelet/status"
)

// runtimeName prefixes container IDs as upstream's kubelet does.
const runtimeName = "containerd"

// podView is one pod as CRI has it: its sandboxes and containers, the
// newest first.
type podView struct {
	uid        types.UID
	sandboxes  []*runtimeapi.PodSandboxStatus
	containers []*runtimeapi.ContainerStatus
	// sandboxOf are the containers' sandbox ids, by container id.
	sandboxOf map[string]string
}

// view reads the pod from CRI.
func (r *Runtime) view(ctx context.Context, uid types.UID) (*podView, error) {
	selector := map[string]string{kubelettypes.KubernetesPodUIDLabel: string(uid)}
	v := &podView{uid: uid, sandboxOf: map[string]string{}}
	sandboxes, err := r.runtime.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("listing sandboxes of pod %s: %w", uid, err)
	}
	for _, s := range sandboxes {
		st, err := r.runtime.PodSandboxStatus(ctx, s.Id, false)
		if crierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("status of sandbox %s: %w", s.Id, err)
		}
		if st.GetStatus() != nil {
			v.sandboxes = append(v.sandboxes, st.Status)
		}
	}
	sort.Slice(v.sandboxes, func(i, j int) bool { return v.sandboxes[i].CreatedAt > v.sandboxes[j].CreatedAt })
	containers, err := r.runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("listing containers of pod %s: %w", uid, err)
	}
	for _, c := range containers {
		v.sandboxOf[c.Id] = c.PodSandboxId
		st, err := r.runtime.ContainerStatus(ctx, c.Id, false)
		if crierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("status of container %s: %w", c.Id, err)
		}
		if st.GetStatus() != nil {
			v.containers = append(v.containers, st.Status)
		}
	}
	sort.Slice(v.containers, func(i, j int) bool { return v.containers[i].CreatedAt > v.containers[j].CreatedAt })
	return v, nil
}

// sandbox is the newest sandbox, nil if none.
func (v *podView) sandbox() *runtimeapi.PodSandboxStatus {
	if len(v.sandboxes) == 0 {
		return nil
	}
	return v.sandboxes[0]
}

func (v *podView) sandboxReady() bool {
	s := v.sandbox()
	return s != nil && s.State == runtimeapi.PodSandboxState_SANDBOX_READY
}

// ips of the newest sandbox, the primary first.
func (v *podView) ips() []string {
	s := v.sandbox()
	if s == nil || s.Network == nil || s.Network.Ip == "" {
		return nil
	}
	ips := []string{s.Network.Ip}
	for _, ip := range s.Network.AdditionalIps {
		ips = append(ips, ip.Ip)
	}
	return ips
}

// instances are the containers of that name, the newest first.
func (v *podView) instances(name string) []*runtimeapi.ContainerStatus {
	var out []*runtimeapi.ContainerStatus
	for _, c := range v.containers {
		if containerName(c) == name {
			out = append(out, c)
		}
	}
	return out
}

// latest is the newest container of that name, nil if none.
func (v *podView) latest(name string) *runtimeapi.ContainerStatus {
	if l := v.instances(name); len(l) > 0 {
		return l[0]
	}
	return nil
}

// active is the newest container of that name in the newest sandbox.
func (v *podView) active(name string) *runtimeapi.ContainerStatus {
	sb := v.sandbox()
	if sb == nil {
		return nil
	}
	for _, c := range v.instances(name) {
		if v.sandboxOf[c.Id] == sb.Id {
			return c
		}
	}
	return nil
}

func containerName(c *runtimeapi.ContainerStatus) string {
	if n := c.Labels[kubelettypes.KubernetesContainerNameLabel]; n != "" {
		return n
	}
	return c.GetMetadata().GetName()
}

func restartCount(c *runtimeapi.ContainerStatus) int {
	n, err := strconv.Atoi(c.Annotations[containerspec.ContainerRestartCountAnnotation])
	if err != nil {
		return int(c.GetMetadata().GetAttempt())
	}
	return n
}

func running(c *runtimeapi.ContainerStatus) bool {
	return c != nil && c.State == runtimeapi.ContainerState_CONTAINER_RUNNING
}

func exited(c *runtimeapi.ContainerStatus) bool {
	return c != nil && (c.State == runtimeapi.ContainerState_CONTAINER_EXITED || c.State == runtimeapi.ContainerState_CONTAINER_UNKNOWN)
}

// exitCode of an exited container; an unknown one counts as killed.
func exitCode(c *runtimeapi.ContainerStatus) int32 {
	if c.State == runtimeapi.ContainerState_CONTAINER_UNKNOWN {
		return 137
	}
	return c.ExitCode
}

func fullID(id string) string { return runtimeName + "://" + id }

// bareID strips <runtime>:// from a container id.
func bareID(id string) string {
	if i := strings.Index(id, "://"); i >= 0 {
		return id[i+3:]
	}
	return id
}

// termination is how an exited container ended, its termination message
// read as upstream reads it.
func (r *Runtime) termination(ctx context.Context, c *runtimeapi.ContainerStatus) *container.Termination {
	t := &container.Termination{
		ID: fullID(c.Id), ExitCode: exitCode(c), Reason: c.Reason, Message: c.Message,
		StartedAt: nanos(c.StartedAt), FinishedAt: nanos(c.FinishedAt),
	}
	if c.State == runtimeapi.ContainerState_CONTAINER_UNKNOWN {
		t.Reason, t.Message = "ContainerStatusUnknown", "The container could not be located when the pod was terminated"
	}
	if t.Reason == "" {
		t.Reason = container.ReasonCompleted
		if t.ExitCode != 0 {
			t.Reason = container.ReasonError
		}
	}
	if msg := r.terminationMessage(ctx, c, t); msg != "" {
		if t.Message != "" {
			t.Message += ": "
		}
		t.Message += msg
	}
	return t
}

func nanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// status is the pod as the kubelet sees it. With the pod's spec, its init
// containers and containers in spec order, each with why it waits;
// without (a pod being cleaned up), every container by name.
func (r *Runtime) status(ctx context.Context, pod *corev1.Pod, v *podView, st *podState) *container.PodStatus {
	s := &container.PodStatus{UID: v.uid, SandboxCreated: len(v.sandboxes) > 0, SandboxReady: v.sandboxReady()}
	if s.SandboxReady {
		s.IPs = r.podIPs(pod, v)
	}
	if pod == nil {
		seen := map[string]bool{}
		for _, c := range v.containers {
			if name := containerName(c); !seen[name] {
				seen[name] = true
				s.Containers = append(s.Containers, r.containerStatus(ctx, nil, nil, name, v, st))
			}
		}
		return s
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		s.InitContainers = append(s.InitContainers, r.containerStatus(ctx, pod, c, c.Name, v, st))
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		s.Containers = append(s.Containers, r.containerStatus(ctx, pod, c, c.Name, v, st))
	}
	for i := range pod.Spec.EphemeralContainers {
		c := ephemeral(&pod.Spec.EphemeralContainers[i])
		cs := r.containerStatus(ctx, pod, c, c.Name, v, st)
		if cs.State == container.StateExited {
			// Never restarted: it waits for nothing.
			cs.WaitingReason, cs.WaitingMessage = "", ""
		}
		s.EphemeralContainers = append(s.EphemeralContainers, cs)
	}
	r.resizeStatus(pod, v, st, s)
	return s
}

// ephemeral is an ephemeral container as a container, as upstream's
// kubelet starts it.
func ephemeral(ec *corev1.EphemeralContainer) *corev1.Container {
	c := corev1.Container(ec.EphemeralContainerCommon)
	return &c
}

func (r *Runtime) containerStatus(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, name string, v *podView, st *podState) container.ContainerStatus {
	cs := container.ContainerStatus{Name: name}
	if spec != nil {
		cs.Image = spec.Image
	}
	list := v.instances(name)
	var w waiting
	var hookPending bool
	if st != nil {
		r.mu.Lock()
		w = st.waiting[name]
		if len(list) > 0 {
			_, hookPending = st.hooks[list[0].Id]
		}
		r.mu.Unlock()
	}
	if len(list) == 0 {
		cs.WaitingReason, cs.WaitingMessage = w.reason, w.message
		return cs
	}
	c := list[0]
	cs.ID = fullID(c.Id)
	if c.GetImage().GetImage() != "" {
		cs.Image = c.Image.Image
	}
	cs.ImageID = c.ImageRef
	if c.ImageId != "" && cs.ImageID == "" {
		cs.ImageID = c.ImageId
	}
	cs.RestartCount = int32(restartCount(c))
	cs.StartedAt = nanos(c.StartedAt)
	switch {
	case running(c) && hookPending:
		// Not started until its postStart hook returns.
		cs.State = container.StateCreated
	case running(c):
		cs.State = container.StateRunning
	case exited(c):
		cs.State = container.StateExited
		cs.Exited = r.termination(ctx, c)
		// Waiting to restart only when it will be.
		if pod != nil && spec != nil && status.ShouldRestart(pod, spec, cs.Exited.ExitCode) {
			cs.WaitingReason, cs.WaitingMessage = w.reason, w.message
		}
	default:
		cs.State = container.StateCreated
		cs.WaitingReason, cs.WaitingMessage = w.reason, w.message
	}
	if len(list) > 1 && exited(list[1]) {
		cs.Last = r.termination(ctx, list[1])
	}
	return cs
}
