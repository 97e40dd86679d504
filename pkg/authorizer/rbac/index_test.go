package rbac

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	rbaclisters "k8s.io/client-go/listers/rbac/v1"
	"k8s.io/client-go/tools/cache"
)

// TestIndexedAuthorizerFollowsBindingChanges: with New's informers, a
// binding grants once created, stops granting once its subject changes or
// it is deleted, and a Role's new rules apply at once.
func TestIndexedAuthorizerFollowsBindingChanges(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	a, synced := New(factory)
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		t.Fatal("informers did not sync")
	}
	if len(synced) != 6 {
		t.Errorf("%d synced funcs, want the 4 informers' and the 2 index handlers'", len(synced))
	}
	rbac := client.RbacV1()
	decision := func(u user.Info, ns string) authorizer.Decision {
		d, _, err := a.Authorize(ctx, authorizer.AttributesRecord{User: u, Verb: "get", Namespace: ns, Resource: "configmaps", ResourceRequest: true})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// Events reach the index a moment after the write.
	eventually := func(what string, u user.Info, ns string, want authorizer.Decision) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); decision(u, ns) != want; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s in %q is not %v", what, u.GetName(), ns, want)
			}
		}
	}
	alice, bob := &user.DefaultInfo{Name: "alice"}, &user.DefaultInfo{Name: "bob", Groups: []string{"devs"}}
	robot := &user.DefaultInfo{Name: "system:serviceaccount:ns:robot"}
	reader := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "reader"}, Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}}}}
	if _, err := rbac.ClusterRoles().Create(ctx, reader, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "reader"}

	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "b"}, RoleRef: ref, Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "alice"}}}
	if _, err := rbac.ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("created ClusterRoleBinding", alice, "any", authorizer.DecisionAllow)
	crb.Subjects = []rbacv1.Subject{{Kind: rbacv1.GroupKind, Name: "devs"}}
	if _, err := rbac.ClusterRoleBindings().Update(ctx, crb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("re-subjected ClusterRoleBinding", alice, "any", authorizer.DecisionNoOpinion)
	eventually("re-subjected ClusterRoleBinding", bob, "any", authorizer.DecisionAllow)
	if err := rbac.ClusterRoleBindings().Delete(ctx, "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("deleted ClusterRoleBinding", bob, "any", authorizer.DecisionNoOpinion)

	// A RoleBinding's ServiceAccount subject defaults to its namespace.
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "b"}, RoleRef: ref, Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "robot"}}}
	if _, err := rbac.RoleBindings("ns").Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("created RoleBinding", robot, "ns", authorizer.DecisionAllow)
	if decision(robot, "other") != authorizer.DecisionNoOpinion {
		t.Error("a RoleBinding of ns grants in other")
	}
	// The same name in another namespace is another binding.
	other := rb.DeepCopy()
	other.Namespace = "other"
	if _, err := rbac.RoleBindings("other").Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("RoleBinding of other", &user.DefaultInfo{Name: "system:serviceaccount:other:robot"}, "other", authorizer.DecisionAllow)
	if err := rbac.RoleBindings("other").Delete(ctx, "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("deleted RoleBinding of other", &user.DefaultInfo{Name: "system:serviceaccount:other:robot"}, "other", authorizer.DecisionNoOpinion)
	if decision(robot, "ns") != authorizer.DecisionAllow {
		t.Error("deleting other/b removed ns/b")
	}

	// Rules are read per request: a narrowed role stops granting.
	reader.Rules[0].Verbs = []string{"list"}
	if _, err := rbac.ClusterRoles().Update(ctx, reader, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("narrowed ClusterRole", robot, "ns", authorizer.DecisionNoOpinion)
	if err := rbac.RoleBindings("ns").Delete(ctx, "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []map[subjectKey]map[string]*rbacv1.ClusterRoleBinding{a.Resolver.ClusterRoleBindings.(clusterRoleBindingLister).index.crbs} {
		if len(m) != 0 {
			t.Errorf("index keeps deleted ClusterRoleBindings: %v", m)
		}
	}
}

// TestIndexMatchesWalk: over random bindings, changes and deletions, the
// index finds the same rules, in the same order, with the same reasons, as
// walking every binding.
func TestIndexMatchesWalk(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	users := []string{"alice", "bob", "system:serviceaccount:ns1:sa", "system:serviceaccount:ns2:sa", "system:serviceaccount:ns1:other"}
	groups := []string{"g1", "g2", "system:serviceaccounts", "system:authenticated"}
	namespaces := []string{"ns1", "ns2"}
	subject := func() rbacv1.Subject {
		switch rng.IntN(4) {
		case 0:
			return rbacv1.Subject{Kind: rbacv1.UserKind, Name: users[rng.IntN(2)]}
		case 1:
			return rbacv1.Subject{Kind: rbacv1.GroupKind, Name: groups[rng.IntN(len(groups))]}
		case 2:
			return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "sa", Namespace: namespaces[rng.IntN(2)]}
		default: // no namespace: the RoleBinding's, or nobody for a ClusterRoleBinding
			return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: []string{"sa", "other"}[rng.IntN(2)]}
		}
	}
	subjects := func() []rbacv1.Subject {
		out := make([]rbacv1.Subject, 1+rng.IntN(3))
		for i := range out {
			out[i] = subject()
		}
		return out
	}
	roles := make([]string, 5)
	idx := func() cache.Indexer {
		return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	crStore, rbStore, crbStore, roleStore := idx(), idx(), idx(), idx()
	for i := range roles {
		roles[i] = fmt.Sprintf("role-%d", i)
		_ = crStore.Add(&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: roles[i]},
			Rules: []rbacv1.PolicyRule{{Verbs: []string{fmt.Sprint("verb-", i)}, APIGroups: []string{""}, Resources: []string{"pods"}}}})
	}
	index := newBindingIndex()
	for step := range 400 {
		name := fmt.Sprintf("b%d", rng.IntN(40))
		ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: roles[rng.IntN(len(roles))]}
		del := rng.IntN(4) == 0
		if step%2 == 0 {
			b := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, RoleRef: ref, Subjects: subjects()}
			if del {
				_ = crbStore.Delete(b)
				index.setClusterRoleBinding(name, nil)
			} else {
				_ = crbStore.Update(b)
				index.setClusterRoleBinding(name, b)
			}
		} else {
			ns := namespaces[rng.IntN(2)]
			b := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, RoleRef: ref, Subjects: subjects()}
			if del {
				_ = rbStore.Delete(b)
				index.setRoleBinding(ns, name, nil)
			} else {
				_ = rbStore.Update(b)
				index.setRoleBinding(ns, name, b)
			}
		}
	}
	listers := func(ix *bindingIndex) *RuleResolver {
		return &RuleResolver{Roles: roleLister{rbaclisters.NewRoleLister(roleStore)}, ClusterRoles: clusterRoleLister{rbaclisters.NewClusterRoleLister(crStore)},
			RoleBindings:        roleBindingLister{l: rbaclisters.NewRoleBindingLister(rbStore), index: ix},
			ClusterRoleBindings: clusterRoleBindingLister{l: rbaclisters.NewClusterRoleBindingLister(crbStore), index: ix}}
	}
	indexed, walked := listers(index), listers(nil)
	visit := func(r *RuleResolver, u user.Info, ns string) []string {
		var out []string
		r.VisitRulesFor(context.Background(), u, ns, func(src fmt.Stringer, rule *rbacv1.PolicyRule, err error) bool {
			out = append(out, fmt.Sprint(src, rule, err))
			return true
		})
		return out
	}
	compared := 0
	for _, name := range users {
		for g := range 1 << len(groups) {
			u := &user.DefaultInfo{Name: name}
			for i, group := range groups {
				if g&(1<<i) != 0 {
					u.Groups = append(u.Groups, group)
				}
			}
			for _, ns := range append([]string{""}, namespaces...) {
				got, want := visit(indexed, u, ns), visit(walked, u, ns)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%s %v in %q:\nindex %q\nwalk  %q", name, u.Groups, ns, got, want)
				}
				compared += len(want)
			}
		}
	}
	if compared == 0 {
		t.Fatal("no rule applied to anyone: the comparison proves nothing")
	}
}

// BenchmarkAuthorize: one decision among 1000 ClusterRoleBindings and 1000
// RoleBindings of one namespace, each to a user of its own, by walking
// every binding (as before the index, and as upstream) and by the index.
func BenchmarkAuthorize(b *testing.B) {
	const n = 1000
	idx := func() cache.Indexer {
		return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	crs, crbs, rbs, roles := idx(), idx(), idx(), idx()
	index := newBindingIndex()
	_ = crs.Add(&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "reader"}, Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}}}})
	ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "reader"}
	for i := range n {
		crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint("b", i)}, RoleRef: ref, Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: fmt.Sprint("user-", i)}}}
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprint("b", i)}, RoleRef: ref, Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: fmt.Sprint("ns-user-", i)}}}
		_, _ = crbs.Add(crb), rbs.Add(rb)
		index.setClusterRoleBinding(crb.Name, crb)
		index.setRoleBinding(rb.Namespace, rb.Name, rb)
	}
	for _, c := range []struct {
		name  string
		index *bindingIndex
	}{{"walk", nil}, {"index", index}} {
		a := &Authorizer{Resolver: &RuleResolver{Roles: roleLister{rbaclisters.NewRoleLister(roles)}, ClusterRoles: clusterRoleLister{rbaclisters.NewClusterRoleLister(crs)},
			RoleBindings:        roleBindingLister{l: rbaclisters.NewRoleBindingLister(rbs), index: c.index},
			ClusterRoleBindings: clusterRoleBindingLister{l: rbaclisters.NewClusterRoleBindingLister(crbs), index: c.index}}}
		for _, who := range []struct{ what, user string }{{"allowed by a RoleBinding", "ns-user-500"}, {"denied", "nobody"}} {
			attrs := authorizer.AttributesRecord{User: &user.DefaultInfo{Name: who.user, Groups: []string{"system:authenticated"}},
				Verb: "get", Namespace: "ns", Resource: "configmaps", ResourceRequest: true}
			b.Run(c.name+"/"+who.what, func(b *testing.B) {
				for b.Loop() {
					_, _, _ = a.Authorize(context.Background(), attrs)
				}
			})
		}
	}
}
