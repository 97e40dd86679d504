package validation

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

func TestValidateRole(t *testing.T) {
	cases := []struct {
		name  string
		rules []rbacv1.PolicyRule
		want  []string
	}{
		{"empty", nil, nil},
		{"resource rule", []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}}, nil},
		{"no verbs", []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}}}, []string{"Required rules[0].verbs"}},
		{"no groups or resources", []rbacv1.PolicyRule{{Verbs: []string{"get"}}},
			[]string{"Required rules[0].apiGroups", "Required rules[0].resources"}},
		{"non-resource URL in a namespaced rule", []rbacv1.PolicyRule{{}, {NonResourceURLs: []string{"/x"}, Resources: []string{"pods"}, Verbs: []string{"get"}}},
			[]string{"Required rules[0].verbs", "Required rules[0].apiGroups", "Required rules[0].resources",
				"Invalid rules[1].nonResourceURLs", "Invalid rules[1].nonResourceURLs"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			apitesting.ExpectFieldErrors(t, ValidateRole(&rbacv1.Role{Rules: tc.rules}), tc.want...)
		})
	}
}

func TestValidateClusterRole(t *testing.T) {
	sel := func(s ...metav1.LabelSelector) *rbacv1.AggregationRule {
		return &rbacv1.AggregationRule{ClusterRoleSelectors: s}
	}
	cases := []struct {
		name string
		role rbacv1.ClusterRole
		want []string
	}{
		{"non-resource URLs", rbacv1.ClusterRole{Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}, nil},
		{"aggregation", rbacv1.ClusterRole{AggregationRule: sel(metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}})}, nil},
		{"aggregation without selectors", rbacv1.ClusterRole{AggregationRule: sel()}, []string{"Required aggregationRule.clusterRoleSelectors"}},
		{"bad selector", rbacv1.ClusterRole{AggregationRule: sel(metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "In"}}})},
			[]string{"Required aggregationRule.clusterRoleSelectors[0].matchExpressions[0].values", "Invalid aggregationRule.clusterRoleSelectors[0]"}},
		{"mixed rule", rbacv1.ClusterRole{Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/x"}, APIGroups: []string{""}, Verbs: []string{"get"}}}},
			[]string{"Invalid rules[0].nonResourceURLs"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			apitesting.ExpectFieldErrors(t, ValidateClusterRole(&tc.role), tc.want...)
		})
	}

	// As upstream, an update tolerates the stored invalid label value in the
	// selector's own validation, but the selector still does not convert.
	t.Run("update with a stored invalid label value", func(t *testing.T) {
		bad := rbacv1.ClusterRole{AggregationRule: sel(metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "a", Operator: metav1.LabelSelectorOpIn, Values: []string{"not valid!"}}}})}
		apitesting.ExpectFieldErrors(t, ValidateClusterRole(&bad),
			"Invalid aggregationRule.clusterRoleSelectors[0].matchExpressions[0].values[0]", "Invalid aggregationRule.clusterRoleSelectors[0]")
		apitesting.ExpectFieldErrors(t, ValidateClusterRoleUpdate(&bad, &bad), "Invalid aggregationRule.clusterRoleSelectors[0]")
	})
}

func TestValidateRoleBinding(t *testing.T) {
	ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "r"}
	cases := []struct {
		name     string
		ref      rbacv1.RoleRef
		subjects []rbacv1.Subject
		want     []string
	}{
		{"valid", ref, []rbacv1.Subject{
			{Kind: "User", APIGroup: rbacv1.GroupName, Name: "u"},
			{Kind: "Group", APIGroup: rbacv1.GroupName, Name: "system:authenticated"},
			{Kind: "ServiceAccount", Name: "default"},
		}, nil},
		{"cluster role ref", rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:view"}, nil, nil},
		{"bad ref", rbacv1.RoleRef{APIGroup: "example.com", Kind: "Secret"}, nil,
			[]string{"NotSupported roleRef.apiGroup", "NotSupported roleRef.kind", "Required roleRef.name"}},
		{"ref name with slash", rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "a/b"}, nil, []string{"Invalid roleRef.name"}},
		{"bad subjects", ref, []rbacv1.Subject{
			{Kind: "Robot", Name: "r2"},
			{Kind: "User", APIGroup: "example.com"},
			{Kind: "ServiceAccount", APIGroup: rbacv1.GroupName, Name: "Bad_SA"},
		}, []string{"NotSupported subjects[0].kind", "Required subjects[1].name", "NotSupported subjects[1].apiGroup",
			"Invalid subjects[2].name", "NotSupported subjects[2].apiGroup"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			apitesting.ExpectFieldErrors(t, ValidateRoleBinding(&rbacv1.RoleBinding{RoleRef: tc.ref, Subjects: tc.subjects}), tc.want...)
		})
	}
}

func TestValidateClusterRoleBinding(t *testing.T) {
	b := &rbacv1.ClusterRoleBinding{
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "r"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "default"}, {Kind: "ServiceAccount", Name: "x", Namespace: "ns"}},
	}
	apitesting.ExpectFieldErrors(t, ValidateClusterRoleBinding(b), "NotSupported roleRef.kind", "Required subjects[0].namespace")
}

func TestRoleRefIsImmutable(t *testing.T) {
	old := &rbacv1.RoleBinding{RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"}}
	changed := old.DeepCopy()
	changed.RoleRef.Name = "edit"
	apitesting.ExpectFieldErrors(t, ValidateRoleBindingUpdate(old.DeepCopy(), old))
	apitesting.ExpectFieldErrors(t, ValidateRoleBindingUpdate(changed, old), "Invalid roleRef")

	oldC := &rbacv1.ClusterRoleBinding{RoleRef: old.RoleRef}
	changedC := &rbacv1.ClusterRoleBinding{RoleRef: changed.RoleRef}
	apitesting.ExpectFieldErrors(t, ValidateClusterRoleBindingUpdate(changedC, oldC), "Invalid roleRef")
}

func TestValidateRBACName(t *testing.T) {
	for name, valid := range map[string]bool{"system:node:a": true, "Caps_OK": true, "a/b": false, "a%b": false, "..": false} {
		if got := len(ValidateRBACName(name, false)) == 0; got != valid {
			t.Errorf("ValidateRBACName(%q) valid = %v, want %v", name, got, valid)
		}
	}
}
