// Package rbac builds the storage of the rbac.authorization.k8s.io/v1
// resources. As upstream (pkg/registry/rbac/*/policybased), Storage wraps
// their Create and Update in an escalation check (escalation.go).
package rbac

import (
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	corevalidation "github.com/skiff-dev/skiff/pkg/apis/core/validation"
	rbacvalidation "github.com/skiff-dev/skiff/pkg/apis/rbac/validation"
	"github.com/skiff-dev/skiff/pkg/registry/store"
)

func gr(resource string) schema.GroupResource {
	return schema.GroupResource{Group: rbacv1.GroupName, Resource: resource}
}

// Resources describes every rbac.authorization.k8s.io/v1 resource. As
// upstream, PUT may create all four, and names are path segments.
var Resources = []store.Resource{
	{Resource: gr("roles"), Singular: "role", Namespaced: true, AllowCreateOnUpdate: true, ValidateName: rbacvalidation.ValidateRBACName,
		New: func() runtime.Object { return &rbacv1.Role{} }, NewList: func() runtime.Object { return &rbacv1.RoleList{} },
		Validate: corevalidation.ForCreate(rbacvalidation.ValidateRole)},
	{Resource: gr("rolebindings"), Singular: "rolebinding", Namespaced: true, AllowCreateOnUpdate: true, ValidateName: rbacvalidation.ValidateRBACName,
		New: func() runtime.Object { return &rbacv1.RoleBinding{} }, NewList: func() runtime.Object { return &rbacv1.RoleBindingList{} },
		Validate: corevalidation.ForCreate(rbacvalidation.ValidateRoleBinding), ValidateUpdate: corevalidation.ForUpdate(rbacvalidation.ValidateRoleBindingUpdate)},
	{Resource: gr("clusterroles"), Singular: "clusterrole", AllowCreateOnUpdate: true, ValidateName: rbacvalidation.ValidateRBACName,
		New: func() runtime.Object { return &rbacv1.ClusterRole{} }, NewList: func() runtime.Object { return &rbacv1.ClusterRoleList{} },
		Validate: corevalidation.ForCreate(rbacvalidation.ValidateClusterRole), ValidateUpdate: corevalidation.ForUpdate(rbacvalidation.ValidateClusterRoleUpdate)},
	{Resource: gr("clusterrolebindings"), Singular: "clusterrolebinding", AllowCreateOnUpdate: true, ValidateName: rbacvalidation.ValidateRBACName,
		New: func() runtime.Object { return &rbacv1.ClusterRoleBinding{} }, NewList: func() runtime.Object { return &rbacv1.ClusterRoleBindingList{} },
		Validate: corevalidation.ForCreate(rbacvalidation.ValidateClusterRoleBinding), ValidateUpdate: corevalidation.ForUpdate(rbacvalidation.ValidateClusterRoleBindingUpdate)},
}
