package bootstrap

import (
	certificatesv1 "k8s.io/api/certificates/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ControllerRolePrefix names the per-controller ClusterRoles; each is bound
// to the kube-system ServiceAccount named by the rest of the role's name
// (upstream's controller_policy.go).
const ControllerRolePrefix = "system:controller:"

// controllerRoles are upstream's system:controller:<name> ClusterRoles of
// the controllers skiff runs, with upstream's rules.
func controllerRoles() []rbacv1.ClusterRole {
	return []rbacv1.ClusterRole{
		clusterRole(ControllerRolePrefix+"clusterrole-aggregation-controller",
			// It must be able to write any rule into an aggregated role.
			newRule("escalate", "get", "list", "watch", "update", "patch").groups(rbac).resources("clusterroles").done()),
		clusterRole(ControllerRolePrefix+"namespace-controller",
			newRule("get", "list", "watch", "delete").groups(legacy).resources("namespaces").done(),
			newRule("update").groups(legacy).resources("namespaces/finalize", "namespaces/status").done(),
			newRule("get", "list", "watch", "delete", "deletecollection").groups("*").resources("*").done()),
		clusterRole(ControllerRolePrefix+"resourcequota-controller",
			// It counts anything, so it reads everything.
			newRule("list", "watch").groups("*").resources("*").done(),
			newRule("update").groups(legacy).resources("resourcequotas/status").done(),
			eventsRule()),
		clusterRole(ControllerRolePrefix+"service-account-controller",
			newRule("create").groups(legacy).resources("serviceaccounts").done(),
			eventsRule()),
		clusterRole(ControllerRolePrefix+"certificate-controller",
			newRule("get", "list", "watch", "delete").groups(certificates).resources("certificatesigningrequests").done(),
			newRule("update").groups(certificates).resources("certificatesigningrequests/status", "certificatesigningrequests/approval").done(),
			newRule("approve").groups(certificates).resources("signers").names(certificatesv1.KubeAPIServerClientKubeletSignerName).done(),
			newRule("sign").groups(certificates).resources("signers").names(
				"kubernetes.io/legacy-unknown", // certificates.k8s.io/v1beta1 only
				certificatesv1.KubeAPIServerClientSignerName,
				certificatesv1.KubeAPIServerClientKubeletSignerName,
				certificatesv1.KubeletServingSignerName).done(),
			newRule("create").groups(authorization).resources("subjectaccessreviews").done(),
			eventsRule()),
		// The node IPAM controller runs as it, as upstream's.
		clusterRole(ControllerRolePrefix+"node-controller",
			newRule("get", "list", "watch", "update", "delete", "patch").groups(legacy).resources("nodes").done(),
			newRule("patch", "update").groups(legacy).resources("nodes/status").done(),
			newRule("patch", "update").groups(legacy).resources("pods/status").done(),
			newRule("list", "watch", "get", "delete").groups(legacy).resources("pods").done(),
			newRule("get", "list", "watch").groups(coordination).resources("leases").done(),
			eventsRule()),
		clusterRole(ControllerRolePrefix+"root-ca-cert-publisher",
			newRule("create", "update").groups(legacy).resources("configmaps").done(),
			eventsRule()),
	}
}

// controllerNamespaceRoles are the controllers' kube-system Roles: the
// token cleaner removes secrets there only.
func controllerNamespaceRoles() []rbacv1.Role {
	return []rbacv1.Role{
		{ObjectMeta: metav1.ObjectMeta{Name: ControllerRolePrefix + "token-cleaner"}, Rules: []rbacv1.PolicyRule{
			newRule("get", "list", "watch", "delete").groups(legacy).resources("secrets").done(),
			eventsRule(),
		}},
	}
}

// controllerRoleBindings bind each controller role to its ServiceAccount.
func controllerRoleBindings() []rbacv1.ClusterRoleBinding {
	var bindings []rbacv1.ClusterRoleBinding
	for _, role := range controllerRoles() {
		bindings = append(bindings, clusterBinding(role.Name,
			serviceAccounts(metav1.NamespaceSystem, role.Name[len(ControllerRolePrefix):])...))
	}
	return bindings
}
