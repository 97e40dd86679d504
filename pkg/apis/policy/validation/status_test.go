package validation

import (
	"testing"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

func TestValidatePodDisruptionBudgetStatusUpdate(t *testing.T) {
	pdb := &policyv1.PodDisruptionBudget{Status: policyv1.PodDisruptionBudgetStatus{
		DisruptionsAllowed: -1, CurrentHealthy: -1, DesiredHealthy: -1, ExpectedPods: -1,
		Conditions: []metav1.Condition{{Type: "bad type", Status: "Maybe", Reason: "r", LastTransitionTime: metav1.Now()}},
	}}
	apitesting.ExpectFieldErrors(t, ValidatePodDisruptionBudgetStatusUpdate(pdb, pdb),
		"Invalid status.conditions[0].type", "NotSupported status.conditions[0].status",
		"Invalid status.disruptionsAllowed", "Invalid status.currentHealthy", "Invalid status.desiredHealthy", "Invalid status.expectedPods")
}
