package deployment

import (
	"context"
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
)

// rolloutRolling is one step of a RollingUpdate: the new ReplicaSet up as
// far as maxSurge allows, else the old ones down as far as maxUnavailable
// allows, then the status.
func (r *Reconciler) rolloutRolling(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) (ctrl.Result, error) {
	newRS, oldRSs, err := r.replicaSetsAndSyncRevision(ctx, d, rsList, true)
	if err != nil {
		return ctrl.Result{}, err
	}
	all := append(oldRSs, newRS)
	scaledUp, err := r.reconcileNewReplicaSet(ctx, all, newRS, d)
	if err != nil {
		return ctrl.Result{}, err
	}
	if scaledUp {
		return r.syncRolloutStatus(ctx, all, newRS, d)
	}
	scaledDown, err := r.reconcileOldReplicaSets(ctx, all, filterActive(oldRSs), newRS, d)
	if err != nil {
		return ctrl.Result{}, err
	}
	if scaledDown {
		return r.syncRolloutStatus(ctx, all, newRS, d)
	}
	if deploymentComplete(d, &d.Status) {
		if err := r.cleanupDeployment(ctx, oldRSs, d); err != nil {
			return ctrl.Result{}, err
		}
	}
	return r.syncRolloutStatus(ctx, all, newRS, d)
}

func (r *Reconciler) reconcileNewReplicaSet(ctx context.Context, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment) (bool, error) {
	switch n := rsReplicas(newRS); {
	case n == replicas(d):
		return false, nil
	case n > replicas(d):
		scaled, _, err := r.scaleReplicaSet(ctx, newRS, replicas(d), d, false)
		return scaled, err
	}
	size, err := newRSNewReplicas(d, all, newRS)
	if err != nil {
		return false, err
	}
	scaled, _, err := r.scaleReplicaSet(ctx, newRS, size, d, false)
	return scaled, err
}

// reconcileOldReplicaSets scales old ReplicaSets down by at most
// all - minAvailable - the new ReplicaSet's unavailable pods: their
// unhealthy replicas first, then available ones while enough stay
// available.
func (r *Reconciler) reconcileOldReplicaSets(ctx context.Context, all, oldRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment) (bool, error) {
	logger := klog.FromContext(ctx)
	if specReplicas(oldRSs) == 0 {
		return false, nil
	}
	logger.V(4).Info("New replica set", "replicaSet", klog.KObj(newRS), "availableReplicas", newRS.Status.AvailableReplicas)
	minAvailable := replicas(d) - maxUnavailable(d)
	newUnavailable := rsReplicas(newRS) - newRS.Status.AvailableReplicas
	maxScaledDown := specReplicas(all) - minAvailable - newUnavailable
	if maxScaledDown <= 0 {
		return false, nil
	}
	// Unhealthy replicas first: they would block the rollout.
	oldRSs, cleaned, err := r.cleanupUnhealthyReplicas(ctx, oldRSs, d, maxScaledDown)
	if err != nil {
		// As upstream: the status is synced, the next sync tries again.
		return false, nil
	}
	logger.V(4).Info("Cleaned up unhealthy replicas from old RSes", "count", cleaned)
	scaledDown, err := r.scaleDownOldReplicaSetsForRollingUpdate(ctx, append(oldRSs, newRS), oldRSs, d)
	if err != nil {
		return false, nil
	}
	logger.V(4).Info("Scaled down old RSes", "count", scaledDown)
	return cleaned+scaledDown > 0, nil
}

// cleanupUnhealthyReplicas removes up to maxCleanup unavailable replicas
// of the old ReplicaSets, oldest first.
func (r *Reconciler) cleanupUnhealthyReplicas(ctx context.Context, oldRSs []*appsv1.ReplicaSet, d *appsv1.Deployment, maxCleanup int32) ([]*appsv1.ReplicaSet, int32, error) {
	sort.Sort(byCreation(oldRSs))
	total := int32(0)
	for i, rs := range oldRSs {
		if total >= maxCleanup {
			break
		}
		n := rsReplicas(rs)
		if n == 0 || n == rs.Status.AvailableReplicas {
			continue
		}
		down := min(maxCleanup-total, n-rs.Status.AvailableReplicas)
		if n-down > n {
			return nil, 0, fmt.Errorf("when cleaning up unhealthy replicas, got invalid request to scale down %s/%s %d -> %d", rs.Namespace, rs.Name, n, n-down)
		}
		_, updated, err := r.scaleReplicaSet(ctx, rs, n-down, d, false)
		if err != nil {
			return nil, total, err
		}
		total += down
		oldRSs[i] = updated
	}
	return oldRSs, total, nil
}

// scaleDownOldReplicaSetsForRollingUpdate scales old ReplicaSets down,
// oldest first, by as many as are available beyond minAvailable.
func (r *Reconciler) scaleDownOldReplicaSetsForRollingUpdate(ctx context.Context, all, oldRSs []*appsv1.ReplicaSet, d *appsv1.Deployment) (int32, error) {
	minAvailable := replicas(d) - maxUnavailable(d)
	available := sumStatus(all, statusAvailable)
	if available <= minAvailable {
		return 0, nil
	}
	klog.FromContext(ctx).V(4).Info("Found available pods in deployment, scaling down old RSes", "availableReplicas", available)
	sort.Sort(byCreation(oldRSs))
	total, want := int32(0), available-minAvailable
	for _, rs := range oldRSs {
		if total >= want {
			break
		}
		n := rsReplicas(rs)
		if n == 0 {
			continue
		}
		down := min(n, want-total)
		if n-down > n {
			return 0, fmt.Errorf("when scaling down old RS, got invalid request to scale down %s/%s %d -> %d", rs.Namespace, rs.Name, n, n-down)
		}
		if _, _, err := r.scaleReplicaSet(ctx, rs, n-down, d, false); err != nil {
			return total, err
		}
		total += down
	}
	return total, nil
}
