// Package policy installs the policy/v1 types into a scheme:
// PodDisruptionBudgets, and Eviction, the body of pods/eviction.
package policy

import (
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-dev/skiff/pkg/apis/internalversion"
)

// Install registers policy/v1 and its internal version. policy/v1 has no
// defaulters upstream.
func Install(scheme *runtime.Scheme) error {
	return internalversion.Install(scheme, policyv1.AddToScheme, policyv1.SchemeGroupVersion, &policyv1.PodDisruptionBudget{})
}

// V1beta1SelectorLabel is the label key policy/v1beta1 used to tell an empty
// selector that matches nothing from one that matches everything.
const V1beta1SelectorLabel = "pdb.kubernetes.io/deprecated-v1beta1-empty-selector-match"

// StripV1beta1SelectorLabel removes V1beta1SelectorLabel requirements from a
// PDB selector unless the selector is exactly policy/v1's match-none form, as
// upstream's strategy does on create and on updates that change the
// selector.
func StripV1beta1SelectorLabel(sel *metav1.LabelSelector) {
	if sel == nil || len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 1 &&
		sel.MatchExpressions[0].Key == V1beta1SelectorLabel && sel.MatchExpressions[0].Operator == metav1.LabelSelectorOpExists &&
		len(sel.MatchExpressions[0].Values) == 0 {
		return
	}
	kept := sel.MatchExpressions[:0]
	for _, e := range sel.MatchExpressions {
		if e.Key != V1beta1SelectorLabel {
			kept = append(kept, e)
		}
	}
	sel.MatchExpressions = kept
}
