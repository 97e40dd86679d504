package controllers

import (
	"path/filepath"
	"strings"
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

// TestTokensControllerNeedsKey: without --service-account-private-key-file
// the tokens controller is not set up (a nil manager would be touched
// otherwise), and an unreadable key fails the start, as upstream.
func TestTokensControllerNeedsKey(t *testing.T) {
	setup := func(opts Options) error {
		for _, c := range controllerSetups(nil, opts) {
			if c.name == "tokens-controller" {
				return c.setup(nil)
			}
		}
		t.Fatal("no tokens-controller")
		return nil
	}
	if err := setup(Options{}); err != nil {
		t.Errorf("without a key: %v", err)
	}
	err := setup(Options{ServiceAccountPrivateKeyFile: filepath.Join(t.TempDir(), "missing.key")})
	if err == nil || !strings.HasPrefix(err.Error(), "error reading key for service account token controller: ") {
		t.Errorf("a missing key: %v", err)
	}
}
