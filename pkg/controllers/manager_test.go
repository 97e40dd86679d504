package controllers

import (
	"path/filepath"
	"slices"
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
	for _, d := range Descriptors() {
		if rootIdentities[d.Identity] {
			// Runs with the manager's credentials, as upstream's.
			continue
		}
		if bound[d.Identity] != bootstrap.ControllerRolePrefix+d.Identity {
			t.Errorf("%s: ServiceAccount kube-system/%s is bound to %q, want %s", d.Name, d.Identity, bound[d.Identity], bootstrap.ControllerRolePrefix+d.Identity)
		}
	}
}

// TestTokensControllerNeedsKey: without --service-account-private-key-file
// the tokens controller is not set up (a nil manager would be touched
// otherwise), and an unreadable key fails the start, as upstream.
func TestTokensControllerNeedsKey(t *testing.T) {
	setup := func(opts Options) error {
		for _, d := range Descriptors() {
			if d.Name == "serviceaccount-token-controller" {
				return d.Setup(nil, nil, opts)
			}
		}
		t.Fatal("no serviceaccount-token-controller")
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

// TestControllersFlag: --controllers as kube-controller-manager's.
func TestControllersFlag(t *testing.T) {
	lifecycle := Descriptor{Name: "node-lifecycle-controller"}
	off := Descriptor{Name: "some-controller", DisabledByDefault: true}
	for _, tc := range []struct {
		list          []string
		lifecycle, on bool
	}{
		{nil, true, false},
		{[]string{"*"}, true, false},
		{[]string{"*", "-node-lifecycle-controller"}, false, false},
		{[]string{"-node-lifecycle-controller", "*"}, false, false},
		{[]string{"*", "some-controller"}, true, true},
		{[]string{"some-controller"}, false, true},
	} {
		o := Options{Controllers: tc.list}
		if got := o.Enabled(lifecycle); got != tc.lifecycle {
			t.Errorf("%q: node-lifecycle-controller enabled %v, want %v", tc.list, got, tc.lifecycle)
		}
		if got := o.Enabled(off); got != tc.on {
			t.Errorf("%q: a disabled-by-default controller enabled %v, want %v", tc.list, got, tc.on)
		}
	}
	errs := ValidateControllers([]string{"*", "-namespace-controller", "-nope", "bogus"})
	if len(errs) != 2 || errs[0].Error() != `"nope" is not in the list of known controllers` || errs[1].Error() != `"bogus" is not in the list of known controllers` {
		t.Errorf("errors: %v", errs)
	}
	all, _ := KnownControllers()
	for _, want := range []string{"namespace-controller", "node-ipam-controller", "serviceaccount-token-controller"} {
		if !slices.Contains(all, want) {
			t.Errorf("%s not among the known controllers %v", want, all)
		}
	}
}
