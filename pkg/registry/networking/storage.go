// Package networking builds the storage of the networking.k8s.io/v1
// resources served so far: networkpolicies, ingresses and ingressclasses.
// (Upstream keeps ingresses under the etcd prefix "ingress"; the server's
// storage factory maps that.)
package networking

import (
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	corevalidation "github.com/skiff-dev/skiff/pkg/apis/core/validation"
	networkingvalidation "github.com/skiff-dev/skiff/pkg/apis/networking/validation"
	"github.com/skiff-dev/skiff/pkg/registry/store"
)

func gr(resource string) schema.GroupResource {
	return schema.GroupResource{Group: networkingv1.GroupName, Resource: resource}
}

// Resources describes the served networking.k8s.io/v1 resources. All three
// count metadata.generation from 1 on spec changes, as upstream.
var Resources = []store.Resource{
	{Resource: gr("networkpolicies"), Singular: "networkpolicy", Namespaced: true, ShortNames: []string{"netpol"}, Generation: store.GenerationOnSpec,
		New: func() runtime.Object { return &networkingv1.NetworkPolicy{} }, NewList: func() runtime.Object { return &networkingv1.NetworkPolicyList{} },
		Validate: corevalidation.ForCreate(networkingvalidation.ValidateNetworkPolicy), ValidateUpdate: corevalidation.ForUpdate(networkingvalidation.ValidateNetworkPolicyUpdate)},
	{Resource: gr("ingresses"), Singular: "ingress", Namespaced: true, ShortNames: []string{"ing"}, Generation: store.GenerationOnSpec, HasStatus: true,
		New: func() runtime.Object { return &networkingv1.Ingress{} }, NewList: func() runtime.Object { return &networkingv1.IngressList{} },
		Validate: corevalidation.ForCreate(networkingvalidation.ValidateIngress), ValidateUpdate: corevalidation.ForUpdate(networkingvalidation.ValidateIngressUpdate),
		ValidateStatusUpdate: corevalidation.ForUpdate(networkingvalidation.ValidateIngressStatusUpdate)},
	{Resource: gr("ingressclasses"), Singular: "ingressclass", Generation: store.GenerationOnSpec,
		New: func() runtime.Object { return &networkingv1.IngressClass{} }, NewList: func() runtime.Object { return &networkingv1.IngressClassList{} },
		Validate: corevalidation.ForCreate(networkingvalidation.ValidateIngressClass), ValidateUpdate: corevalidation.ForUpdate(networkingvalidation.ValidateIngressClassUpdate)},
}
