package bootstrap

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"

	rbacvalidation "github.com/skiff-dev/skiff/pkg/apis/rbac/validation"
)

// TestPolicyIsValid: every object passes the API's validation, carries the
// bootstrap label and autoupdate annotation, and every binding names a
// bootstrap role.
func TestPolicyIsValid(t *testing.T) {
	roles := map[string]bool{}
	for _, r := range ClusterRoles() {
		if roles[r.Name] {
			t.Errorf("clusterrole %s twice", r.Name)
		}
		roles[r.Name] = true
		if errs := rbacvalidation.ValidateClusterRole(&r); len(errs) > 0 {
			t.Errorf("clusterrole %s: %v", r.Name, errs)
		}
		if r.Labels["kubernetes.io/bootstrapping"] != "rbac-defaults" || r.Annotations[rbacv1.AutoUpdateAnnotationKey] != "true" {
			t.Errorf("clusterrole %s metadata %v %v", r.Name, r.Labels, r.Annotations)
		}
	}
	for _, name := range []string{"cluster-admin", "admin", "edit", "view", "system:basic-user", "system:discovery", "system:public-info-viewer",
		"system:service-account-issuer-discovery", "system:node", "system:node-proxier", "system:kube-scheduler",
		"system:kube-controller-manager", "system:volume-scheduler", "system:auth-delegator", "system:heapster"} {
		if !roles[name] {
			t.Errorf("no clusterrole %s", name)
		}
	}
	for _, b := range ClusterRoleBindings() {
		if errs := rbacvalidation.ValidateClusterRoleBinding(&b); len(errs) > 0 {
			t.Errorf("clusterrolebinding %s: %v", b.Name, errs)
		}
		if !roles[b.RoleRef.Name] {
			t.Errorf("clusterrolebinding %s names unknown role %s", b.Name, b.RoleRef.Name)
		}
	}
	for ns, list := range Roles() {
		names := map[string]bool{}
		for _, r := range list {
			names[r.Name] = true
			if errs := rbacvalidation.ValidateRole(&r); len(errs) > 0 || r.Namespace != ns {
				t.Errorf("role %s/%s: %v", r.Namespace, r.Name, errs)
			}
		}
		for _, b := range RoleBindings()[ns] {
			if errs := rbacvalidation.ValidateRoleBinding(&b); len(errs) > 0 || !names[b.RoleRef.Name] {
				t.Errorf("rolebinding %s/%s: %v (role %s)", b.Namespace, b.Name, errs, b.RoleRef.Name)
			}
		}
	}
}
