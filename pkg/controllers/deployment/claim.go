package deployment

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// claimReplicaSets are the ReplicaSets of d's namespace that d controls
// once orphans its selector matches are adopted and those it controls
// that no longer match are released, as upstream's ClaimReplicaSets. The
// list holds copies the caller may change.
func (r *Reconciler) claimReplicaSets(ctx context.Context, d *appsv1.Deployment) ([]*appsv1.ReplicaSet, error) {
	var list appsv1.ReplicaSetList
	if err := r.Client.List(ctx, &list, client.InNamespace(d.Namespace)); err != nil {
		return nil, err
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("deployment %s/%s has invalid label selector: %v", d.Namespace, d.Name, err)
	}
	// Before the first adoption, a live read makes sure d is not being
	// deleted (the cache may not know yet).
	var once sync.Once
	var canAdopt error
	checkCanAdopt := func() error {
		once.Do(func() {
			fresh, err := r.Core.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
			switch {
			case err != nil:
				canAdopt = fmt.Errorf("can't recheck DeletionTimestamp: %v", err)
			case fresh.UID != d.UID:
				canAdopt = fmt.Errorf("can't recheck DeletionTimestamp: original Deployment %v/%v is gone: got uid %v, wanted %v", d.Namespace, d.Name, fresh.UID, d.UID)
			case fresh.DeletionTimestamp != nil:
				canAdopt = fmt.Errorf("%v/%v has just been deleted at %v", d.Namespace, d.Name, fresh.DeletionTimestamp)
			}
		})
		return canAdopt
	}
	var claimed []*appsv1.ReplicaSet
	var errs []error
	for i := range list.Items {
		rs := &list.Items[i]
		if rs.Spec.Replicas == nil {
			rs.Spec.Replicas = ptr.To[int32](1)
		}
		matches := sel.Matches(labels.Set(rs.Labels))
		ref := metav1.GetControllerOfNoCopy(rs)
		switch {
		case ref != nil && ref.UID != d.UID:
			// Someone else's.
		case ref != nil && matches:
			claimed = append(claimed, rs)
		case ref != nil:
			if d.DeletionTimestamp != nil {
				continue
			}
			if err := r.releaseReplicaSet(ctx, d, rs); err != nil {
				errs = append(errs, err)
			}
		case !matches || d.DeletionTimestamp != nil || rs.DeletionTimestamp != nil:
		default:
			if err := checkCanAdopt(); err != nil {
				errs = append(errs, fmt.Errorf("can't adopt ReplicaSet %v/%v (%v): %v", rs.Namespace, rs.Name, rs.UID, err))
				continue
			}
			switch err := r.adoptReplicaSet(ctx, d, rs); {
			case apierrors.IsNotFound(err):
			case err != nil:
				errs = append(errs, err)
			default:
				claimed = append(claimed, rs)
			}
		}
	}
	return claimed, utilerrors.NewAggregate(errs)
}

// adoptReplicaSet makes d rs's controller, by a patch that fails if rs was
// replaced (uid) or has another controller (validation).
func (r *Reconciler) adoptReplicaSet(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": []metav1.OwnerReference{*metav1.NewControllerRef(d, controllerKind)},
		"uid":             rs.UID,
	}})
	if err != nil {
		return err
	}
	_, err = r.Core.AppsV1().ReplicaSets(rs.Namespace).Patch(ctx, rs.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	return err
}

// releaseReplicaSet removes d's ownerReference from rs; rs gone, replaced
// or already released is no error.
func (r *Reconciler) releaseReplicaSet(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet) error {
	klog.FromContext(ctx).V(2).Info("Patching ReplicaSet to remove its controllerRef", "replicaSet", klog.KObj(rs),
		"gvk", controllerKind, "controller", d.Name)
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": []map[string]string{{"$patch": "delete", "uid": string(d.UID)}},
		"uid":             rs.UID,
	}})
	if err != nil {
		return err
	}
	_, err = r.Core.AppsV1().ReplicaSets(rs.Namespace).Patch(ctx, rs.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsInvalid(err) {
		return nil
	}
	return err
}
