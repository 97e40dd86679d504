// Package scale serves the /scale subresource (autoscaling/v1 Scale) of a
// workload resource, reading and writing the replica count of the stored
// object.
package scale

import (
	"context"
	"fmt"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
)

// Replicas reads and writes a workload's replica count.
type Replicas struct {
	// Get returns spec replicas, status replicas and the label selector in string form.
	Get func(obj runtime.Object) (spec, status int32, selector string)
	Set func(obj runtime.Object, replicas int32)
}

// REST is the storage of a scale subresource.
type REST struct {
	store    *genericregistry.Store
	replicas Replicas
}

var (
	_ rest.Patcher                  = &REST{}
	_ rest.GroupVersionKindProvider = &REST{}
)

// New returns the scale storage over store.
func New(store *genericregistry.Store, replicas Replicas) *REST {
	return &REST{store: store, replicas: replicas}
}

// GroupVersionKind: the subresource speaks autoscaling/v1 Scale in every group.
func (r *REST) GroupVersionKind(schema.GroupVersion) schema.GroupVersionKind {
	return autoscalingv1.SchemeGroupVersion.WithKind("Scale")
}

// New returns an empty Scale.
func (r *REST) New() runtime.Object { return &autoscalingv1.Scale{} }

// Destroy does nothing: the main resource owns the storage.
func (r *REST) Destroy() {}

// Get returns the Scale of the named object.
func (r *REST) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	obj, err := r.store.Get(ctx, name, options)
	if err != nil {
		return nil, err
	}
	return r.toScale(obj)
}

// Update sets the replica count from the updated Scale.
func (r *REST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, _ bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	obj, _, err := r.store.Update(ctx, name, &updatedWorkload{rest: r, name: name, scaleInfo: objInfo}, createValidation, updateValidation, false, options)
	if err != nil {
		return nil, false, err
	}
	scale, err := r.toScale(obj)
	return scale, false, err
}

func (r *REST) toScale(obj runtime.Object) (*autoscalingv1.Scale, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	spec, status, selector := r.replicas.Get(obj)
	return &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{
			Name:              m.GetName(),
			Namespace:         m.GetNamespace(),
			UID:               m.GetUID(),
			ResourceVersion:   m.GetResourceVersion(),
			CreationTimestamp: m.GetCreationTimestamp(),
		},
		Spec:   autoscalingv1.ScaleSpec{Replicas: spec},
		Status: autoscalingv1.ScaleStatus{Replicas: status, Selector: selector},
	}, nil
}

// updatedWorkload turns the Scale a client sent into the updated workload.
type updatedWorkload struct {
	rest      *REST
	name      string
	scaleInfo rest.UpdatedObjectInfo
}

func (u *updatedWorkload) Preconditions() *metav1.Preconditions { return u.scaleInfo.Preconditions() }

func (u *updatedWorkload) UpdatedObject(ctx context.Context, oldObj runtime.Object) (runtime.Object, error) {
	oldScale, err := u.rest.toScale(oldObj)
	if err != nil {
		return nil, err
	}
	newObj, err := u.scaleInfo.UpdatedObject(ctx, oldScale)
	if err != nil {
		return nil, err
	}
	scale, ok := newObj.(*autoscalingv1.Scale)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("expected Scale, got %T", newObj))
	}
	if errs := validate(scale); len(errs) > 0 {
		return nil, apierrors.NewInvalid(autoscalingv1.SchemeGroupVersion.WithKind("Scale").GroupKind(), scale.Name, errs)
	}
	workload := oldObj.DeepCopyObject()
	m, err := meta.Accessor(workload)
	if err != nil {
		return nil, err
	}
	// A resourceVersion in the Scale is a precondition on the workload.
	if scale.ResourceVersion != "" {
		m.SetResourceVersion(scale.ResourceVersion)
	}
	u.rest.replicas.Set(workload, scale.Spec.Replicas)
	return workload, nil
}

func validate(scale *autoscalingv1.Scale) field.ErrorList {
	var errs field.ErrorList
	if scale.Spec.Replicas < 0 {
		errs = append(errs, field.Invalid(field.NewPath("spec", "replicas"), scale.Spec.Replicas, "must be greater than or equal to 0"))
	}
	return errs
}
