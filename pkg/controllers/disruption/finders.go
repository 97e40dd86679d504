package disruption

import (
	"context"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/scale"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"
)

// controllerScale is a pod controller and its desired replicas.
type controllerScale struct {
	uid   types.UID
	scale int32
}

// finder finds the controller a controllerRef names; nil if it is not of
// the finder's kind or does not exist (with that UID).
type finder func(ctx context.Context, ref *metav1.OwnerReference, namespace string) (*controllerScale, error)

// finders are upstream's, in its order: the workload kinds read from the
// cache, then any kind through its scale subresource.
func (r *Reconciler) finders() []finder {
	return []finder{r.replicationController, r.deployment, r.replicaSet, r.statefulSet, r.scaleSubresource}
}

var appsGroups = []string{"apps", "extensions"}

// isKind says whether ref is of kind in one of groups; an apiVersion that
// does not parse is an error.
func isKind(ref *metav1.OwnerReference, kind string, groups []string) (bool, error) {
	group, err := groupOf(ref.APIVersion)
	if err != nil {
		return false, err
	}
	return ref.Kind == kind && slices.Contains(groups, group), nil
}

// workload finds the cache's object of kind in groups that ref names
// (with its UID), unless skip says it does not count; its scale is
// replicas' (1 if unset).
func workload[T ctrl.Object](ctx context.Context, r *Reconciler, ref *metav1.OwnerReference, namespace, kind string, groups []string,
	obj T, replicas func(T) *int32, skip func(T) bool) (*controllerScale, error) {
	if ok, err := isKind(ref, kind, groups); !ok || err != nil {
		return nil, err
	}
	if err := r.Client.Get(ctx, ctrl.ObjectKey{Namespace: namespace, Name: ref.Name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	if obj.GetUID() != ref.UID || skip != nil && skip(obj) {
		return nil, nil
	}
	return &controllerScale{obj.GetUID(), ptr.Deref(replicas(obj), 1)}, nil
}

func (r *Reconciler) replicationController(ctx context.Context, ref *metav1.OwnerReference, namespace string) (*controllerScale, error) {
	return workload(ctx, r, ref, namespace, "ReplicationController", []string{""}, &corev1.ReplicationController{},
		func(rc *corev1.ReplicationController) *int32 { return rc.Spec.Replicas }, nil)
}

// deployment is the Deployment of the pod's ReplicaSet.
func (r *Reconciler) deployment(ctx context.Context, ref *metav1.OwnerReference, namespace string) (*controllerScale, error) {
	var dref *metav1.OwnerReference
	rs, err := workload(ctx, r, ref, namespace, "ReplicaSet", appsGroups, &appsv1.ReplicaSet{},
		func(rs *appsv1.ReplicaSet) *int32 { return rs.Spec.Replicas },
		func(rs *appsv1.ReplicaSet) bool { dref = metav1.GetControllerOf(rs); return dref == nil })
	if rs == nil || err != nil {
		return nil, err
	}
	return workload(ctx, r, dref, namespace, "Deployment", appsGroups, &appsv1.Deployment{},
		func(d *appsv1.Deployment) *int32 { return d.Spec.Replicas }, nil)
}

// replicaSet is a ReplicaSet no Deployment controls.
func (r *Reconciler) replicaSet(ctx context.Context, ref *metav1.OwnerReference, namespace string) (*controllerScale, error) {
	return workload(ctx, r, ref, namespace, "ReplicaSet", appsGroups, &appsv1.ReplicaSet{},
		func(rs *appsv1.ReplicaSet) *int32 { return rs.Spec.Replicas },
		func(rs *appsv1.ReplicaSet) bool {
			c := metav1.GetControllerOf(rs)
			return c != nil && c.Kind == "Deployment"
		})
}

func (r *Reconciler) statefulSet(ctx context.Context, ref *metav1.OwnerReference, namespace string) (*controllerScale, error) {
	return workload(ctx, r, ref, namespace, "StatefulSet", []string{"apps"}, &appsv1.StatefulSet{},
		func(ss *appsv1.StatefulSet) *int32 { return ss.Spec.Replicas }, nil)
}

// scaleSubresource reads the controller's /scale (custom resources and
// the like).
func (r *Reconciler) scaleSubresource(ctx context.Context, ref *metav1.OwnerReference, namespace string) (*controllerScale, error) {
	if r.Scales == nil || r.Mapper == nil {
		return nil, nil
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, err
	}
	mapping, err := r.Mapper.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: ref.Kind}, gv.Version)
	if err != nil {
		return nil, err
	}
	gr := mapping.Resource.GroupResource()
	s, err := r.Scales.Scales(namespace).Get(ctx, gr, ref.Name, metav1.GetOptions{})
	if err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, err
		}
		// Either the object is missing or its resource has no /scale.
		has, err := r.implementsScale(ctx, mapping.Resource)
		if err != nil {
			return nil, err
		}
		if !has {
			return nil, fmt.Errorf("%s does not implement the scale subresource", gr.String())
		}
		return nil, nil
	}
	if s.UID != ref.UID {
		return nil, nil
	}
	return &controllerScale{s.UID, s.Spec.Replicas}, nil
}

func (r *Reconciler) implementsScale(ctx context.Context, gvr schema.GroupVersionResource) (bool, error) {
	if r.Discovery == nil {
		return false, nil
	}
	list, err := r.Discovery.ServerResourcesForGroupVersion(gvr.GroupVersion().String())
	if err != nil {
		return false, err
	}
	name := gvr.Resource + "/scale"
	for _, res := range list.APIResources {
		if res.Name != name || res.Kind != "Scale" {
			continue
		}
		for _, sgv := range scale.NewScaleConverter().ScaleVersions() {
			if res.Group == sgv.Group && res.Version == sgv.Version {
				return true, nil
			}
		}
	}
	return false, nil
}
