package main

import (
	"context"
	"fmt"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// sarRole is the ClusterRole every benchmark binding grants.
const sarRole = "bench-sar-configmap-reader"

// sarWorkload measures SubjectAccessReviews against a server holding
// cfg.bindings ClusterRoleBindings and as many RoleBindings in one
// namespace, each naming a user of its own: reviews that a
// ClusterRoleBinding allows, that a RoleBinding allows (after every
// ClusterRoleBinding was looked at), and that nothing allows (every
// binding looked at).
func sarWorkload(cfg *config) workload {
	name := fmt.Sprintf("subjectaccessreviews, %d+%d bindings", cfg.bindings, cfg.bindings)
	return workload{key: "sar", name: name, run: func(ctx context.Context, t *target, rec recorder) error {
		clients, err := t.clients(cfg.maxClients())
		if err != nil {
			return err
		}
		admin := t.admin()
		ns, err := newNamespace(ctx, admin, "sar", false)
		if err != nil {
			return err
		}
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: sarRole},
			Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}}}}
		if _, err := admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
			return err
		}
		ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: sarRole}
		user := func(i int) rbacv1.Subject {
			return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: fmt.Sprintf("bench-sar-user-%d", i)}
		}
		nsUser := func(i int) rbacv1.Subject {
			return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: fmt.Sprintf("bench-sar-ns-user-%d", i)}
		}
		makers := min(16, len(clients))
		setup := runClients(ctx, makers, budget{ops: 2 * cfg.bindings}, func(ctx context.Context, c, i int) (bool, error) {
			k := i*makers + c // runClients' quotas make this each of 0..2*bindings-1 once
			cs := clients[c]
			if k < cfg.bindings {
				_, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-sar-%d", k)}, RoleRef: ref, Subjects: []rbacv1.Subject{user(k)}}, metav1.CreateOptions{})
				return false, err
			}
			k -= cfg.bindings
			_, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-sar-%d", k)}, RoleRef: ref, Subjects: []rbacv1.Subject{nsUser(k)}}, metav1.CreateOptions{})
			return false, err
		})
		if setup.Errors > 0 {
			return fmt.Errorf("creating bindings: %d errors, e.g. %s", setup.Errors, setup.ErrorSamples[0])
		}
		review := func(ctx context.Context, cs kubernetes.Interface, name string, want bool) error {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: name,
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "configmaps", Name: "x"}}}
			got, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			if got.Status.Allowed != want {
				return fmt.Errorf("review of %s: allowed %v, want %v (%s)", name, got.Status.Allowed, want, got.Status.Reason)
			}
			return nil
		}
		// The authorizer's informers see the last bindings a moment after
		// they were created.
		last := nsUser(cfg.bindings - 1).Name
		for deadline := time.Now().Add(30 * time.Second); review(ctx, admin, last, true) != nil; {
			if time.Now().After(deadline) {
				return fmt.Errorf("the last RoleBinding does not authorize %s after 30s", last)
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, n := range cfg.clients {
			rec.workload = fmt.Sprintf("%s, %d clients", name, n)
			if n == 1 {
				rec.workload = name + ", 1 client"
			}
			b := cfg.budget()
			for _, m := range []struct {
				what  string
				user  func(i int) string
				allow bool
			}{
				{"allowed by a ClusterRoleBinding", func(i int) string { return user(i % cfg.bindings).Name }, true},
				{"allowed by a RoleBinding", func(i int) string { return nsUser(i % cfg.bindings).Name }, true},
				{"denied", func(i int) string { return fmt.Sprintf("bench-sar-nobody-%d", i) }, false},
			} {
				s := runClients(ctx, n, b, func(ctx context.Context, c, i int) (bool, error) {
					return false, review(ctx, clients[c], m.user(i*n+c), m.allow)
				})
				logf("%s: %s: %s: %s", t.name, rec.workload, m.what, s)
				rec.stats(m.what, b, s)
			}
		}
		return nil
	}}
}
