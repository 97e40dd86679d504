package printers

import (
	"fmt"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	rbacv1beta1 "k8s.io/api/rbac/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Roles and ClusterRoles have no printer upstream; they use the default
// NAME / CREATED AT convertor (see printers.go).

var roleBindingTable = newTable(
	bindingColumns(rbacv1beta1.RoleBinding{}.SwaggerDoc()["roleRef"], "roleBinding"),
	func(rb *rbacv1.RoleBinding) []any {
		return bindingCells(rb.ObjectMeta, rb.RoleRef, rb.Subjects)
	},
)

var clusterRoleBindingTable = newTable(
	bindingColumns(rbacv1beta1.ClusterRoleBinding{}.SwaggerDoc()["roleRef"], "clusterRoleBinding"),
	func(crb *rbacv1.ClusterRoleBinding) []any {
		return bindingCells(crb.ObjectMeta, crb.RoleRef, crb.Subjects)
	},
)

func bindingColumns(roleRefDescription, kind string) []metav1.TableColumnDefinition {
	return cols(
		nameColumn(),
		column("Role", "string", roleRefDescription),
		ageColumn(),
		wideColumn("Users", "string", "Users in the "+kind),
		wideColumn("Groups", "string", "Groups in the "+kind),
		wideColumn("ServiceAccounts", "string", "ServiceAccounts in the "+kind),
	)
}

func bindingCells(m metav1.ObjectMeta, ref rbacv1.RoleRef, subjects []rbacv1.Subject) []any {
	var users, groups, sas []string
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.ServiceAccountKind:
			sas = append(sas, s.Namespace+"/"+s.Name)
		case rbacv1.UserKind:
			users = append(users, s.Name)
		case rbacv1.GroupKind:
			groups = append(groups, s.Name)
		}
	}
	return []any{m.Name, fmt.Sprintf("%s/%s", ref.Kind, ref.Name), age(m.CreationTimestamp),
		strings.Join(users, ", "), strings.Join(groups, ", "), strings.Join(sas, ", ")}
}
