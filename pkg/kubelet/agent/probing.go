package agent

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/kubelet"
	"github.com/skiff-dev/skiff/pkg/kubelet/container"
	"github.com/skiff-dev/skiff/pkg/kubelet/cri"
	"github.com/skiff-dev/skiff/pkg/kubelet/prober"
	"github.com/skiff-dev/skiff/pkg/kubelet/volume"
)

// VolumeRefreshPeriod is how often a running pod's configMap, secret,
// downwardAPI and projected volumes are rewritten from their objects
// (upstream: at each periodic sync, every minute, and on a pod update).
const VolumeRefreshPeriod = 10 * time.Second

// refresher keeps the contents of the pods' volumes current, at most
// every VolumeRefreshPeriod per pod; a change of the pod itself (labels,
// annotations for the downward API) refreshes at once.
type refresher struct {
	volumes *volume.Manager
	mu      sync.Mutex
	last    map[types.UID]refreshed
}

type refreshed struct {
	at              time.Time
	resourceVersion string
}

func (r *refresher) refresh(ctx context.Context, pod *corev1.Pod) {
	r.mu.Lock()
	if r.last == nil {
		r.last = map[types.UID]refreshed{}
	}
	prev, ok := r.last[pod.UID]
	if !ok || pod.DeletionTimestamp != nil || (time.Since(prev.at) < VolumeRefreshPeriod && prev.resourceVersion == pod.ResourceVersion) {
		// Not set up yet (SetUp writes the contents), or being stopped.
		if !ok {
			r.last[pod.UID] = refreshed{at: time.Now(), resourceVersion: pod.ResourceVersion}
		}
		r.mu.Unlock()
		return
	}
	r.last[pod.UID] = refreshed{at: time.Now(), resourceVersion: pod.ResourceVersion}
	r.mu.Unlock()
	if err := r.volumes.Refresh(ctx, pod); err != nil {
		klog.FromContext(ctx).V(2).Info("Refreshing volumes", "pod", klog.KObj(pod), "err", err)
	}
}

func (r *refresher) forget(uid types.UID) {
	r.mu.Lock()
	delete(r.last, uid)
	r.mu.Unlock()
}

var everything = labels.Everything()

// probingRuntime is the CRI runtime with the pods' probes: each sync
// starts the pod's probes and tells them the containers it runs; a pod
// that stops has its liveness and startup probes stopped.
// The node admits pods against what resized pods were granted.
var _ kubelet.AllocatingRuntime = (*probingRuntime)(nil)

type probingRuntime struct {
	*cri.Runtime
	probes  *prober.Manager
	volumes *refresher
}

func (r *probingRuntime) SyncPod(ctx context.Context, pod *corev1.Pod) (container.SyncResult, error) {
	r.probes.AddPod(pod)
	r.volumes.refresh(ctx, pod)
	res, err := r.Runtime.SyncPod(ctx, pod)
	if res.Status != nil {
		r.probes.SetRuntimeStatus(res.Status)
	}
	return res, err
}

func (r *probingRuntime) KillPod(ctx context.Context, pod *corev1.Pod, grace time.Duration) (container.SyncResult, error) {
	r.probes.StopLivenessAndStartup(pod.UID)
	res, err := r.Runtime.KillPod(ctx, pod, grace)
	if res.Status != nil {
		r.probes.SetRuntimeStatus(res.Status)
	}
	return res, err
}

func (r *probingRuntime) RemovePod(ctx context.Context, uid types.UID) error {
	r.probes.RemovePod(uid)
	r.volumes.forget(uid)
	return r.Runtime.RemovePod(ctx, uid)
}
