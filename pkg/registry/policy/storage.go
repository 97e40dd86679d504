// Package policy builds the storage of policy/v1 poddisruptionbudgets.
// (policy/v1 Eviction is the body of the core pods/eviction subresource.)
package policy

import (
	policyv1 "k8s.io/api/policy/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	corevalidation "github.com/skiff-dev/skiff/pkg/apis/core/validation"
	policyapi "github.com/skiff-dev/skiff/pkg/apis/policy"
	policyvalidation "github.com/skiff-dev/skiff/pkg/apis/policy/validation"
	"github.com/skiff-dev/skiff/pkg/registry/store"
)

// Resources describes every policy/v1 resource.
var Resources = []store.Resource{
	{Resource: schema.GroupResource{Group: policyv1.GroupName, Resource: "poddisruptionbudgets"}, Singular: "poddisruptionbudget", Namespaced: true,
		ShortNames: []string{"pdb"}, HasStatus: true, Generation: store.GenerationOnSpec,
		PrepareForCreate: func(obj runtime.Object) {
			policyapi.StripV1beta1SelectorLabel(obj.(*policyv1.PodDisruptionBudget).Spec.Selector)
		},
		PrepareForUpdate: func(obj, old runtime.Object) {
			pdb, oldPDB := obj.(*policyv1.PodDisruptionBudget), old.(*policyv1.PodDisruptionBudget)
			if !apiequality.Semantic.DeepEqual(pdb.Spec.Selector, oldPDB.Spec.Selector) {
				policyapi.StripV1beta1SelectorLabel(pdb.Spec.Selector)
			}
		},
		New: func() runtime.Object { return &policyv1.PodDisruptionBudget{} }, NewList: func() runtime.Object { return &policyv1.PodDisruptionBudgetList{} },
		Validate: corevalidation.ForCreate(policyvalidation.ValidatePodDisruptionBudget), ValidateUpdate: corevalidation.ForUpdate(policyvalidation.ValidatePodDisruptionBudgetUpdate),
		ValidateStatusUpdate: corevalidation.ForUpdate(policyvalidation.ValidatePodDisruptionBudgetStatusUpdate)},
}
