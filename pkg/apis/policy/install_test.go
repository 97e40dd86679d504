package policy_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
	"github.com/skiff-dev/skiff/pkg/apis/policy"
)

// policy/v1 has no defaulters upstream.
func TestPolicyIsNotDefaulted(t *testing.T) {
	pdb := `{"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p"}, "spec": {"maxUnavailable": 1, "selector": {}}}`
	eviction := `{"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "pod-1", "namespace": "ns"}, "deleteOptions": {"gracePeriodSeconds": 5}}`
	apitesting.RunDefaultingCases(t, []apitesting.DefaultingCase{{Name: "pdb", In: pdb, Want: pdb}, {Name: "eviction", In: eviction, Want: eviction}})
}

func TestStripV1beta1SelectorLabel(t *testing.T) {
	exists := metav1.LabelSelectorRequirement{Key: policy.V1beta1SelectorLabel, Operator: metav1.LabelSelectorOpExists}
	other := metav1.LabelSelectorRequirement{Key: "app", Operator: metav1.LabelSelectorOpExists}
	cases := []struct {
		name    string
		in, out *metav1.LabelSelector
	}{
		{"nil", nil, nil},
		{"match none stays", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{exists}},
			&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{exists}}},
		{"label dropped", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{other, exists}},
			&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{other}}},
		{"other expressions stay", &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}, MatchExpressions: []metav1.LabelSelectorRequirement{other}},
			&metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}, MatchExpressions: []metav1.LabelSelectorRequirement{other}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			policy.StripV1beta1SelectorLabel(tc.in)
			if d := cmp.Diff(tc.out, tc.in); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
