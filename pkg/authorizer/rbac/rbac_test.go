package rbac

import (
	"context"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericrequest "k8s.io/apiserver/pkg/endpoints/request"
	rbaclisters "k8s.io/client-go/listers/rbac/v1"
	"k8s.io/client-go/tools/cache"
)

func resolverOf(t *testing.T, objs ...any) *RuleResolver {
	t.Helper()
	idx := func() cache.Indexer {
		return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	roles, rbs, crs, crbs := idx(), idx(), idx(), idx()
	for _, o := range objs {
		var err error
		switch o.(type) {
		case *rbacv1.Role:
			err = roles.Add(o)
		case *rbacv1.RoleBinding:
			err = rbs.Add(o)
		case *rbacv1.ClusterRole:
			err = crs.Add(o)
		case *rbacv1.ClusterRoleBinding:
			err = crbs.Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return &RuleResolver{Roles: roleLister{rbaclisters.NewRoleLister(roles)}, RoleBindings: roleBindingLister{l: rbaclisters.NewRoleBindingLister(rbs)},
		ClusterRoles: clusterRoleLister{rbaclisters.NewClusterRoleLister(crs)}, ClusterRoleBindings: clusterRoleBindingLister{l: rbaclisters.NewClusterRoleBindingLister(crbs)}}
}

func TestRuleAllows(t *testing.T) {
	res := func(verb, group, resource, sub, name string) authorizer.AttributesRecord {
		return authorizer.AttributesRecord{Verb: verb, APIGroup: group, Resource: resource, Subresource: sub, Name: name, ResourceRequest: true}
	}
	url := func(verb, path string) authorizer.AttributesRecord {
		return authorizer.AttributesRecord{Verb: verb, Path: path}
	}
	for _, c := range []struct {
		rule  rbacv1.PolicyRule
		attrs authorizer.AttributesRecord
		want  bool
	}{
		{rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}, res("get", "", "pods", "", "p"), true},
		{rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}, res("list", "", "pods", "", ""), false},
		{rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}, res("get", "apps", "pods", "", ""), false},
		{rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}, res("get", "", "pods", "log", "p"), false},
		{rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods/log"}}, res("get", "", "pods", "log", "p"), true},
		{rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"*/log"}}, res("get", "", "pods", "log", "p"), true},
		{rbacv1.PolicyRule{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}, res("delete", "apps", "deployments", "scale", "d"), true},
		{rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"cm"}, ResourceNames: []string{"a"}}, res("get", "", "cm", "", "a"), true},
		{rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"cm"}, ResourceNames: []string{"a"}}, res("get", "", "cm", "", "b"), false},
		{rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"cm"}, ResourceNames: []string{"a"}}, res("list", "", "cm", "", ""), false},
		{rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/apis/*"}}, url("get", "/apis/apps/v1"), true},
		{rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/apis"}}, url("get", "/apis/apps"), false},
		{rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"*"}}, url("get", "/anything"), true},
		{rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"*"}}, url("post", "/anything"), false},
	} {
		if got := RuleAllows(c.attrs, &c.rule); got != c.want {
			t.Errorf("rule %v on %+v: %v, want %v", c.rule, c.attrs, got, c.want)
		}
	}
}

func TestAuthorizerBindings(t *testing.T) {
	ref := func(kind, name string) rbacv1.RoleRef {
		return rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: name}
	}
	r := resolverOf(t,
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "reader"}, Rules: []rbacv1.PolicyRule{{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"pods"}}}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cm"}, Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "ops"}, RoleRef: ref("ClusterRole", "reader"),
			Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, Name: "ops"}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "alice"}, RoleRef: ref("Role", "cm"),
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "alice"}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sa"}, RoleRef: ref("ClusterRole", "reader"),
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "robot"}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "dangling"}, RoleRef: ref("Role", "missing"),
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "bob"}}},
	)
	a := &Authorizer{Resolver: r}
	ctx := context.Background()
	check := func(u user.Info, verb, ns, resource string) (authorizer.Decision, string) {
		d, reason, err := a.Authorize(ctx, authorizer.AttributesRecord{User: u, Verb: verb, Namespace: ns, Resource: resource, ResourceRequest: true})
		if err != nil {
			t.Fatal(err)
		}
		return d, reason
	}
	alice := &user.DefaultInfo{Name: "alice"}
	if d, reason := check(alice, "get", "ns", "configmaps"); d != authorizer.DecisionAllow || reason != `RBAC: allowed by RoleBinding "alice/ns" of Role "cm" to User "alice"` {
		t.Errorf("alice get configmaps in ns: %v %q", d, reason)
	}
	if d, reason := check(alice, "get", "other", "configmaps"); d != authorizer.DecisionNoOpinion || reason != "" {
		t.Errorf("alice get configmaps in other: %v %q", d, reason)
	}
	if d, _ := check(&user.DefaultInfo{Name: "carol", Groups: []string{"ops"}}, "list", "any", "pods"); d != authorizer.DecisionAllow {
		t.Errorf("group ops list pods: %v", d)
	}
	if d, _ := check(&user.DefaultInfo{Name: "system:serviceaccount:ns:robot"}, "list", "ns", "pods"); d != authorizer.DecisionAllow {
		t.Errorf("robot list pods in ns: %v", d)
	}
	if d, _ := check(&user.DefaultInfo{Name: "system:serviceaccount:other:robot"}, "list", "ns", "pods"); d != authorizer.DecisionNoOpinion {
		t.Errorf("other/robot list pods in ns: %v", d)
	}
	if d, reason := check(&user.DefaultInfo{Name: "bob"}, "get", "ns", "configmaps"); d != authorizer.DecisionNoOpinion || reason != `RBAC: role.rbac.authorization.k8s.io "missing" not found` {
		t.Errorf("bob: %v %q", d, reason)
	}

	res, nonRes, incomplete, err := a.RulesFor(ctx, alice, "ns")
	if err != nil || incomplete || len(res) != 1 || len(nonRes) != 0 || res[0].GetResources()[0] != "configmaps" {
		t.Errorf("rules of alice: %v %v %v %v", res, nonRes, incomplete, err)
	}

	// Escalation: alice holds get configmaps in ns, not list.
	actx := genericrequest.WithNamespace(genericrequest.WithUser(ctx, alice), "ns")
	if err := ConfirmNoEscalation(actx, r, []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}}}); err != nil {
		t.Errorf("held rule: %v", err)
	}
	err = ConfirmNoEscalation(actx, r, []rbacv1.PolicyRule{{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"configmaps"}}})
	want := `user "alice" (groups=[]) is attempting to grant RBAC permissions not currently held:` + "\n" + `{APIGroups:[""], Resources:["configmaps"], Verbs:["list" "watch"]}`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("escalation error %v, want %s", err, want)
	}
}
