// Package rbac builds the storage of the rbac.authorization.k8s.io/v1
// resources.
//
// Not yet: upstream wraps each of these stores in an escalation check
// (pkg/registry/rbac/*/policybased): creating or updating a Role or
// ClusterRole needs either the permissions it grants or the "escalate" verb,
// and a binding needs the "bind" verb on its role or the role's permissions.
// Until the RBAC authorizer exists every writer is system:masters, for which
// these checks always pass. They will hook in here: a Storage function that
// wraps the Create and Update of the REST objects store.Build returns with
// the authorizer and its rule resolver (as apps.Storage wraps scale).
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
