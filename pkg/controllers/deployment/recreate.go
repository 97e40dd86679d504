package deployment

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
)

// rolloutRecreate is one step of a Recreate rollout: old ReplicaSets to
// 0, then, once none of their pods runs, the new one (created only then)
// to full size.
func (r *Reconciler) rolloutRecreate(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet, pods map[types.UID][]*corev1.Pod) (ctrl.Result, error) {
	newRS, oldRSs, err := r.replicaSetsAndSyncRevision(ctx, d, rsList, false)
	if err != nil {
		return ctrl.Result{}, err
	}
	all := append(oldRSs, newRS)
	scaledDown := false
	for _, rs := range filterActive(oldRSs) {
		scaled, _, err := r.scaleReplicaSet(ctx, rs, 0, d, false)
		if err != nil {
			return ctrl.Result{}, err
		}
		scaledDown = scaledDown || scaled
	}
	if scaledDown || oldPodsRunning(newRS, oldRSs, pods) {
		return r.syncRolloutStatus(ctx, all, newRS, d)
	}
	if newRS == nil {
		if newRS, oldRSs, err = r.replicaSetsAndSyncRevision(ctx, d, rsList, true); err != nil {
			return ctrl.Result{}, err
		}
		all = append(oldRSs, newRS)
	}
	if _, _, err := r.scaleReplicaSet(ctx, newRS, replicas(d), d, false); err != nil {
		return ctrl.Result{}, err
	}
	if deploymentComplete(d, &d.Status) {
		if err := r.cleanupDeployment(ctx, oldRSs, d); err != nil {
			return ctrl.Result{}, err
		}
	}
	return r.syncRolloutStatus(ctx, all, newRS, d)
}

// oldPodsRunning: an old ReplicaSet still reports pods, or one of its pods
// is not yet Succeeded or Failed.
func oldPodsRunning(newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet, pods map[types.UID][]*corev1.Pod) bool {
	if sumStatus(oldRSs, statusReplicas) > 0 {
		return true
	}
	for uid, list := range pods {
		if newRS != nil && newRS.UID == uid {
			continue
		}
		for _, p := range list {
			if p.Status.Phase != corev1.PodFailed && p.Status.Phase != corev1.PodSucceeded {
				return true
			}
		}
	}
	return false
}
