package validation

import (
	"testing"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

func TestValidatePodDisruptionBudget(t *testing.T) {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	cases := []struct {
		name string
		spec policyv1.PodDisruptionBudgetSpec
		want []string
	}{
		{"min available", policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(1)), Selector: sel}, nil},
		{"max unavailable percent", policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromString("100%")), Selector: &metav1.LabelSelector{}}, nil},
		{"no selector", policyv1.PodDisruptionBudgetSpec{UnhealthyPodEvictionPolicy: ptr.To(policyv1.AlwaysAllow)}, nil},
		{"both set", policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromString("120%")), MaxUnavailable: ptr.To(intstr.FromInt32(-1))},
			[]string{"Invalid spec", "Invalid spec.minAvailable", "Invalid spec.maxUnavailable"}},
		{"not a percentage", policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromString("half"))}, []string{"Invalid spec.minAvailable"}},
		{"eviction policy", policyv1.PodDisruptionBudgetSpec{UnhealthyPodEvictionPolicy: ptr.To[policyv1.UnhealthyPodEvictionPolicyType]("Sometimes")},
			[]string{"NotSupported spec.unhealthyPodEvictionPolicy"}},
		{"bad selector", policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "In"}}}},
			[]string{"Required spec.selector.matchExpressions[0].values"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			apitesting.ExpectFieldErrors(t, ValidatePodDisruptionBudget(&policyv1.PodDisruptionBudget{Spec: tc.spec}), tc.want...)
		})
	}
}

func TestValidatePodDisruptionBudgetUpdate(t *testing.T) {
	invalidValue := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "In", Values: []string{"not valid!"}}}}
	old := &policyv1.PodDisruptionBudget{Spec: policyv1.PodDisruptionBudgetSpec{Selector: invalidValue}}
	apitesting.ExpectFieldErrors(t, ValidatePodDisruptionBudget(old), "Invalid spec.selector.matchExpressions[0].values[0]")
	apitesting.ExpectFieldErrors(t, ValidatePodDisruptionBudgetUpdate(old.DeepCopy(), old))

	pdb := old.DeepCopy()
	pdb.Status = policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: -1, ExpectedPods: -2, Conditions: []metav1.Condition{{Type: "", Status: "Maybe"}}}
	apitesting.ExpectFieldErrors(t, ValidatePodDisruptionBudgetUpdate(pdb, old),
		"Invalid status.disruptionsAllowed", "Invalid status.expectedPods",
		"Required status.conditions[0].type", "NotSupported status.conditions[0].status",
		"Required status.conditions[0].lastTransitionTime", "Required status.conditions[0].reason")
}
