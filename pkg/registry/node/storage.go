// Package node builds the storage of node.k8s.io/v1 runtimeclasses.
package node

import (
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	corevalidation "github.com/skiff-dev/skiff/pkg/apis/core/validation"
	nodevalidation "github.com/skiff-dev/skiff/pkg/apis/node/validation"
	"github.com/skiff-dev/skiff/pkg/registry/store"
)

// Resources describes every node.k8s.io/v1 resource.
var Resources = []store.Resource{
	{Resource: schema.GroupResource{Group: nodev1.GroupName, Resource: "runtimeclasses"}, Singular: "runtimeclass", AllowCreateOnUpdate: true,
		New: func() runtime.Object { return &nodev1.RuntimeClass{} }, NewList: func() runtime.Object { return &nodev1.RuntimeClassList{} },
		Validate: corevalidation.ForCreate(nodevalidation.ValidateRuntimeClass), ValidateUpdate: corevalidation.ForUpdate(nodevalidation.ValidateRuntimeClassUpdate)},
}
