package deployment

import (
	"context"
	"fmt"
	"reflect"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
)

// syncRolloutStatus writes the status during a rollout, with the
// Progressing condition (NewReplicaSetAvailable when complete,
// ReplicaSetUpdated on progress, ProgressDeadlineExceeded after
// progressDeadlineSeconds without) and the ReplicaSets' ReplicaFailure.
// A rollout still under way is looked at again when its deadline passes.
func (r *Reconciler) syncRolloutStatus(ctx context.Context, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment) (ctrl.Result, error) {
	status := r.calculateStatus(all, newRS, d)
	if !hasProgressDeadline(d) {
		removeCondition(&status, appsv1.DeploymentProgressing)
	}
	cur := getCondition(d.Status, appsv1.DeploymentProgressing)
	complete := status.Replicas == status.UpdatedReplicas && cur != nil && cur.Reason == NewRSAvailableReason
	if hasProgressDeadline(d) && !complete {
		switch {
		case deploymentComplete(d, &status):
			msg := fmt.Sprintf("Deployment %q has successfully progressed.", d.Name)
			if newRS != nil {
				msg = fmt.Sprintf("ReplicaSet %q has successfully progressed.", newRS.Name)
			}
			setCondition(&status, newCondition(r.now(), appsv1.DeploymentProgressing, corev1.ConditionTrue, NewRSAvailableReason, msg))
		case deploymentProgressing(d, &status):
			msg := fmt.Sprintf("Deployment %q is progressing.", d.Name)
			if newRS != nil {
				msg = fmt.Sprintf("ReplicaSet %q is progressing.", newRS.Name)
			}
			c := newCondition(r.now(), appsv1.DeploymentProgressing, corev1.ConditionTrue, ReplicaSetUpdatedReason, msg)
			// Progress always moves lastUpdateTime, even with the same
			// reason; a True condition keeps its lastTransitionTime.
			if cur != nil {
				if cur.Status == corev1.ConditionTrue {
					c.LastTransitionTime = cur.LastTransitionTime
				}
				removeCondition(&status, appsv1.DeploymentProgressing)
			}
			setCondition(&status, c)
		case deploymentTimedOut(d, &status, r.now()):
			msg := fmt.Sprintf("Deployment %q has timed out progressing.", d.Name)
			if newRS != nil {
				msg = fmt.Sprintf("ReplicaSet %q has timed out progressing.", newRS.Name)
			}
			setCondition(&status, newCondition(r.now(), appsv1.DeploymentProgressing, corev1.ConditionFalse, TimedOutReason, msg))
		}
	}
	if failures := replicaFailures(all, newRS); len(failures) > 0 {
		setCondition(&status, failures[0])
	} else {
		removeCondition(&status, appsv1.DeploymentReplicaFailure)
	}
	if reflect.DeepEqual(d.Status, status) {
		return r.requeueStuckDeployment(ctx, d, status), nil
	}
	d.Status = status
	return ctrl.Result{}, r.updateStatus(ctx, d)
}

// replicaFailures are the new ReplicaSet's ReplicaFailure conditions, else
// the other ReplicaSets'.
func replicaFailures(all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) []appsv1.DeploymentCondition {
	collect := func(rss []*appsv1.ReplicaSet) []appsv1.DeploymentCondition {
		var out []appsv1.DeploymentCondition
		for _, rs := range rss {
			if rs == nil {
				continue
			}
			for _, c := range rs.Status.Conditions {
				if c.Type == appsv1.ReplicaSetReplicaFailure {
					out = append(out, replicaSetToDeploymentCondition(c))
				}
			}
		}
		return out
	}
	if out := collect([]*appsv1.ReplicaSet{newRS}); len(out) > 0 {
		return out
	}
	return collect(all)
}

// requeueStuckDeployment: a rollout without progress is synced again when
// its deadline (the Progressing condition's lastUpdateTime plus
// progressDeadlineSeconds) passes, a second late against clock skew; one
// due within a second is requeued rate-limited.
func (r *Reconciler) requeueStuckDeployment(ctx context.Context, d *appsv1.Deployment, status appsv1.DeploymentStatus) ctrl.Result {
	cur := getCondition(d.Status, appsv1.DeploymentProgressing)
	if !hasProgressDeadline(d) || cur == nil || deploymentComplete(d, &status) || cur.Reason == TimedOutReason {
		return ctrl.Result{}
	}
	after := cur.LastUpdateTime.Add(time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second).Sub(r.now())
	logger := klog.FromContext(ctx)
	if after < time.Second {
		logger.V(4).Info("Queueing up deployment for a progress check now")
		return ctrl.Result{Requeue: true}
	}
	logger.V(4).Info("Queueing up deployment for a progress check", "queueAfter", int(after.Seconds()))
	return ctrl.Result{RequeueAfter: after + time.Second}
}
