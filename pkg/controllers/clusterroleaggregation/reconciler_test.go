package clusterroleaggregation

import (
	"context"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestReconcileAggregates(t *testing.T) {
	rule := func(resource string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{resource}}
	}
	labeled := func(name string, rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
		return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"agg": "true"}}, Rules: rules}
	}
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "view"}, Rules: []rbacv1.PolicyRule{rule("stale")},
			AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"agg": "true"}}}}},
		labeled("b", rule("pods"), rule("services")),
		labeled("a", rule("configmaps"), rule("pods")),
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "unlabeled"}, Rules: []rbacv1.PolicyRule{rule("secrets")}},
	).Build()
	r := &Reconciler{Client: c}
	if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Name: "view"}}); err != nil {
		t.Fatal(err)
	}
	var view rbacv1.ClusterRole
	if err := c.Get(context.Background(), client.ObjectKey{Name: "view"}, &view); err != nil {
		t.Fatal(err)
	}
	want := []rbacv1.PolicyRule{rule("configmaps"), rule("pods"), rule("services")}
	if !equality.Semantic.DeepEqual(view.Rules, want) {
		t.Errorf("rules %v, want %v", view.Rules, want)
	}
	if reqs := r.aggregatedRoles(context.Background(), nil); len(reqs) != 1 || reqs[0].Name != "view" {
		t.Errorf("aggregated roles %v", reqs)
	}
}
