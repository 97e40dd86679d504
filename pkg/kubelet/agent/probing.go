package agent

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/pkg/kubelet/container"
	"github.com/skiff-dev/skiff/pkg/kubelet/cri"
	"github.com/skiff-dev/skiff/pkg/kubelet/prober"
)

var everything = labels.Everything()

// probingRuntime is the CRI runtime with the pods' probes: each sync
// starts the pod's probes and tells them the containers it runs; a pod
// that stops has its liveness and startup probes stopped.
type probingRuntime struct {
	*cri.Runtime
	probes   *prober.Manager
	recorder record.EventRecorder
}

func (r *probingRuntime) SyncPod(ctx context.Context, pod *corev1.Pod) (container.SyncResult, error) {
	r.probes.AddPod(pod)
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
	return r.Runtime.RemovePod(ctx, uid)
}
