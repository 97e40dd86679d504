// Package coordination builds the storage of coordination.k8s.io/v1 leases.
package coordination

import (
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	coordinationvalidation "github.com/skiff-dev/skiff/pkg/apis/coordination/validation"
	corevalidation "github.com/skiff-dev/skiff/pkg/apis/core/validation"
	"github.com/skiff-dev/skiff/pkg/registry/store"
)

// Resources describes every coordination.k8s.io/v1 resource.
var Resources = []store.Resource{
	{Resource: schema.GroupResource{Group: coordinationv1.GroupName, Resource: "leases"}, Singular: "lease", Namespaced: true, AllowCreateOnUpdate: true,
		New: func() runtime.Object { return &coordinationv1.Lease{} }, NewList: func() runtime.Object { return &coordinationv1.LeaseList{} },
		Validate: corevalidation.ForCreate(coordinationvalidation.ValidateLease)},
}
