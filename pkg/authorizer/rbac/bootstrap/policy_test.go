package bootstrap

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	rbacvalidation "github.com/skiff-dev/skiff/pkg/apis/rbac/validation"
	rbacauthz "github.com/skiff-dev/skiff/pkg/authorizer/rbac"
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
		"system:kube-controller-manager", "system:volume-scheduler", "system:auth-delegator", "system:heapster",
		"system:controller:namespace-controller", "system:controller:service-account-controller", "system:controller:resourcequota-controller",
		"system:controller:root-ca-cert-publisher", "system:controller:certificate-controller", "system:controller:clusterrole-aggregation-controller",
		"system:controller:node-controller"} {
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

// TestCertificateControllerRights: the certificate controller's
// ServiceAccount, through its bootstrap binding, may sign for the signers
// skiff runs and approve kubelet client requests, and nothing more on
// signers (in particular, not approve kube-apiserver-client requests).
func TestCertificateControllerRights(t *testing.T) {
	var rules []rbacv1.PolicyRule
	roles := map[string]rbacv1.ClusterRole{}
	for _, r := range ClusterRoles() {
		roles[r.Name] = r
	}
	for _, b := range ClusterRoleBindings() {
		for _, s := range b.Subjects {
			if s.Kind == rbacv1.ServiceAccountKind && s.Namespace == "kube-system" && s.Name == "certificate-controller" {
				rules = append(rules, roles[b.RoleRef.Name].Rules...)
			}
		}
	}
	signer := func(verb, name string) authorizer.AttributesRecord {
		return authorizer.AttributesRecord{Verb: verb, APIGroup: "certificates.k8s.io", APIVersion: "*", Resource: "signers", Name: name, ResourceRequest: true}
	}
	for _, tc := range []struct {
		attrs authorizer.AttributesRecord
		want  bool
	}{
		{signer("approve", "kubernetes.io/kube-apiserver-client-kubelet"), true},
		{signer("approve", "kubernetes.io/kube-apiserver-client"), false},
		{signer("approve", "kubernetes.io/kubelet-serving"), true}, // skiff approves nodes' own
		{signer("approve", "kubernetes.io/*"), false},
		{signer("sign", "kubernetes.io/kube-apiserver-client"), true},
		{signer("sign", "kubernetes.io/kube-apiserver-client-kubelet"), true},
		{signer("sign", "kubernetes.io/kubelet-serving"), true},
		{signer("sign", "kubernetes.io/legacy-unknown"), true},
		{signer("sign", "example.com/foo"), false},
		{authorizer.AttributesRecord{Verb: "update", APIGroup: "certificates.k8s.io", Resource: "certificatesigningrequests", Subresource: "approval", ResourceRequest: true}, true},
		{authorizer.AttributesRecord{Verb: "update", APIGroup: "certificates.k8s.io", Resource: "certificatesigningrequests", Subresource: "status", ResourceRequest: true}, true},
		{authorizer.AttributesRecord{Verb: "create", APIGroup: "certificates.k8s.io", Resource: "certificatesigningrequests", ResourceRequest: true}, false},
	} {
		if got := rbacauthz.RulesAllow(tc.attrs, rules...); got != tc.want {
			t.Errorf("certificate-controller %s %s/%s %q: %v, want %v", tc.attrs.Verb, tc.attrs.Resource, tc.attrs.Subresource, tc.attrs.Name, got, tc.want)
		}
	}
}

// TestNodeNetworkRights: what the RBAC bindings give the user of a
// node's networking parts: the reads of a service proxy, pod network and
// NetworkPolicy enforcement, no writes and no secrets; and nothing to the
// group system:nodes (the Node authorizer grants nodes their rights).
func TestNodeNetworkRights(t *testing.T) {
	var rules []rbacv1.PolicyRule
	roles := map[string]rbacv1.ClusterRole{}
	for _, r := range ClusterRoles() {
		roles[r.Name] = r
	}
	for _, b := range ClusterRoleBindings() {
		for _, s := range b.Subjects {
			if s.Kind == rbacv1.GroupKind && s.Name == "system:nodes" {
				t.Errorf("binding %s gives the nodes' group %s: the Node authorizer's limits would not hold", b.Name, b.RoleRef.Name)
			}
			if s.Kind == rbacv1.UserKind && s.Name == NodeNetworkUser {
				rules = append(rules, roles[b.RoleRef.Name].Rules...)
			}
		}
	}
	res := func(verb, group, resource string) authorizer.AttributesRecord {
		return authorizer.AttributesRecord{Verb: verb, APIGroup: group, APIVersion: "*", Resource: resource, ResourceRequest: true}
	}
	for _, tc := range []struct {
		attrs authorizer.AttributesRecord
		want  bool
	}{
		{res("watch", "", "services"), true},
		{res("list", "discovery.k8s.io", "endpointslices"), true},
		{res("list", "networking.k8s.io", "networkpolicies"), true},
		{res("watch", "", "namespaces"), true},
		{res("list", "", "pods"), true},
		{res("get", "", "nodes"), true},
		{res("create", "", "events"), true},
		{res("list", "", "secrets"), false},
		{res("get", "", "configmaps"), false},
		{res("update", "networking.k8s.io", "networkpolicies"), false},
		{res("delete", "", "pods"), false},
		{res("patch", "", "services"), false},
	} {
		if got := rbacauthz.RulesAllow(tc.attrs, rules...); got != tc.want {
			t.Errorf("%s %s %s/%s: %v, want %v", NodeNetworkUser, tc.attrs.Verb, tc.attrs.APIGroup, tc.attrs.Resource, got, tc.want)
		}
	}
}
