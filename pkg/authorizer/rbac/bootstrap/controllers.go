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
	roles := []rbacv1.ClusterRole{
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
			// kubelet-serving too: skiff approves the Node's own (upstream
			// leaves them to an external approver).
			newRule("approve").groups(certificates).resources("signers").names(
				certificatesv1.KubeAPIServerClientKubeletSignerName, certificatesv1.KubeletServingSignerName).done(),
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
		// skiff's own local-path provisioner (k3s's local-path-provisioner
		// role, less its ConfigMap and helper pods): the PVs of the
		// claims handed to it, and its default StorageClass.
		clusterRole(ControllerRolePrefix+"local-path-provisioner",
			newRule("get", "list", "watch").groups(legacy).resources("persistentvolumeclaims", "nodes").done(),
			newRule("get", "list", "watch", "create", "delete").groups(legacy).resources("persistentvolumes").done(),
			newRule("get", "list", "watch", "create").groups(storage).resources("storageclasses").done(),
			eventsRule()),
	}
	return append(roles, workloadControllerRoles()...)
}

// workloadControllerRoles are those of the workload, garbage collection,
// endpoints, disruption, autoscaling and storage controllers (issue 10),
// upstream's rules.
func workloadControllerRoles() []rbacv1.ClusterRole {
	return []rbacv1.ClusterRole{
		clusterRole(ControllerRolePrefix+"cronjob-controller",
			newRule("get", "list", "watch", "update").groups(batch).resources("cronjobs").done(),
			newRule("get", "list", "watch", "create", "update", "delete", "patch").groups(batch).resources("jobs").done(),
			newRule("update").groups(batch).resources("cronjobs/status").done(),
			newRule("update").groups(batch).resources("cronjobs/finalizers").done(),
			newRule("list", "watch", "delete").groups(legacy).resources("pods").done(),
			eventsRule()),
		clusterRole(ControllerRolePrefix+"daemon-set-controller",
			newRule("get", "list", "watch").groups(extensions, apps).resources("daemonsets").done(),
			newRule("update").groups(extensions, apps).resources("daemonsets/status").done(),
			newRule("update").groups(extensions, apps).resources("daemonsets/finalizers").done(),
			newRule("list", "watch").groups(legacy).resources("nodes").done(),
			newRule("list", "watch", "create", "delete", "patch").groups(legacy).resources("pods").done(),
			newRule("create").groups(legacy).resources("pods/binding").done(),
			newRule("get", "list", "watch", "create", "delete", "update", "patch").groups(apps).resources("controllerrevisions").done(),
			eventsRule()),
		clusterRole(ControllerRolePrefix+"deployment-controller",
			newRule("get", "list", "watch", "update").groups(extensions, apps).resources("deployments").done(),
			newRule("update").groups(extensions, apps).resources("deployments/status").done(),
			newRule("update").groups(extensions, apps).resources("deployments/finalizers").done(),
			newRule("get", "list", "watch", "create", "update", "patch", "delete").groups(apps, extensions).resources("replicasets").done(),
			newRule("get", "list", "watch", "update").groups(legacy).resources("pods").done(),
			eventsRule()),
		clusterRole(ControllerRolePrefix+"disruption-controller",
			newRule("get", "list", "watch").groups(extensions, apps).resources("deployments").done(),
			newRule("get", "list", "watch").groups(apps, extensions).resources("replicasets").done(),
			newRule("get", "list", "watch").groups(legacy).resources("replicationcontrollers").done(),
			newRule("get", "list", "watch").groups(policy).resources("poddisruptionbudgets").done(),
			newRule("get", "list", "watch").groups(apps).resources("statefulsets").done(),
			newRule("update").groups(policy).resources("poddisruptionbudgets/status").done(),
			newRule("patch", "update").groups(legacy).resources("pods/status").done(),
			newRule("get").groups("*").resources("*/scale").done(),
			eventsRule()),
		clusterRole(ControllerRolePrefix+"endpoint-controller",
			newRule("get", "list", "watch").groups(legacy).resources("services", "pods").done(),
			newRule("get", "list", "watch", "create", "update", "delete").groups(legacy).resources("endpoints").done(),
			newRule("create").groups(legacy).resources("endpoints/restricted").done(),
			eventsRule()),
		clusterRole(ControllerRolePrefix+"endpointslice-controller",
			newRule("get", "list", "watch").groups(legacy).resources("services", "pods", "nodes").done(),
			// Slices owned by a Service with blockOwnerDeletion need
			// services/finalizers.
			newRule("update").groups(legacy).resources("services/finalizers").done(),
			newRule("get", "list", "watch", "create", "update", "delete").groups(discovery).resources("endpointslices").done(),
			eventsRule()),
		clusterRole(ControllerRolePrefix+"endpointslicemirroring-controller",
			newRule("get", "list", "watch").groups(legacy).resources("services", "endpoints").done(),
			newRule("update").groups(legacy).resources("services/finalizers").done(),
			newRule("update").groups(legacy).resources("endpoints/finalizers").done(),
			newRule("get", "list", "watch", "create", "update", "delete").groups(discovery).resources("endpointslices").done(),
			eventsRule()),
		clusterRole(ControllerRolePrefix+"ephemeral-volume-controller",
			newRule("get", "list", "watch").groups(legacy).resources("pods").done(),
			newRule("update").groups(legacy).resources("pods/finalizers").done(),
			newRule("get", "list", "watch", "create").groups(legacy).resources("persistentvolumeclaims").done(),
			eventsRule()),
		clusterRole(ControllerRolePrefix+"expand-controller",
			newRule("get", "list", "watch", "update", "patch").groups(legacy).resources("persistentvolumes").done(),
			newRule("update", "patch").groups(legacy).resources("persistentvolumeclaims/status").done(),
			newRule("get", "list", "watch").groups(legacy).resources("persistentvolumeclaims").done(),
			eventsRule()),
		clusterRole(ControllerRolePrefix+"generic-garbage-collector",
			// Lists, watches and updates owners and dependents of any kind.
			newRule("get", "list", "watch", "patch", "update", "delete").groups("*").resources("*").done(),
			eventsRule()),
		clusterRole(ControllerRolePrefix+"horizontal-pod-autoscaler",
			newRule("get", "list", "watch").groups(autoscaling).resources("horizontalpodautoscalers").done(),
			newRule("update").groups(autoscaling).resources("horizontalpodautoscalers/status").done(),
			newRule("get", "update").groups("*").resources("*/scale").done(),
			newRule("list", "watch").groups(legacy).resources("pods").done(),
			newRule("list", "watch").groups("metrics.k8s.io").resources("pods").done(),
			newRule("get", "list", "watch").groups("custom.metrics.k8s.io").resources("*").done(),
			newRule("get", "list", "watch").groups("external.metrics.k8s.io").resources("*").done(),
			eventsRule()),
		clusterRole(ControllerRolePrefix+"job-controller",
			newRule("get", "list", "watch", "update", "patch").groups(batch).resources("jobs").done(),
			newRule("update").groups(batch).resources("jobs/status").done(),
			newRule("update").groups(batch).resources("jobs/finalizers").done(),
			newRule("list", "watch", "create", "delete", "patch").groups(legacy).resources("pods").done(),
			eventsRule()),
		clusterRole(ControllerRolePrefix+"persistent-volume-binder",
			newRule("get", "list", "watch", "update", "create", "delete").groups(legacy).resources("persistentvolumes").done(),
			newRule("update").groups(legacy).resources("persistentvolumes/status").done(),
			newRule("get", "list", "watch", "update").groups(legacy).resources("persistentvolumeclaims").done(),
			newRule("update").groups(legacy).resources("persistentvolumeclaims/status").done(),
			newRule("list", "watch", "get", "create", "delete").groups(legacy).resources("pods").done(),
			newRule("get", "list", "watch").groups(storage).resources("storageclasses").done(),
			newRule("list", "watch").groups(legacy).resources("nodes").done(),
			eventsRule(),
			newRule("watch").groups(legacy).resources("events").done()),
		clusterRole(ControllerRolePrefix+"pod-garbage-collector",
			newRule("list", "watch", "delete").groups(legacy).resources("pods").done(),
			newRule("get", "list", "watch").groups(legacy).resources("nodes").done(),
			newRule("patch").groups(legacy).resources("pods/status").done()),
		clusterRole(ControllerRolePrefix+"pv-protection-controller",
			newRule("get", "list", "watch", "update").groups(legacy).resources("persistentvolumes").done(),
			eventsRule()),
		clusterRole(ControllerRolePrefix+"pvc-protection-controller",
			newRule("get", "list", "watch", "update").groups(legacy).resources("persistentvolumeclaims").done(),
			newRule("update").groups(legacy).resources("persistentvolumeclaims/status").done(),
			newRule("list", "watch", "get").groups(legacy).resources("pods").done(),
			eventsRule()),
		clusterRole(ControllerRolePrefix+"replicaset-controller",
			newRule("get", "list", "watch", "update").groups(apps, extensions).resources("replicasets").done(),
			newRule("update").groups(apps, extensions).resources("replicasets/status").done(),
			newRule("update").groups(apps, extensions).resources("replicasets/finalizers").done(),
			newRule("list", "watch", "patch", "create", "delete").groups(legacy).resources("pods").done(),
			eventsRule()),
		clusterRole(ControllerRolePrefix+"replication-controller",
			newRule("get", "list", "watch", "update").groups(legacy).resources("replicationcontrollers").done(),
			newRule("update").groups(legacy).resources("replicationcontrollers/status").done(),
			newRule("update").groups(legacy).resources("replicationcontrollers/finalizers").done(),
			newRule("list", "watch", "patch", "create", "delete").groups(legacy).resources("pods").done(),
			eventsRule()),
		clusterRole(ControllerRolePrefix+"statefulset-controller",
			newRule("list", "watch").groups(legacy).resources("pods").done(),
			newRule("get", "list", "watch").groups(apps).resources("statefulsets").done(),
			newRule("update").groups(apps).resources("statefulsets/status").done(),
			newRule("update").groups(apps).resources("statefulsets/finalizers").done(),
			newRule("get", "create", "delete", "update", "patch").groups(legacy).resources("pods").done(),
			newRule("get", "create", "delete", "update", "patch", "list", "watch").groups(apps).resources("controllerrevisions").done(),
			newRule("get", "create", "list", "watch").groups(legacy).resources("persistentvolumeclaims").done(),
			newRule("update", "delete").groups(legacy).resources("persistentvolumeclaims").done(),
			newRule("update").groups(legacy).resources("pods/finalizers").done(),
			eventsRule()),
		clusterRole(ControllerRolePrefix+"ttl-after-finished-controller",
			newRule("get", "list", "watch", "delete").groups(batch).resources("jobs").done(),
			eventsRule()),
		clusterRole(ControllerRolePrefix+"ttl-controller",
			newRule("update", "patch", "list", "watch").groups(legacy).resources("nodes").done(),
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
