// Package bootstrap is the RBAC policy every cluster starts with: upstream's
// bootstrap ClusterRoles, ClusterRoleBindings and kube-system Roles
// (plugin/pkg/auth/authorizer/rbac/bootstrappolicy), restricted to what skiff
// serves and runs, with the per-controller roles (system:controller:*) of
// the controllers skiff runs.
package bootstrap

import (
	"sort"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"
)

var (
	write     = []string{"create", "update", "patch", "delete", "deletecollection"}
	readWrite = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
	read      = []string{"get", "list", "watch"}
	readUpd   = []string{"get", "list", "watch", "update", "patch"}
)

// Labels and annotations of every bootstrap object: the annotation lets
// the reconciliation add missing rules and subjects at each start unless an
// admin sets it to "false".
var (
	Label      = map[string]string{"kubernetes.io/bootstrapping": "rbac-defaults"}
	Annotation = map[string]string{rbacv1.AutoUpdateAnnotationKey: "true"}
)

// Aggregation labels of the user-facing roles.
const (
	AggregateToAdmin = "rbac.authorization.k8s.io/aggregate-to-admin"
	AggregateToEdit  = "rbac.authorization.k8s.io/aggregate-to-edit"
	AggregateToView  = "rbac.authorization.k8s.io/aggregate-to-view"
)

const (
	legacy         = ""
	apps           = "apps"
	authentication = "authentication.k8s.io"
	authorization  = "authorization.k8s.io"
	autoscaling    = "autoscaling"
	batch          = "batch"
	certificates   = "certificates.k8s.io"
	coordination   = "coordination.k8s.io"
	discovery      = "discovery.k8s.io"
	extensions     = "extensions"
	policy         = "policy"
	rbac           = "rbac.authorization.k8s.io"
	storage        = "storage.k8s.io"
	networking     = "networking.k8s.io"
	events         = "events.k8s.io"
	node           = "node.k8s.io"
	resource       = "resource.k8s.io"
)

// rule builds a PolicyRule as upstream's rbacv1helpers.NewRule: every
// list sorted and without duplicates.
type rule rbacv1.PolicyRule

func newRule(verbs ...string) *rule { return &rule{Verbs: sorted(verbs)} }

func (r *rule) groups(g ...string) *rule    { r.APIGroups = sorted(g); return r }
func (r *rule) resources(s ...string) *rule { r.Resources = sorted(s); return r }
func (r *rule) names(n ...string) *rule     { r.ResourceNames = sorted(n); return r }
func (r *rule) urls(u ...string) *rule      { r.NonResourceURLs = sorted(u); return r }
func (r *rule) done() rbacv1.PolicyRule     { return rbacv1.PolicyRule(*r) }

func sorted(in []string) []string {
	seen := map[string]bool{}
	out := make([]string, 0, len(in))
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func eventsRule() rbacv1.PolicyRule {
	return newRule("create", "update", "patch").groups(legacy, events).resources("events").done()
}

func viewRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		newRule(read...).groups(legacy).resources("pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
			"services", "services/status", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "configmaps").done(),
		newRule(read...).groups(legacy).resources("limitranges", "resourcequotas", "bindings",
			"pods/status", "resourcequotas/status", "namespaces/status", "replicationcontrollers/status", "pods/log").done(),
		newRule(read...).groups(legacy).resources("namespaces").done(),
		newRule(read...).groups(legacy, events).resources("events").done(),
		newRule(read...).groups(discovery).resources("endpointslices").done(),
		newRule(read...).groups(apps).resources("controllerrevisions",
			"statefulsets", "statefulsets/status", "statefulsets/scale",
			"daemonsets", "daemonsets/status",
			"deployments", "deployments/status", "deployments/scale",
			"replicasets", "replicasets/status", "replicasets/scale").done(),
		newRule(read...).groups(autoscaling).resources("horizontalpodautoscalers", "horizontalpodautoscalers/status").done(),
		newRule(read...).groups(batch).resources("jobs", "cronjobs", "cronjobs/status", "jobs/status").done(),
		newRule(read...).groups(extensions).resources("daemonsets", "daemonsets/status", "deployments", "deployments/scale", "deployments/status",
			"ingresses", "ingresses/status", "replicasets", "replicasets/scale", "replicasets/status", "replicationcontrollers/scale",
			"networkpolicies").done(),
		newRule(read...).groups(policy).resources("poddisruptionbudgets", "poddisruptionbudgets/status").done(),
		newRule(read...).groups(networking).resources("networkpolicies", "ingresses", "ingresses/status").done(),
	}
}

func editRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		newRule(read...).groups(legacy).resources("pods/attach", "pods/proxy", "pods/exec", "pods/portforward", "secrets", "services/proxy").done(),
		newRule("impersonate").groups(legacy).resources("serviceaccounts").done(),
		newRule(write...).groups(legacy).resources("pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward").done(),
		newRule("create").groups(legacy).resources("pods/eviction").done(),
		newRule(write...).groups(legacy).resources("replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
			"services", "services/proxy", "persistentvolumeclaims", "configmaps", "secrets").done(),
		newRule("create").groups(legacy).resources("serviceaccounts/token").done(),
		newRule(write...).groups(legacy, events).resources("events").done(),
		newRule(write...).groups(apps).resources("statefulsets", "statefulsets/scale", "daemonsets",
			"deployments", "deployments/scale", "deployments/rollback", "replicasets", "replicasets/scale").done(),
		newRule(write...).groups(autoscaling).resources("horizontalpodautoscalers").done(),
		newRule(write...).groups(batch).resources("jobs", "cronjobs").done(),
		newRule(write...).groups(extensions).resources("daemonsets", "deployments", "deployments/scale", "deployments/rollback", "ingresses",
			"replicasets", "replicasets/scale", "replicationcontrollers/scale", "networkpolicies").done(),
		newRule(write...).groups(policy).resources("poddisruptionbudgets").done(),
		newRule(write...).groups(networking).resources("networkpolicies", "ingresses").done(),
		newRule(readWrite...).groups(coordination).resources("leases").done(),
	}
}

// NodeNetworkUser is the user of a node's networking parts (skiff
// server's local node mints its certificate; skiff agent takes a
// kubeconfig of it), bound to the ClusterRole of that name.
const NodeNetworkUser = "system:skiff:node-network"

// NodeRules are the rules of the system:node ClusterRole, upstream's
// NodeRules of v1.37 with its default features (DRA, ClusterTrustBundle,
// KubeletServiceAccountTokenForCredentialProviders, PodCertificateRequest
// on; CSIVolumeHealth off). The Node authorizer applies them to every
// node for what its graph does not subdivide.
func NodeRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		newRule("create").groups(authentication).resources("tokenreviews").done(),
		newRule("create").groups(authorization).resources("subjectaccessreviews", "localsubjectaccessreviews").done(),
		newRule(read...).groups(legacy).resources("services").done(),
		newRule("create", "get", "list", "watch").groups(legacy).resources("nodes").done(),
		newRule("update", "patch").groups(legacy).resources("nodes/status").done(),
		newRule("update", "patch").groups(legacy).resources("nodes").done(),
		newRule("create", "update", "patch").groups(legacy, events).resources("events").done(),
		newRule(read...).groups(legacy).resources("pods").done(),
		newRule("create", "delete").groups(legacy).resources("pods").done(),
		newRule("update", "patch").groups(legacy).resources("pods/status").done(),
		newRule("create").groups(legacy).resources("pods/eviction").done(),
		newRule("get", "list", "watch").groups(legacy).resources("secrets", "configmaps").done(),
		newRule("get").groups(legacy).resources("persistentvolumeclaims", "persistentvolumes").done(),
		newRule("get").groups(legacy).resources("endpoints").done(),
		newRule("create", "get", "list", "watch").groups(certificates).resources("certificatesigningrequests").done(),
		newRule("get", "create", "update", "patch", "delete").groups(coordination).resources("leases").done(),
		newRule("get").groups(storage).resources("volumeattachments").done(),
		newRule("create").groups(legacy).resources("serviceaccounts/token").done(),
		newRule("get", "update", "patch").groups(legacy).resources("persistentvolumeclaims/status").done(),
		newRule("get", "watch", "list").groups(storage).resources("csidrivers").done(),
		newRule("get", "create", "update", "patch", "delete").groups(storage).resources("csinodes").done(),
		newRule("get", "list", "watch").groups(node).resources("runtimeclasses").done(),
		newRule("get").groups(resource).resources("resourceclaims").done(),
		newRule("deletecollection").groups(resource).resources("resourceslices").done(),
		newRule("get", "list", "watch").groups(certificates).resources("clustertrustbundles").done(),
		newRule("get").groups(legacy).resources("serviceaccounts").done(),
		newRule("get", "list", "watch", "create").groups(certificates).resources("podcertificaterequests").done(),
	}
}

func kubeSchedulerRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		eventsRule(),
		newRule("create").groups(coordination).resources("leases").done(),
		newRule("get", "update", "list", "watch").groups(coordination).resources("leases").names("kube-scheduler").done(),
		newRule(readWrite...).groups(coordination).resources("leasecandidates").done(),
		newRule(read...).groups(legacy).resources("nodes").done(),
		newRule("get", "list", "watch", "delete").groups(legacy).resources("pods").done(),
		newRule("create").groups(legacy).resources("pods/binding", "bindings").done(),
		newRule("patch", "update").groups(legacy).resources("pods/status").done(),
		newRule(read...).groups(legacy).resources("services", "replicationcontrollers").done(),
		newRule(read...).groups(apps, extensions).resources("replicasets").done(),
		newRule(read...).groups(apps).resources("statefulsets").done(),
		newRule(read...).groups(policy).resources("poddisruptionbudgets").done(),
		newRule(read...).groups(legacy).resources("persistentvolumeclaims", "persistentvolumes").done(),
		newRule("create").groups(authentication).resources("tokenreviews").done(),
		newRule("create").groups(authorization).resources("subjectaccessreviews").done(),
		newRule(read...).groups(storage).resources("csinodes").done(),
		newRule("get", "list", "watch").groups(storage).resources("volumeattachments").done(),
		newRule(read...).groups(legacy).resources("namespaces").done(),
		newRule(read...).groups(storage).resources("csidrivers").done(),
		newRule(read...).groups(storage).resources("csistoragecapacities").done(),
	}
}

func clusterRole(name string, rules ...rbacv1.PolicyRule) rbacv1.ClusterRole {
	return rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}
}

// aggregated is a ClusterRole whose rules the aggregation controller
// gathers from the ClusterRoles labeled selectorLabel=true; labels are its own.
func aggregated(name, selectorLabel string, labels map[string]string) rbacv1.ClusterRole {
	return rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{
			{MatchLabels: map[string]string{selectorLabel: "true"}},
		}},
	}
}

func labeled(role rbacv1.ClusterRole, key string) rbacv1.ClusterRole {
	role.Labels = map[string]string{key: "true"}
	return role
}

// ClusterRoles are the bootstrap ClusterRoles, labels and annotation set.
func ClusterRoles() []rbacv1.ClusterRole {
	monitoringURLs := []string{"/metrics", "/metrics/slis", "/livez", "/readyz", "/healthz", "/livez/*", "/readyz/*", "/healthz/*"}
	roles := []rbacv1.ClusterRole{
		clusterRole("cluster-admin",
			newRule("*").groups("*").resources("*").done(),
			newRule("*").urls("*").done()),
		clusterRole("system:discovery",
			newRule("get").urls("/livez", "/readyz", "/healthz", "/version", "/version/",
				"/openapi", "/openapi/*", "/api", "/api/*", "/apis", "/apis/*").done()),
		clusterRole("system:monitoring",
			newRule("get").urls(monitoringURLs...).done(),
			newRule("get").groups(legacy).resources("nodes/metrics").done()),
		clusterRole("system:basic-user",
			newRule("create").groups(authorization).resources("selfsubjectaccessreviews", "selfsubjectrulesreviews").done(),
			newRule("create").groups(authentication).resources("selfsubjectreviews").done()),
		clusterRole("system:public-info-viewer",
			newRule("get").urls("/livez", "/readyz", "/healthz", "/version", "/version/").done()),
		aggregated("admin", AggregateToAdmin, nil),
		aggregated("edit", AggregateToEdit, map[string]string{AggregateToAdmin: "true"}),
		aggregated("view", AggregateToView, map[string]string{AggregateToEdit: "true"}),
		labeled(clusterRole("system:aggregate-to-admin",
			newRule("create").groups(authorization).resources("localsubjectaccessreviews").done(),
			newRule(readWrite...).groups(rbac).resources("roles", "rolebindings").done()), AggregateToAdmin),
		labeled(clusterRole("system:aggregate-to-edit", editRules()...), AggregateToEdit),
		labeled(clusterRole("system:aggregate-to-view", viewRules()...), AggregateToView),
		// metrics-server's reader of metrics.k8s.io (served by skiff
		// itself), aggregated into admin, edit and view.
		{ObjectMeta: metav1.ObjectMeta{Name: "system:aggregated-metrics-reader", Labels: map[string]string{
			"k8s-app": "metrics-server", AggregateToAdmin: "true", AggregateToEdit: "true", AggregateToView: "true"}},
			Rules: []rbacv1.PolicyRule{newRule("get", "list", "watch").groups("metrics.k8s.io").resources("pods", "nodes").done()}},
		clusterRole("system:heapster",
			newRule(read...).groups(legacy).resources("events", "pods", "nodes", "namespaces").done(),
			newRule(read...).groups(extensions).resources("deployments").done()),
		clusterRole("system:node", NodeRules()...),
		clusterRole("system:node-problem-detector",
			newRule("get").groups(legacy).resources("nodes").done(),
			newRule("patch").groups(legacy).resources("nodes/status").done(),
			eventsRule()),
		clusterRole("system:node-bootstrapper",
			newRule("create", "get", "list", "watch").groups(certificates).resources("certificatesigningrequests").done()),
		clusterRole("system:auth-delegator",
			newRule("create").groups(authentication).resources("tokenreviews").done(),
			newRule("create").groups(authorization).resources("subjectaccessreviews").done()),
		clusterRole("system:kube-aggregator",
			newRule(read...).groups(legacy).resources("services", "endpoints").done()),
		clusterRole("system:kube-controller-manager",
			eventsRule(),
			newRule("create").groups(coordination).resources("leases").done(),
			newRule("get", "update").groups(coordination).resources("leases").names("kube-controller-manager").done(),
			newRule("create").groups(legacy).resources("secrets", "serviceaccounts").done(),
			newRule("delete").groups(legacy).resources("secrets").done(),
			newRule("get").groups(legacy).resources("namespaces", "secrets", "serviceaccounts", "configmaps").done(),
			newRule("update").groups(legacy).resources("secrets", "serviceaccounts").done(),
			newRule("create").groups(authentication).resources("tokenreviews").done(),
			newRule("create").groups(authorization).resources("subjectaccessreviews").done(),
			newRule("list", "watch").groups("*").resources("*").done(),
			newRule("create").groups(legacy).resources("serviceaccounts/token").done()),
		clusterRole("system:kube-dns",
			newRule("list", "watch").groups(legacy).resources("endpoints", "services").done()),
		clusterRole("system:persistent-volume-provisioner",
			newRule("get", "list", "watch", "create", "delete").groups(legacy).resources("persistentvolumes").done(),
			newRule("get", "list", "watch", "update").groups(legacy).resources("persistentvolumeclaims").done(),
			newRule(read...).groups(storage).resources("storageclasses").done(),
			newRule("watch").groups(legacy).resources("events").done(),
			eventsRule()),
		clusterRole("system:certificates.k8s.io:certificatesigningrequests:nodeclient",
			newRule("create").groups(certificates).resources("certificatesigningrequests/nodeclient").done()),
		clusterRole("system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
			newRule("create").groups(certificates).resources("certificatesigningrequests/selfnodeclient").done()),
		clusterRole("system:volume-scheduler",
			newRule(readUpd...).groups(legacy).resources("persistentvolumes").done(),
			newRule(read...).groups(storage).resources("storageclasses").done(),
			newRule(readUpd...).groups(legacy).resources("persistentvolumeclaims").done()),
		clusterRole("system:certificates.k8s.io:legacy-unknown-approver",
			newRule("approve").groups(certificates).resources("signers").names("kubernetes.io/legacy-unknown").done()),
		clusterRole("system:certificates.k8s.io:kubelet-serving-approver",
			newRule("approve").groups(certificates).resources("signers").names("kubernetes.io/kubelet-serving").done()),
		clusterRole("system:certificates.k8s.io:kube-apiserver-client-approver",
			newRule("approve").groups(certificates).resources("signers").names("kubernetes.io/kube-apiserver-client").done()),
		clusterRole("system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
			newRule("approve").groups(certificates).resources("signers").names("kubernetes.io/kube-apiserver-client-kubelet").done()),
		clusterRole("system:service-account-issuer-discovery",
			newRule("get").urls("/.well-known/openid-configuration", "/.well-known/openid-configuration/",
				"/openid/v1/jwks", "/openid/v1/jwks/").done()),
		clusterRole("system:kubelet-api-admin",
			newRule("get", "list", "watch").groups(legacy).resources("nodes").done(),
			newRule("proxy").groups(legacy).resources("nodes").done(),
			newRule("*").groups(legacy).resources("nodes/proxy", "nodes/metrics", "nodes/stats", "nodes/log").done()),
		clusterRole("system:node-proxier",
			newRule("list", "watch").groups(legacy).resources("services", "endpoints").done(),
			newRule("get", "list", "watch").groups(legacy).resources("nodes").done(),
			eventsRule(),
			newRule("list", "watch").groups(networking).resources("servicecidrs").done(),
			newRule("list", "watch").groups(discovery).resources("endpointslices").done()),
		clusterRole("system:kube-scheduler", kubeSchedulerRules()...),
		// skiff's own (as k3s's agent): the identity of a node's service
		// proxy, pod network and NetworkPolicy enforcement, reading what
		// kube-proxy, a host-gw network plugin and a policy agent read.
		// Not the nodes' group: the Node authorizer keeps a node to its
		// own Node and pods.
		clusterRole(NodeNetworkUser,
			newRule("list", "watch").groups(legacy).resources("services", "endpoints", "pods", "namespaces").done(),
			newRule("get", "list", "watch").groups(legacy).resources("nodes").done(),
			newRule("list", "watch").groups(discovery).resources("endpointslices").done(),
			newRule("list", "watch").groups(networking).resources("servicecidrs", "networkpolicies").done(),
			eventsRule()),
	}
	roles = append(roles, controllerRoles()...)
	for i := range roles {
		addDefaultMetadata(&roles[i].ObjectMeta)
	}
	return roles
}

func clusterBinding(role string, subjects ...rbacv1.Subject) rbacv1.ClusterRoleBinding {
	return rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   subjects,
	}
}

func groups(names ...string) []rbacv1.Subject {
	var out []rbacv1.Subject
	for _, n := range names {
		out = append(out, rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: n})
	}
	return out
}

func users(names ...string) []rbacv1.Subject {
	var out []rbacv1.Subject
	for _, n := range names {
		out = append(out, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: n})
	}
	return out
}

func serviceAccounts(namespace string, names ...string) []rbacv1.Subject {
	var out []rbacv1.Subject
	for _, n := range names {
		out = append(out, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: n})
	}
	return out
}

// ClusterRoleBindings are the bootstrap ClusterRoleBindings.
func ClusterRoleBindings() []rbacv1.ClusterRoleBinding {
	bindings := []rbacv1.ClusterRoleBinding{
		clusterBinding("cluster-admin", groups(user.SystemPrivilegedGroup)...),
		clusterBinding("system:monitoring", groups(user.MonitoringGroup)...),
		clusterBinding("system:discovery", groups(user.AllAuthenticated)...),
		clusterBinding("system:basic-user", groups(user.AllAuthenticated)...),
		clusterBinding("system:public-info-viewer", groups(user.AllAuthenticated, user.AllUnauthenticated)...),
		clusterBinding("system:node-proxier", users(user.KubeProxy)...),
		clusterBinding(NodeNetworkUser, users(NodeNetworkUser)...),
		clusterBinding("system:kube-controller-manager", users(user.KubeControllerManager)...),
		clusterBinding("system:kube-dns", serviceAccounts(metav1.NamespaceSystem, "kube-dns")...),
		clusterBinding("system:kube-scheduler", users(user.KubeScheduler)...),
		clusterBinding("system:volume-scheduler", users(user.KubeScheduler)...),
		// As upstream, without subjects: the Node authorizer grants nodes
		// their rights.
		clusterBinding("system:node"),
		clusterBinding("system:service-account-issuer-discovery", groups(serviceaccount.AllServiceAccountsGroup)...),
		// skiff's own (as k3s's kube-apiserver-kubelet-admin): the user of
		// the API server's kubelet client certificate may use every
		// kubelet API (logs, exec, stats, ...).
		{
			ObjectMeta: metav1.ObjectMeta{Name: "kube-apiserver-kubelet-admin"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:kubelet-api-admin"},
			Subjects:   users("kube-apiserver-kubelet-client"),
		},
	}
	bindings = append(bindings, controllerRoleBindings()...)
	for i := range bindings {
		addDefaultMetadata(&bindings[i].ObjectMeta)
	}
	return bindings
}

// Roles are the bootstrap Roles by namespace.
func Roles() map[string][]rbacv1.Role {
	leaderLocking := []rbacv1.PolicyRule{
		newRule("get", "watch", "list", "create", "update").groups(coordination).resources("leases").done(),
		newRule("get", "watch", "list", "create", "update").groups(coordination).resources("leasecandidates").done(),
	}
	roles := []rbacv1.Role{
		{ObjectMeta: metav1.ObjectMeta{Name: "extension-apiserver-authentication-reader"}, Rules: []rbacv1.PolicyRule{
			newRule("get", "list", "watch").groups(legacy).resources("configmaps").names("extension-apiserver-authentication").done(),
		}},
		{ObjectMeta: metav1.ObjectMeta{Name: "system::leader-locking-kube-controller-manager"}, Rules: leaderLocking},
		{ObjectMeta: metav1.ObjectMeta{Name: "system::leader-locking-kube-scheduler"}, Rules: leaderLocking},
	}
	roles = append(roles, controllerNamespaceRoles()...)
	for i := range roles {
		roles[i].Namespace = metav1.NamespaceSystem
		addDefaultMetadata(&roles[i].ObjectMeta)
	}
	return map[string][]rbacv1.Role{metav1.NamespaceSystem: roles}
}

// RoleBindings are the bootstrap RoleBindings by namespace.
func RoleBindings() map[string][]rbacv1.RoleBinding {
	binding := func(name, role string, subjects ...rbacv1.Subject) rbacv1.RoleBinding {
		b := rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceSystem},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role},
			Subjects:   subjects,
		}
		addDefaultMetadata(&b.ObjectMeta)
		return b
	}
	return map[string][]rbacv1.RoleBinding{metav1.NamespaceSystem: {
		binding("system::extension-apiserver-authentication-reader", "extension-apiserver-authentication-reader",
			users(user.KubeControllerManager, user.KubeScheduler)...),
		binding("system::leader-locking-kube-controller-manager", "system::leader-locking-kube-controller-manager",
			append(users(user.KubeControllerManager), serviceAccounts(metav1.NamespaceSystem, "kube-controller-manager", "leader-election-controller")...)...),
		binding("system::leader-locking-kube-scheduler", "system::leader-locking-kube-scheduler",
			append(users(user.KubeScheduler), serviceAccounts(metav1.NamespaceSystem, "kube-scheduler")...)...),
		binding(ControllerRolePrefix+"token-cleaner", ControllerRolePrefix+"token-cleaner",
			serviceAccounts(metav1.NamespaceSystem, "token-cleaner")...),
	}}
}

func addDefaultMetadata(m *metav1.ObjectMeta) {
	if m.Labels == nil {
		m.Labels = map[string]string{}
	}
	for k, v := range Label {
		m.Labels[k] = v
	}
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	for k, v := range Annotation {
		m.Annotations[k] = v
	}
}
