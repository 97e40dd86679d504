// Package discovery builds the storage of discovery.k8s.io/v1 endpointslices.
package discovery

import (
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	corevalidation "github.com/skiff-dev/skiff/pkg/apis/core/validation"
	discoveryvalidation "github.com/skiff-dev/skiff/pkg/apis/discovery/validation"
	"github.com/skiff-dev/skiff/pkg/registry/store"
)

// Resources describes every discovery.k8s.io/v1 resource.
var Resources = []store.Resource{
	{Resource: schema.GroupResource{Group: discoveryv1.GroupName, Resource: "endpointslices"}, Singular: "endpointslice", Namespaced: true, Generation: store.GenerationOnContentAndLabels,
		New: func() runtime.Object { return &discoveryv1.EndpointSlice{} }, NewList: func() runtime.Object { return &discoveryv1.EndpointSliceList{} },
		Validate: corevalidation.ForCreate(discoveryvalidation.ValidateEndpointSlice), ValidateUpdate: corevalidation.ForUpdate(discoveryvalidation.ValidateEndpointSliceUpdate),
		Warnings: discoveryvalidation.EndpointSliceWarnings},
}
