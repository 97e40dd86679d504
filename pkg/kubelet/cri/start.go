package cri

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
	"github.com/skiff-dev/skiff/pkg/kubelet/containerspec"
)

// Upstream kubelet's start failure reasons (kuberuntime, kubecontainer).
const (
	ReasonCreateContainerConfigError = "CreateContainerConfigError"
	ReasonCreateContainerError       = "CreateContainerError"
	ReasonRunContainerError          = "RunContainerError"
	ReasonPostStartHookError         = "PostStartHookError"
)

// start creates and starts a new instance of container c (latest is its
// last one, nil if none) after its back-off; true: it started.
func (s *syncer) start(c *corev1.Container, latest *runtimeapi.ContainerStatus) bool {
	r, pod, st := s.r, s.pod, s.st
	logger := klog.FromContext(s.ctx).WithValues("pod", klog.KObj(pod), "container", c.Name)
	if latest == nil {
		latest = s.v.latest(c.Name)
	}
	now := r.clock.Now()
	if exited(latest) {
		finished := nanos(latest.FinishedAt)
		r.mu.Lock()
		b := st.crashLoop[c.Name]
		if b == nil {
			b = &backoff{}
			st.crashLoop[c.Name] = b
		}
		wait := b.remaining(now, finished, 2*r.cfg.BackoffMax)
		if wait > 0 {
			st.waiting[c.Name] = waiting{container.ReasonCrashLoopBackOff,
				fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", b.wait, c.Name, podString(pod))}
		} else {
			b.next(now, r.cfg.BackoffInitial, r.cfg.BackoffMax, 2*r.cfg.BackoffMax)
		}
		r.mu.Unlock()
		if wait > 0 {
			r.containerEvent(pod, c, "", corev1.EventTypeWarning, eventBackOff,
				"Back-off restarting failed container %s in pod %s", c.Name, podString(pod))
			logger.V(3).Info("Back-off restarting failed container", "wait", wait)
			s.after(wait)
			return false
		}
	}

	sandboxID, sandboxConfig, err := s.sandbox()
	if err != nil {
		logger.Error(err, "No sandbox config for the container")
		s.after(retryInterval)
		return false
	}
	ref := containerRef(pod, c)
	imageRef, img, failure := r.ensureImage(s.ctx, pod, c, ref, sandboxConfig, st)
	if failure != nil && failure.pending {
		s.fail(c, failure.reason, "", failure.retry)
		return false
	}
	if failure != nil {
		r.containerEvent(pod, c, "", corev1.EventTypeWarning, eventFailed, "Error: %s", failure.reason)
		s.fail(c, failure.reason, failure.message, failure.retry)
		return false
	}

	restarts := 0
	if latest != nil {
		restarts = restartCount(latest) + 1
	} else {
		restarts = restartCountFromLogs(filepath.Join(sandboxConfig.LogDirectory, c.Name))
	}
	mounts, err := s.volumes()
	if err != nil {
		s.fail(c, container.ReasonContainerCreating, err.Error(), retryInterval)
		return false
	}
	var serviceEnv []corev1.EnvVar
	if r.cfg.ServiceEnv != nil || r.cfg.Client != nil {
		if serviceEnv, err = r.serviceEnv(s.ctx, pod); err != nil {
			r.containerEvent(pod, c, "", corev1.EventTypeWarning, eventFailed, "Error: %v", err)
			s.fail(c, ReasonCreateContainerConfigError, err.Error(), retryInterval)
			return false
		}
	}
	hostIPs := r.hostIPs()
	o := containerspec.ContainerOptions{
		NodeName: r.cfg.NodeName, PodIPs: s.r.podIPs(pod, s.v), HostIPs: hostIPs,
		Volumes: mounts, PodDir: r.podDir(pod.UID), RestartCount: restarts, ServiceEnv: serviceEnv,
		MemoryCapacity: r.cfg.MemoryCapacity, ClusterDomain: r.cfg.ClusterDomain,
		PodLogDir: sandboxConfig.LogDirectory,
	}
	if len(hostIPs) > 0 {
		o.HostIP = hostIPs[0]
	}
	if sp, ok := r.cfg.Volumes.(SubPather); ok {
		o.SubPath = func(volume string, i int, volumePath, subPath string) (string, error) {
			return sp.SubPath(pod, c.Name, i, volume, volumePath, subPath)
		}
	}
	if r.cfg.NodeAllocatable != nil {
		o.NodeAllocatable = r.cfg.NodeAllocatable()
	}
	if pod.Spec.HostNetwork {
		o.NodeHostsFile, _ = os.ReadFile("/etc/hosts")
	}
	var src containerspec.Sources = sources{}
	if r.cfg.Client != nil {
		src = containerspec.ClientSources(r.cfg.Client)
	}
	cfg, extras, err := containerspec.Container(s.ctx, pod, c, src, o)
	if err == nil && extras != nil && extras.RunAsNonRoot {
		uid, user := imageUser(img)
		err = containerspec.VerifyRunAsNonRoot(pod, c, uid, user)
	}
	if err == nil {
		uid, user := imageUser(img)
		containerspec.ApplyImageUser(cfg, uid, user)
		err = s.targetNamespace(c, cfg)
	}
	if err == nil {
		err = writeExtras(extras)
	}
	if err == nil {
		err = os.MkdirAll(filepath.Join(sandboxConfig.LogDirectory, c.Name), 0o755)
	}
	if err != nil {
		r.containerEvent(pod, c, "", corev1.EventTypeWarning, eventFailed, "Error: %v", err)
		s.fail(c, ReasonCreateContainerConfigError, err.Error(), retryInterval)
		return false
	}
	cfg.Image = &runtimeapi.ImageSpec{Image: imageRef, UserSpecifiedImage: c.Image, Annotations: cfg.GetImage().GetAnnotations()}

	s.dirty = true
	id, err := r.runtime.CreateContainer(s.ctx, sandboxID, cfg, sandboxConfig)
	if err != nil {
		msg := grpcMessage(err)
		r.containerEvent(pod, c, id, corev1.EventTypeWarning, eventFailed, "Error: %v", msg)
		s.fail(c, ReasonCreateContainerError, msg, retryInterval)
		return false
	}
	r.containerEvent(pod, c, id, corev1.EventTypeNormal, eventCreated, "Container created")
	if err := r.runtime.StartContainer(s.ctx, id); err != nil {
		msg := grpcMessage(err)
		r.containerEvent(pod, c, id, corev1.EventTypeWarning, eventFailed, "Error: %v", msg)
		s.fail(c, ReasonRunContainerError, msg, r.cfg.PollInterval)
		return false
	}
	r.containerEvent(pod, c, id, corev1.EventTypeNormal, eventStarted, "Container started")
	if isResizable(pod, c.Name) {
		// It started with its granted resources.
		if err := r.allocs.setActuated(pod.UID, c.Name, id, c.Resources); err != nil {
			logger.Error(err, "Recording the container's resources failed")
		}
	}
	logger.V(2).Info("Started container", "id", id, "restartCount", restarts)
	r.mu.Lock()
	delete(st.waiting, c.Name)
	r.mu.Unlock()
	s.lastStarted = id
	if c.Lifecycle != nil && c.Lifecycle.PostStart != nil {
		r.runPostStart(pod, c, id, r.podIPs(pod, s.v), st)
		s.after(r.cfg.PollInterval / 4)
	}
	return true
}

// targetNamespace puts an ephemeral container with a target container in
// the target's PID namespace, as upstream's kubelet (unless the pod
// shares one already).
func (s *syncer) targetNamespace(c *corev1.Container, cfg *runtimeapi.ContainerConfig) error {
	var target string
	for i := range s.pod.Spec.EphemeralContainers {
		if ec := &s.pod.Spec.EphemeralContainers[i]; ec.Name == c.Name {
			target = ec.TargetContainerName
		}
	}
	if target == "" {
		return nil
	}
	t := s.v.latest(target)
	if t == nil {
		return fmt.Errorf("unable to find target container %v", target)
	}
	ns := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	if ns != nil && ns.Pid == runtimeapi.NamespaceMode_CONTAINER {
		ns.Pid, ns.TargetId = runtimeapi.NamespaceMode_TARGET, t.Id
	}
	return nil
}

// serviceEnv are the pod's service-link variables: Config.ServiceEnv's,
// else from the services the API has.
func (r *Runtime) serviceEnv(ctx context.Context, pod *corev1.Pod) ([]corev1.EnvVar, error) {
	if r.cfg.ServiceEnv != nil {
		return r.cfg.ServiceEnv(ctx, pod)
	}
	var services []*corev1.Service
	links := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	if links {
		list, err := r.cfg.Client.CoreV1().Services(pod.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("failed to list services when setting up env vars: %w", err)
		}
		for i := range list.Items {
			services = append(services, &list.Items[i])
		}
	}
	if !links || pod.Namespace != metav1.NamespaceDefault {
		master, err := r.cfg.Client.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
		if err == nil {
			services = append(services, master)
		} else if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("failed to list services when setting up env vars: %w", err)
		}
	}
	return containerspec.ServiceEnv(services, pod.Namespace, links), nil
}

// fail records why the container did not start and when to try again.
func (s *syncer) fail(c *corev1.Container, reason, message string, retry time.Duration) {
	s.r.mu.Lock()
	s.st.waiting[c.Name] = waiting{reason, message}
	s.r.mu.Unlock()
	klog.FromContext(s.ctx).V(2).Info("Container not started", "pod", klog.KObj(s.pod), "container", c.Name, "reason", reason, "message", message)
	s.after(retry)
}

// volumes are the pod's volumes set up on the host, once a sync.
func (s *syncer) volumes() (map[string]containerspec.Mount, error) {
	if s.mountsDone {
		return s.mounts, s.mountsErr
	}
	s.mountsDone = true
	if s.r.cfg.Volumes == nil {
		return nil, nil
	}
	s.mounts, s.mountsErr = s.r.cfg.Volumes.SetUp(s.ctx, s.pod)
	if s.mountsErr != nil {
		s.mountsErr = fmt.Errorf("unable to attach or mount volumes: %w", s.mountsErr)
		s.r.cfg.Recorder.Eventf(podRef(s.pod), corev1.EventTypeWarning, eventFailedMount, "Unable to attach or mount volumes: %v", errors.Unwrap(s.mountsErr))
	}
	return s.mounts, s.mountsErr
}

// runPostStart runs the container's postStart hook in the background:
// the container counts as started when it returns; if it fails, the
// container is killed as upstream does.
func (r *Runtime) runPostStart(pod *corev1.Pod, c *corev1.Container, id string, ips []string, st *podState) {
	ctx, cancel := context.WithCancel(r.bg)
	h := &hookRun{cancel: cancel, done: make(chan struct{})}
	r.mu.Lock()
	st.hooks[id] = h
	r.mu.Unlock()
	go func() {
		defer close(h.done)
		defer cancel()
		msg, err := r.runHook(ctx, pod, c, id, c.Lifecycle.PostStart, ips)
		r.mu.Lock()
		if err != nil {
			st.waiting[c.Name] = waiting{ReasonPostStartHookError, msg}
			st.stopping[id] = true
		}
		delete(st.hooks, id)
		r.mu.Unlock()
		if err == nil || ctx.Err() != nil {
			return
		}
		klog.ErrorS(err, "PostStart hook failed", "pod", klog.KObj(pod), "container", c.Name, "message", msg)
		// The message may hold secrets: the event does not.
		r.containerEvent(pod, c, id, corev1.EventTypeWarning, eventFailedPostStartHook, "PostStartHook failed")
		r.killContainer(ctx, pod, c, id, "FailedPostStartHook", r.clock.Now().Add(terminationGrace(pod)), ips, nil)
		r.mu.Lock()
		delete(st.stopping, id)
		r.mu.Unlock()
	}()
}

// killOne kills one container (an unhealthy one) in the background
// within grace, once.
func (r *Runtime) killOne(pod *corev1.Pod, c *corev1.Container, id, message string, grace time.Duration, ips []string, st *podState) {
	r.mu.Lock()
	if st.stopping[id] {
		r.mu.Unlock()
		return
	}
	st.stopping[id] = true
	r.mu.Unlock()
	go func() {
		r.killContainer(r.bg, pod, c, id, message, r.clock.Now().Add(grace), ips, nil)
		r.mu.Lock()
		delete(st.stopping, id)
		r.mu.Unlock()
	}()
}

// terminationGrace is the pod's terminationGracePeriodSeconds (default 30).
func terminationGrace(pod *corev1.Pod) time.Duration {
	if pod.DeletionGracePeriodSeconds != nil {
		return time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	}
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	return 30 * time.Second
}

// restartCountFromLogs continues the count of a container the runtime
// lost (a node reboot) from its log files <n>.log, as upstream does.
func restartCountFromLogs(dir string) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	count := 0
	for _, e := range entries {
		m := logFileName.FindStringSubmatch(e.Name())
		if e.IsDir() || m == nil {
			continue
		}
		if n, err := strconv.Atoi(m[1]); err == nil && n+1 > count {
			count = n + 1
		}
	}
	return count
}

var logFileName = regexp.MustCompile(`^(\d+)\.log(\..*)?$`)

// imageUser is the user the image runs as: a uid, else a name.
func imageUser(img *runtimeapi.Image) (*int64, string) {
	if img == nil {
		return nil, ""
	}
	if img.Uid != nil {
		uid := img.Uid.Value
		return &uid, ""
	}
	return nil, img.Username
}

func writeExtras(e *containerspec.Extras) error {
	if e == nil {
		return nil
	}
	for _, d := range e.Dirs {
		perm := d.Perm
		if perm == 0 {
			perm = 0o755
		}
		if err := os.MkdirAll(d.Path, perm); err != nil {
			return fmt.Errorf("creating %s: %w", d.Path, err)
		}
	}
	for _, f := range e.Files {
		if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
			return fmt.Errorf("creating the directory of %s: %w", f.Path, err)
		}
		perm := f.Perm
		if perm == 0 {
			perm = 0o644
		}
		if err := os.WriteFile(f.Path, f.Content, perm); err != nil {
			return fmt.Errorf("writing %s: %w", f.Path, err)
		}
		// The mode as asked, whatever the umask.
		if err := os.Chmod(f.Path, perm); err != nil {
			return fmt.Errorf("setting the mode of %s: %w", f.Path, err)
		}
	}
	return nil
}

func grpcMessage(err error) string {
	if s, ok := status.FromError(err); ok {
		return s.Message()
	}
	return err.Error()
}

// sources stand in when the runtime has no API client: every configMap
// and secret is missing.
type sources struct{}

func (sources) ConfigMap(_ context.Context, _, name string) (*corev1.ConfigMap, error) {
	return nil, containerspec.NotFound("configmap", name)
}

func (sources) Secret(_ context.Context, _, name string) (*corev1.Secret, error) {
	return nil, containerspec.NotFound("secret", name)
}
