package rbac

import (
	"context"
	"sort"
	"sync"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/tools/cache"
)

// subjectKey names what a binding subject matches in a user: User and
// ServiceAccount subjects their name (a ServiceAccount's as
// system:serviceaccount:<namespace>:<name>, which is what
// serviceaccount.MatchesUsername compares), Group subjects a group.
type subjectKey struct {
	group bool
	name  string
}

// bindingIndex finds the bindings naming a user without walking all of
// them: informer event handlers keep, per subject, the bindings that name
// it. Roles are still read at request time, so a role change applies at
// once; a binding change applies as soon as its event is handled, right
// after the informer's own store has it.
type bindingIndex struct {
	mu   sync.RWMutex
	crbs map[subjectKey]map[string]*rbacv1.ClusterRoleBinding     // by binding name
	rbs  map[string]map[subjectKey]map[string]*rbacv1.RoleBinding // by namespace, subject, name
	// keys are the subject keys each binding ("<namespace>/<name>") is
	// indexed under, so that removing it needs no old copy.
	crbKeys map[string][]subjectKey
	rbKeys  map[string][]subjectKey
}

func newBindingIndex() *bindingIndex {
	return &bindingIndex{
		crbs:    map[subjectKey]map[string]*rbacv1.ClusterRoleBinding{},
		rbs:     map[string]map[subjectKey]map[string]*rbacv1.RoleBinding{},
		crbKeys: map[string][]subjectKey{}, rbKeys: map[string][]subjectKey{},
	}
}

// subjectKeys are the keys of a binding's subjects; namespace is the
// RoleBinding's, which its ServiceAccount subjects default to ("" for a
// ClusterRoleBinding, whose ServiceAccount subjects without a namespace
// match nobody).
func subjectKeys(subjects []rbacv1.Subject, namespace string) []subjectKey {
	keys := make([]subjectKey, 0, len(subjects))
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.UserKind:
			keys = append(keys, subjectKey{name: s.Name})
		case rbacv1.GroupKind:
			keys = append(keys, subjectKey{group: true, name: s.Name})
		case rbacv1.ServiceAccountKind:
			ns := namespace
			if s.Namespace != "" {
				ns = s.Namespace
			}
			if ns != "" {
				keys = append(keys, subjectKey{name: serviceaccount.MakeUsername(ns, s.Name)})
			}
		}
	}
	return keys
}

// userKeys are the keys that can match u.
func userKeys(u user.Info) []subjectKey {
	groups := u.GetGroups()
	keys := make([]subjectKey, 0, 1+len(groups))
	keys = append(keys, subjectKey{name: u.GetName()})
	for _, g := range groups {
		keys = append(keys, subjectKey{group: true, name: g})
	}
	return keys
}

func addTo[T any](m map[subjectKey]map[string]T, keys []subjectKey, name string, v T) {
	for _, k := range keys {
		if m[k] == nil {
			m[k] = map[string]T{}
		}
		m[k][name] = v
	}
}

func removeFrom[T any](m map[subjectKey]map[string]T, keys []subjectKey, name string) {
	for _, k := range keys {
		delete(m[k], name)
		if len(m[k]) == 0 {
			delete(m, k)
		}
	}
}

// setClusterRoleBinding indexes b under name, replacing what name had;
// nil b removes it.
func (x *bindingIndex) setClusterRoleBinding(name string, b *rbacv1.ClusterRoleBinding) {
	x.mu.Lock()
	defer x.mu.Unlock()
	removeFrom(x.crbs, x.crbKeys[name], name)
	delete(x.crbKeys, name)
	if b != nil {
		keys := subjectKeys(b.Subjects, "")
		addTo(x.crbs, keys, name, b)
		x.crbKeys[name] = keys
	}
}

// setRoleBinding is setClusterRoleBinding for the RoleBindings of namespace.
func (x *bindingIndex) setRoleBinding(namespace, name string, b *rbacv1.RoleBinding) {
	x.mu.Lock()
	defer x.mu.Unlock()
	id := namespace + "/" + name
	if m := x.rbs[namespace]; m != nil {
		removeFrom(m, x.rbKeys[id], name)
		if len(m) == 0 {
			delete(x.rbs, namespace)
		}
	}
	delete(x.rbKeys, id)
	if b != nil {
		m := x.rbs[namespace]
		if m == nil {
			m = map[subjectKey]map[string]*rbacv1.RoleBinding{}
			x.rbs[namespace] = m
		}
		keys := subjectKeys(b.Subjects, namespace)
		addTo(m, keys, name, b)
		x.rbKeys[id] = keys
	}
}

// collect returns the bindings of m under keys, each once, by name.
func collect[T any](m map[subjectKey]map[string]T, keys []subjectKey, name func(T) string) []T {
	var out []T
	seen := map[string]bool{}
	for _, k := range keys {
		for n, b := range m[k] {
			if !seen[n] {
				seen[n] = true
				out = append(out, b)
			}
		}
	}
	// Only the few matching bindings are sorted, for a stable rule order.
	sort.Slice(out, func(i, j int) bool { return name(out[i]) < name(out[j]) })
	return out
}

// ClusterRoleBindingsFor returns the ClusterRoleBindings that may apply to u.
func (x *bindingIndex) ClusterRoleBindingsFor(_ context.Context, u user.Info) ([]*rbacv1.ClusterRoleBinding, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return collect(x.crbs, userKeys(u), func(b *rbacv1.ClusterRoleBinding) string { return b.Name }), nil
}

// RoleBindingsFor returns the RoleBindings of namespace that may apply to u.
func (x *bindingIndex) RoleBindingsFor(_ context.Context, u user.Info, namespace string) ([]*rbacv1.RoleBinding, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	m := x.rbs[namespace]
	if m == nil {
		return nil, nil
	}
	return collect(m, userKeys(u), func(b *rbacv1.RoleBinding) string { return b.Name }), nil
}

// handlers keep the index in step with an informer of T: set(namespace,
// name, object) on adds and updates, set(namespace, name, nil) on deletes.
func handlers[T any, P interface {
	*T
	GetNamespace() string
	GetName() string
}](set func(namespace, name string, b P)) cache.ResourceEventHandlerFuncs {
	put := func(obj any) {
		if b, ok := obj.(P); ok {
			set(b.GetNamespace(), b.GetName(), b)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    put,
		UpdateFunc: func(_, obj any) { put(obj) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if b, ok := obj.(P); ok {
				set(b.GetNamespace(), b.GetName(), nil)
			}
		},
	}
}
