package controllers

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/skiff-dev/skiff/pkg/authorizer/rbac/bootstrap"
)

// TestEveryControllerHasItsRole: each controller identity is bound, by the
// bootstrap policy, to its system:controller:<name> role, so that with
// --use-service-account-credentials no controller runs without rights.
func TestEveryControllerHasItsRole(t *testing.T) {
	bound := map[string]string{}
	for _, b := range bootstrap.ClusterRoleBindings() {
		for _, s := range b.Subjects {
			if s.Kind == rbacv1.ServiceAccountKind && s.Namespace == "kube-system" {
				bound[s.Name] = b.RoleRef.Name
			}
		}
	}
	for _, list := range bootstrap.RoleBindings() {
		for _, b := range list {
			for _, s := range b.Subjects {
				if s.Kind == rbacv1.ServiceAccountKind && s.Namespace == "kube-system" && b.RoleRef.Name == bootstrap.ControllerRolePrefix+s.Name {
					bound[s.Name] = b.RoleRef.Name
				}
			}
		}
	}
	seen := map[string]bool{}
	for _, c := range controllerSetups(nil, Options{}) {
		if rootIdentities[c.name] {
			// Runs with the manager's credentials, as upstream's.
			continue
		}
		if seen[c.name] {
			t.Errorf("identity %s set up twice: its clients would not be shared", c.name)
		}
		seen[c.name] = true
		if bound[c.name] != bootstrap.ControllerRolePrefix+c.name {
			t.Errorf("ServiceAccount kube-system/%s is bound to %q, want %s", c.name, bound[c.name], bootstrap.ControllerRolePrefix+c.name)
		}
	}
}
