// Package cri is the kubelet's Runtime over a CRI container runtime
// (containerd): pod sandboxes, image pulls, init containers, sidecars and
// containers with upstream kubelet's restart, back-off, hook and
// termination rules (k8s.io/kubernetes pkg/kubelet/kuberuntime), reading
// the pods' state back from the runtime on every sync, so a restarted
// agent adopts the containers it finds. Image pulls run in the background
// (one at a time by default), ephemeral containers start once, and dead
// containers and sandboxes are garbage collected as upstream's defaults.
package cri

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/skiff-dev/skiff/pkg/kubelet/containerspec"
)

// Upstream kubelet's defaults.
const (
	// crashLoopInitial and crashLoopMax bound the container restart
	// back-off; a container that ran crashLoopReset is forgiven.
	crashLoopInitial = 10 * time.Second
	crashLoopMax     = 5 * time.Minute
	imageBackoffMax  = 5 * time.Minute
	// minimumGracePeriod: a container always gets this long after SIGTERM.
	minimumGracePeriod = 2 * time.Second
	// defaultPollInterval: how often a pod with live containers is looked
	// at, as upstream's PLEG relists.
	defaultPollInterval = time.Second
	// retryInterval: how soon a failed step (a sandbox, a missing
	// configMap) is tried again, as upstream's pod worker backs off.
	retryInterval = 10 * time.Second
	// connectTimeout for the CRI calls, as upstream's
	// --runtime-request-timeout.
	connectTimeout = 2 * time.Minute
)

// SubPather is Volumes that make subPath mounts safe (the volume
// manager's bind mounts), used when the Volumes have it.
type SubPather interface {
	SubPath(pod *corev1.Pod, container string, mountIndex int, volumeName, volumePath, subPath string) (string, error)
}

// Volumes sets up and tears down a pod's volumes on the host.
type Volumes interface {
	SetUp(ctx context.Context, pod *corev1.Pod) (map[string]containerspec.Mount, error)
	TearDown(ctx context.Context, uid types.UID) error
}

// Config is what the runtime needs from the node.
type Config struct {
	// Endpoint is the CRI socket: unix:///run/containerd/containerd.sock
	// or a bare path.
	Endpoint string
	// Client reads pull secrets, configMaps and secrets (environment) and
	// services (service links); nil: pods that need none of them only.
	Client   kubernetes.Interface
	Recorder record.EventRecorder
	NodeName string
	// RootDir is the kubelet's root dir: pods' dirs are <RootDir>/pods/<uid>.
	RootDir string
	// Volumes; nil: only pods without volumes run.
	Volumes Volumes
	Clock   clock.Clock
	// HostIPs are the node's addresses, the primary first (status.hostIP,
	// downward API); nil: none.
	HostIPs func() []string
	// DNS is the pod's resolver config (--cluster-dns, dnsPolicy); nil or
	// a nil result: the runtime's default (the host's resolv.conf).
	DNS func(pod *corev1.Pod) (*runtimeapi.DNSConfig, error)
	// ServiceEnv are the service links' variables of a pod; nil: from
	// the services Client lists at each container start (none without a
	// Client). A lister-backed func saves the API the lists.
	ServiceEnv func(ctx context.Context, pod *corev1.Pod) ([]corev1.EnvVar, error)
	// NodeAllocatable stands in for unset limits in resourceFieldRef.
	NodeAllocatable func() corev1.ResourceList
	// MemoryCapacity is the node's memory in bytes (oom_score_adj).
	MemoryCapacity int64
	// ClusterDomain is --cluster-domain (default cluster.local).
	ClusterDomain string
	// ContainerToKill tells whether a running container failed its
	// liveness or startup probe and is to be killed: the Killing event's
	// message as upstream words it ("Container c failed liveness probe,
	// will be restarted"; "Init container s failed liveness probe" for a
	// sidecar) and the grace period the kill gets (the pod's deletion
	// grace, else the probe's terminationGracePeriodSeconds, else the
	// pod's): prober.Manager.ContainerToKill's. It takes precedence over
	// Unhealthy.
	ContainerToKill func(pod *corev1.Pod, containerName, containerID string) (message string, grace time.Duration, ok bool)
	// Unhealthy tells why a running container must be killed (its
	// liveness or startup probe failed: upstream's "Container c failed
	// liveness probe"), "" while it is healthy; the kill gets the pod's
	// grace period. nil (and no ContainerToKill): never.
	Unhealthy func(pod *corev1.Pod, containerName, containerID string) string
	// CgroupParent overrides containerspec.CgroupParent(pod).
	CgroupParent func(pod *corev1.Pod) string
	// PodLogsDir overrides /var/log/pods (tests).
	PodLogsDir string
	// BackoffInitial and BackoffMax override the crash-loop back-off
	// (10s doubling to 5m), e.g. to keep tests short.
	BackoffInitial, BackoffMax time.Duration
	// PollInterval is how often a pod with live containers is synced
	// again (default 1s).
	PollInterval time.Duration
	// MaxParallelImagePulls is how many images are pulled at once
	// (--max-parallel-image-pulls); 0 or 1: one at a time, as upstream's
	// default --serialize-image-pulls=true.
	MaxParallelImagePulls int
	// GCPolicy is the container garbage collection's; nil:
	// DefaultGCPolicy.
	GCPolicy *GCPolicy
	// GCPeriod is how often dead containers and sandboxes are collected
	// (upstream's 1m); negative: never (GarbageCollect only).
	GCPeriod time.Duration
	// Enqueue wakes a pod's sync (the pod workers' EnqueueUID) once an
	// image pull it waits for ended; nil: it is synced again after
	// PollInterval while it waits.
	Enqueue func(uid types.UID)
}

// Runtime runs pods through CRI. Its state is the runtime's: what it keeps
// in memory (back-offs, the last start error of a container, kills and
// hooks under way) only shapes how it retries.
type Runtime struct {
	cfg     Config
	clock   clock.Clock
	runtime internalapi.RuntimeService
	images  internalapi.ImageManagerService
	puller  *puller
	version string
	// bg outlives the syncs: kills and hooks run in it.
	bg     context.Context
	cancel context.CancelFunc

	// allocs are the pods' granted and applied container resources
	// (in-place resize), checkpointed in RootDir.
	allocs *allocations

	mu   sync.Mutex
	pods map[types.UID]*podState
}

// New connects to the CRI runtime at cfg.Endpoint.
func New(cfg Config) (*Runtime, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("cri: no endpoint")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = defaultPollInterval
	}
	if cfg.BackoffInitial <= 0 {
		cfg.BackoffInitial = crashLoopInitial
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = crashLoopMax
	}
	if cfg.PodLogsDir == "" {
		cfg.PodLogsDir = containerspec.PodLogsRootDir
	}
	if cfg.RootDir == "" {
		cfg.RootDir = "/var/lib/kubelet"
	}
	if cfg.Recorder == nil {
		cfg.Recorder = &record.FakeRecorder{}
	}
	if cfg.GCPolicy == nil {
		p := DefaultGCPolicy
		cfg.GCPolicy = &p
	}
	if cfg.GCPeriod == 0 {
		cfg.GCPeriod = defaultGCPeriod
	}
	ctx := context.Background()
	rs, err := remote.NewRemoteRuntimeServiceBuilder().WithEndpoint(cfg.Endpoint).
		WithConnectionTimeout(connectTimeout).WithTracerProvider(nil).Build(ctx)
	if err != nil {
		return nil, fmt.Errorf("cri: connecting to runtime service %s: %w", cfg.Endpoint, err)
	}
	is, err := remote.NewRemoteImageServiceBuilder().WithEndpoint(cfg.Endpoint).
		WithConnectionTimeout(connectTimeout).WithTracerProvider(nil).Build(ctx)
	if err != nil {
		_ = rs.Close(ctx)
		return nil, fmt.Errorf("cri: connecting to image service %s: %w", cfg.Endpoint, err)
	}
	v, err := rs.Version(ctx, "v1")
	if err != nil {
		_ = rs.Close(ctx)
		_ = is.Close(ctx)
		return nil, fmt.Errorf("cri: runtime version: %w", err)
	}
	allocs, err := loadAllocations(filepath.Join(cfg.RootDir, allocationFile))
	if err != nil {
		klog.Background().Error(err, "Starting with no resource allocations")
	}
	bg, cancel := context.WithCancel(context.Background())
	r := &Runtime{
		cfg: cfg, clock: cfg.Clock, runtime: rs, images: is,
		version: v.RuntimeName + "://" + v.RuntimeVersion,
		bg:      bg, cancel: cancel,
		puller: newPuller(bg, cfg.MaxParallelImagePulls),
		pods:   map[types.UID]*podState{},
		allocs: allocs,
	}
	if cfg.GCPeriod > 0 {
		go r.runGarbageCollection(cfg.GCPeriod)
	}
	return r, nil
}

// Close ends the kills and hooks under way and the connections.
func (r *Runtime) Close() error {
	r.cancel()
	ctx := context.Background()
	return errors.Join(r.runtime.Close(ctx), r.images.Close(ctx))
}

// Version names the runtime as nodeInfo.containerRuntimeVersion does,
// e.g. containerd://1.6.20.
func (r *Runtime) Version() string { return r.version }

// RuntimeService is the CRI runtime client, for exec, attach, port-forward
// and logs.
func (r *Runtime) RuntimeService() internalapi.RuntimeService { return r.runtime }

// ImageService is the CRI image client.
func (r *Runtime) ImageService() internalapi.ImageManagerService { return r.images }

// Errors are upstream kubelet's runtime and network errors from the CRI
// status' RuntimeReady and NetworkReady conditions.
func (r *Runtime) Errors(ctx context.Context) []error {
	s, err := r.runtime.Status(ctx, false)
	if err != nil || s.GetStatus() == nil {
		klog.FromContext(ctx).Error(err, "Container runtime status check failed")
		return []error{errors.New("container runtime is down")}
	}
	var errs []error
	if c := condition(s.Status, runtimeapi.NetworkReady); c == nil || !c.Status {
		errs = append(errs, fmt.Errorf("container runtime network not ready: %s", conditionString(c)))
	}
	if c := condition(s.Status, runtimeapi.RuntimeReady); c == nil || !c.Status {
		errs = append(errs, fmt.Errorf("container runtime not ready: %s", conditionString(c)))
	}
	return errs
}

func condition(s *runtimeapi.RuntimeStatus, t string) *runtimeapi.RuntimeCondition {
	for _, c := range s.Conditions {
		if c.Type == t {
			return c
		}
	}
	return nil
}

// conditionString prints a condition as upstream's kubecontainer does.
func conditionString(c *runtimeapi.RuntimeCondition) string {
	if c == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%s=%t reason:%s message:%s", c.Type, c.Status, c.Reason, c.Message)
}

// ExecSync runs cmd in the container (its bare CRI id or
// <runtime>://<id>) and waits for it, at most timeout (0: no limit). A
// command that ran and exited non-zero is no error: exitCode says so.
func (r *Runtime) ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (stdout, stderr []byte, exitCode int, err error) {
	stdout, stderr, err = r.runtime.ExecSync(ctx, bareID(containerID), cmd, timeout)
	var exit interface{ ExitStatus() int }
	if errors.As(err, &exit) {
		return stdout, stderr, exit.ExitStatus(), nil
	}
	return stdout, stderr, 0, err
}

// podDir is the kubelet's dir of the pod.
func (r *Runtime) podDir(uid types.UID) string {
	return r.cfg.RootDir + "/pods/" + string(uid)
}

// podIPs are the sandbox's IPs, the node's for a host-network pod.
func (r *Runtime) podIPs(pod *corev1.Pod, v *podView) []string {
	if pod != nil && pod.Spec.HostNetwork {
		return r.hostIPs()
	}
	return v.ips()
}

func (r *Runtime) hostIPs() []string {
	if r.cfg.HostIPs == nil {
		return nil
	}
	return r.cfg.HostIPs()
}
