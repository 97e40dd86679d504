// Package scheduling builds the storage of scheduling.k8s.io/v1
// priorityclasses. The system priority classes are created at start by a
// post-start hook of the server (pkg/controlplane/priorityclasses); here they are protected
// from deletion.
package scheduling

import (
	"context"
	"errors"

	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"

	corevalidation "github.com/skiff-dev/skiff/pkg/apis/core/validation"
	schedulingapi "github.com/skiff-dev/skiff/pkg/apis/scheduling"
	schedulingvalidation "github.com/skiff-dev/skiff/pkg/apis/scheduling/validation"
	"github.com/skiff-dev/skiff/pkg/registry/store"
)

// Resource is priorityclasses' group and resource.
var Resource = schema.GroupResource{Group: schedulingv1.GroupName, Resource: "priorityclasses"}

// Resources describes every scheduling.k8s.io/v1 resource. As upstream,
// metadata.generation is 1 from creation on and never counts up.
var Resources = []store.Resource{
	{Resource: Resource, Singular: "priorityclass", ShortNames: []string{"pc"},
		PrepareForCreate: func(obj runtime.Object) {
			if m, err := meta.Accessor(obj); err == nil {
				m.SetGeneration(1)
			}
		},
		New: func() runtime.Object { return &schedulingv1.PriorityClass{} }, NewList: func() runtime.Object { return &schedulingv1.PriorityClassList{} },
		Validate: corevalidation.ForCreate(schedulingvalidation.ValidatePriorityClass), ValidateUpdate: corevalidation.ForUpdate(schedulingvalidation.ValidatePriorityClassUpdate)},
}

// Storage returns the scheduling.k8s.io/v1 storage map.
func Storage(optsGetter generic.RESTOptionsGetter) (map[string]rest.Storage, error) {
	m, err := store.Build(Resources, optsGetter)
	if err != nil {
		return nil, err
	}
	m[Resource.Resource] = &priorityClassREST{REST: m[Resource.Resource].(*store.REST)}
	return m, nil
}

// priorityClassREST refuses to delete the system priority classes. As
// upstream, a DELETE of the collection does not go through this check.
type priorityClassREST struct {
	*store.REST
}

// Delete deletes a priority class unless it is a system one.
func (r *priorityClassREST) Delete(ctx context.Context, name string, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions) (runtime.Object, bool, error) {
	if schedulingapi.IsSystemPriorityClassName(name) {
		return nil, false, apierrors.NewForbidden(Resource, name, errors.New("this is a system priority class and cannot be deleted"))
	}
	return r.REST.Delete(ctx, name, deleteValidation, options)
}
