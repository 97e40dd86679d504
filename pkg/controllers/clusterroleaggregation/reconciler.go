// Package clusterroleaggregation fills the rules of every ClusterRole with
// an aggregationRule from the ClusterRoles its selectors match, as
// upstream's clusterrole-aggregation controller: the union of their rules,
// in name order, without duplicates. This is how the admin, edit and view
// roles get their rules, and how a ClusterRole labeled
// rbac.authorization.k8s.io/aggregate-to-view: "true" extends view.
package clusterroleaggregation

import (
	"context"
	"sort"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Reconciler keeps aggregated ClusterRoles' rules.
type Reconciler struct {
	// Client reads through the manager's cache and writes to the API.
	Client client.Client
}

// SetupWithManager registers the reconciler: any ClusterRole change
// re-checks every aggregated ClusterRole.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).Named("clusterrole-aggregation").
		Watches(&rbacv1.ClusterRole{}, handler.EnqueueRequestsFromMapFunc(r.aggregatedRoles)).
		Complete(r)
}

// aggregatedRoles are the requests for every ClusterRole with an
// aggregationRule.
func (r *Reconciler) aggregatedRoles(ctx context.Context, _ client.Object) []reconcile.Request {
	var list rbacv1.ClusterRoleList
	if err := r.Client.List(ctx, &list); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, role := range list.Items {
		if role.AggregationRule != nil {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: role.Name}})
		}
	}
	return out
}

// Reconcile sets one aggregated ClusterRole's rules.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	role := &rbacv1.ClusterRole{}
	if err := r.Client.Get(ctx, req.NamespacedName, role); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if role.AggregationRule == nil {
		return ctrl.Result{}, nil
	}
	rules := []rbacv1.PolicyRule{}
	for i := range role.AggregationRule.ClusterRoleSelectors {
		selector, err := metav1.LabelSelectorAsSelector(&role.AggregationRule.ClusterRoleSelectors[i])
		if err != nil {
			// An invalid selector matches nothing; the API validates them.
			continue
		}
		var matched rbacv1.ClusterRoleList
		if err := r.Client.List(ctx, &matched, client.MatchingLabelsSelector{Selector: selector}); err != nil {
			return ctrl.Result{}, err
		}
		sort.Slice(matched.Items, func(i, j int) bool { return matched.Items[i].Name < matched.Items[j].Name })
		for _, m := range matched.Items {
			if m.Name == role.Name {
				continue
			}
			for _, rule := range m.Rules {
				if !ruleExists(rules, rule) {
					rules = append(rules, rule)
				}
			}
		}
	}
	if equality.Semantic.DeepEqual(rules, role.Rules) {
		return ctrl.Result{}, nil
	}
	updated := role.DeepCopy()
	updated.Rules = rules
	// A conflict requeues the request, which then reads the newer object.
	return ctrl.Result{}, r.Client.Update(ctx, updated)
}

func ruleExists(rules []rbacv1.PolicyRule, rule rbacv1.PolicyRule) bool {
	for _, r := range rules {
		if equality.Semantic.DeepEqual(r, rule) {
			return true
		}
	}
	return false
}
