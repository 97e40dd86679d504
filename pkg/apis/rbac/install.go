// Package rbac installs the rbac.authorization.k8s.io/v1 types into a scheme.
package rbac

import (
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-dev/skiff/pkg/apis/core"
	"github.com/skiff-dev/skiff/pkg/apis/internalversion"
)

// Install registers rbac.authorization.k8s.io/v1 and its internal version.
func Install(scheme *runtime.Scheme) error {
	if err := internalversion.Install(scheme, rbacv1.AddToScheme, rbacv1.SchemeGroupVersion, &rbacv1.Role{}); err != nil {
		return err
	}
	RegisterDefaults(scheme)
	return nil
}

// RegisterDefaults adds the rbac/v1 defaulters to scheme, as upstream's
// pkg/apis/rbac/v1 defaults.go: a binding's roleRef.apiGroup and its
// subjects' apiGroup (User and Group kinds) default to the RBAC group.
// Roles and ClusterRoles have no defaults.
func RegisterDefaults(scheme *runtime.Scheme) {
	core.AddDefaulters(scheme, &rbacv1.RoleBinding{}, &rbacv1.RoleBindingList{},
		func(l *rbacv1.RoleBindingList) []rbacv1.RoleBinding { return l.Items },
		func(b *rbacv1.RoleBinding) { setBindingDefaults(&b.RoleRef, b.Subjects) })
	core.AddDefaulters(scheme, &rbacv1.ClusterRoleBinding{}, &rbacv1.ClusterRoleBindingList{},
		func(l *rbacv1.ClusterRoleBindingList) []rbacv1.ClusterRoleBinding { return l.Items },
		func(b *rbacv1.ClusterRoleBinding) { setBindingDefaults(&b.RoleRef, b.Subjects) })
}

func setBindingDefaults(ref *rbacv1.RoleRef, subjects []rbacv1.Subject) {
	if ref.APIGroup == "" {
		ref.APIGroup = rbacv1.GroupName
	}
	for i := range subjects {
		s := &subjects[i]
		if s.APIGroup != "" {
			continue
		}
		switch s.Kind {
		case rbacv1.UserKind, rbacv1.GroupKind:
			s.APIGroup = rbacv1.GroupName
		}
	}
}
