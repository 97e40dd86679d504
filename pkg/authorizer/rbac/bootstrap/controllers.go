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
