package deployment

import (
	"context"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// rollback handles the deprecated.deployment.rollback.to annotation (what
// extensions/v1beta1's rollback subresource left): the Deployment gets the
// template of the ReplicaSet of that revision (0: the previous one), and
// the annotation is removed. (kubectl rollout undo patches the template
// itself and needs none of this.)
func (r *Reconciler) rollback(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	logger := klog.FromContext(ctx)
	newRS, oldRSs, err := r.replicaSetsAndSyncRevision(ctx, d, rsList, true)
	if err != nil {
		return err
	}
	all := append(oldRSs, newRS)
	to := *rollbackTo(d)
	if to == 0 {
		if to = lastRevision(all); to == 0 {
			r.Recorder.Eventf(d, corev1.EventTypeWarning, RollbackRevisionNotFound, "%s", "Unable to find last revision.")
			return r.clearRollbackTo(ctx, d)
		}
	}
	for _, rs := range all {
		if rs == nil {
			continue
		}
		v, err := revision(rs.Annotations)
		if err != nil {
			logger.V(4).Info("Unable to extract revision from deployment's replica set", "replicaSet", klog.KObj(rs), "err", err)
			continue
		}
		if v != to {
			continue
		}
		logger.V(4).Info("Found replica set with desired revision", "replicaSet", klog.KObj(rs), "revision", v)
		if equalIgnoreHash(&d.Spec.Template, &rs.Spec.Template) {
			logger.V(4).Info("Rolling back to a revision that contains the same template as current deployment, skipping rollback...")
			r.Recorder.Eventf(d, corev1.EventTypeWarning, RollbackTemplateUnchanged, "%s",
				fmt.Sprintf("The rollback revision contains the same template as current deployment %q", d.Name))
			return r.clearRollbackTo(ctx, d)
		}
		logger.V(4).Info("Rolling back deployment to old template spec", "templateSpec", rs.Spec.Template.Spec)
		setFromReplicaSetTemplate(d, rs.Spec.Template)
		// The annotations go back too (e.g. kubernetes.io/change-cause),
		// or the Deployment's current ones would land on the old template.
		setDeploymentAnnotationsTo(d, rs)
		if err := r.clearRollbackTo(ctx, d); err != nil {
			return err
		}
		r.Recorder.Eventf(d, corev1.EventTypeNormal, RollbackDone, "%s", fmt.Sprintf("Rolled back deployment %q to revision %d", d.Name, to))
		return nil
	}
	r.Recorder.Eventf(d, corev1.EventTypeWarning, RollbackRevisionNotFound, "%s", "Unable to find the revision to rollback to.")
	return r.clearRollbackTo(ctx, d)
}

func (r *Reconciler) clearRollbackTo(ctx context.Context, d *appsv1.Deployment) error {
	klog.FromContext(ctx).V(4).Info("Cleans up rollbackTo of deployment")
	delete(d.Annotations, appsv1.DeprecatedRollbackTo)
	return r.update(ctx, d)
}

// rollbackTo is the revision the deprecated annotation asks for; nil if
// none or not a number.
func rollbackTo(d *appsv1.Deployment) *int64 {
	v := d.Annotations[appsv1.DeprecatedRollbackTo]
	if v == "" {
		return nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil
	}
	return &n
}
