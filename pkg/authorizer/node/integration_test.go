package node_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/pkg/apiserver/options"
	"github.com/skiff-dev/skiff/pkg/pki"
	"github.com/skiff-dev/skiff/test/integration"
)

// TestNodeAuthorization runs a real API server (authorization Node,RBAC;
// NodeRestriction in the admission chain) and acts as the kubelet of node
// n1 with a client certificate of system:node:n1 in system:nodes: it
// reads only the secrets its pods use, writes only its own Node, Lease
// and pods' status, and gets upstream's 403s otherwise; users who are not
// nodes are left to RBAC.
func TestNodeAuthorization(t *testing.T) {
	var opts *options.Options
	admin := integration.StartAPIServer(t, integration.ServerOptions{Customize: func(o *options.Options) { opts = o }})
	ca, err := pki.LoadCA(opts.PKIDir())
	if err != nil {
		t.Fatal(err)
	}
	adminClient := kubernetes.NewForConfigOrDie(admin)
	asUser := func(name string, groups ...string) *kubernetes.Clientset {
		certPEM, keyPEM, err := ca.NewClientCert(name, groups)
		if err != nil {
			t.Fatal(err)
		}
		cfg := restclient.AnonymousClientConfig(admin)
		cfg.CertData, cfg.KeyData = certPEM, keyPEM
		return kubernetes.NewForConfigOrDie(cfg)
	}
	n1 := asUser("system:node:n1", "system:nodes")
	ctx := context.Background()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}

	must(adminClient.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps"}}, metav1.CreateOptions{}))
	must(adminClient.CoreV1().ServiceAccounts("apps").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}))
	for _, s := range []string{"used-by-n1", "used-by-n2"} {
		must(adminClient.CoreV1().Secrets("apps").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: s}}, metav1.CreateOptions{}))
	}
	for _, n := range []string{"n1", "n2"} {
		must(adminClient.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}))
	}
	podOn := func(name, node, secret string) {
		t.Helper()
		must(adminClient.CoreV1().Pods("apps").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
				Volumes: []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}}}},
		}, metav1.CreateOptions{}))
	}
	podOn("web-1", "n1", "used-by-n1")
	podOn("web-2", "n2", "used-by-n2")

	forbidden := func(err error, want string) string {
		switch {
		case err == nil:
			return "allowed, want 403"
		case !apierrors.IsForbidden(err):
			return "error " + err.Error() + ", want 403"
		case !strings.Contains(err.Error(), want):
			return "403 " + err.Error() + ", want one saying " + want
		}
		return ""
	}

	// Secrets: the one of its pod (once the graph has the pod), not another's;
	// the reason is prefixed with the authorizer's name, as upstream's union.
	integration.Eventually(t, 10*time.Second, func() string {
		if _, err := n1.CoreV1().Secrets("apps").Get(ctx, "used-by-n1", metav1.GetOptions{}); err != nil {
			return "the secret of n1's pod: " + err.Error()
		}
		return ""
	})
	_, err = n1.CoreV1().Secrets("apps").Get(ctx, "used-by-n2", metav1.GetOptions{})
	if p := forbidden(err, `secrets "used-by-n2" is forbidden: User "system:node:n1" cannot get resource "secrets" in API group "" in the namespace "apps": node: no relationship found between node 'n1' and this object`); p != "" {
		t.Errorf("the secret of n2's pod: %s", p)
	}
	_, err = n1.CoreV1().Secrets("apps").List(ctx, metav1.ListOptions{})
	if p := forbidden(err, "No Object name found"); p != "" {
		t.Errorf("listing secrets: %s", p)
	}

	// Nodes: its own, not another's.
	if _, err := n1.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{}); err != nil {
		t.Errorf("reading its Node: %v", err)
	}
	_, err = n1.CoreV1().Nodes().Get(ctx, "n2", metav1.GetOptions{})
	if p := forbidden(err, "node 'n1' cannot read 'n2', only its own Node object"); p != "" {
		t.Errorf("reading n2: %s", p)
	}
	ready := []byte(`{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"kubelet is posting ready status"}]}}`)
	if _, err := n1.CoreV1().Nodes().Patch(ctx, "n1", types.StrategicMergePatchType, ready, metav1.PatchOptions{}, "status"); err != nil {
		t.Errorf("patching its Node's status: %v", err)
	}
	_, err = n1.CoreV1().Nodes().Patch(ctx, "n2", types.StrategicMergePatchType, ready, metav1.PatchOptions{}, "status")
	if p := forbidden(err, `nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"`); p != "" {
		t.Errorf("patching n2's status: %s", p)
	}
	taint := []byte(`{"spec":{"taints":[{"key":"x","effect":"NoSchedule"}]}}`)
	_, err = n1.CoreV1().Nodes().Patch(ctx, "n1", types.StrategicMergePatchType, taint, metav1.PatchOptions{})
	if p := forbidden(err, `node "n1" is not allowed to modify taints`); p != "" {
		t.Errorf("tainting itself: %s", p)
	}

	// Pods: the status of its own, not another's; no pods but mirror pods.
	running := func(name string) error {
		body, _ := json.Marshal(map[string]any{"status": map[string]any{"phase": "Running"}})
		_, err := n1.CoreV1().Pods("apps").Patch(ctx, name, types.StrategicMergePatchType, body, metav1.PatchOptions{}, "status")
		return err
	}
	if err := running("web-1"); err != nil {
		t.Errorf("updating the status of its pod: %v", err)
	}
	if p := forbidden(running("web-2"), `pods "web-2" is forbidden: node "n1" can only update pod status for pods with spec.nodeName set to itself`); p != "" {
		t.Errorf("updating the status of n2's pod: %s", p)
	}
	_, err = n1.CoreV1().Pods("apps").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "sneaky"},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}, metav1.CreateOptions{})
	if p := forbidden(err, `node "n1" can only create mirror pods`); p != "" {
		t.Errorf("creating a regular pod: %s", p)
	}
	if _, err := n1.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=n1"}); err != nil {
		t.Errorf("listing its pods: %v", err)
	}
	_, err = n1.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if p := forbidden(err, "can only list/watch pods with spec.nodeName field selector"); p != "" {
		t.Errorf("listing every pod: %s", p)
	}

	// Leases: its own only.
	lease := func(name string) error {
		_, err := n1.CoordinationV1().Leases("kube-node-lease").Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	}
	if err := lease("n1"); err != nil {
		t.Errorf("creating its Lease: %v", err)
	}
	if p := forbidden(lease("n2"), "can only access node lease with the same name as the requesting node"); p != "" {
		t.Errorf("creating n2's Lease: %s", p)
	}

	// Users who are not nodes are RBAC's: denied without a role (and no
	// node reason), allowed with one; NodeRestriction leaves them alone.
	for _, u := range []*kubernetes.Clientset{
		asUser("alice"),
		asUser("system:bootstrap:abcdef", "system:bootstrappers"),
		asUser("system:node:n1"), // the name without the group is no node
	} {
		_, err := u.CoreV1().Secrets("apps").Get(ctx, "used-by-n1", metav1.GetOptions{})
		if p := forbidden(err, `cannot get resource "secrets"`); p != "" || strings.Contains(err.Error(), "relationship") {
			t.Errorf("a user who is not a node reading a secret without RBAC: %v", err)
		}
	}
	must(adminClient.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "test-node-writer"},
		Rules: []rbacv1.PolicyRule{
			{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}},
			{Verbs: []string{"patch"}, APIGroups: []string{""}, Resources: []string{"nodes/status", "pods/status"}},
		}}, metav1.CreateOptions{}))
	must(adminClient.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "test-node-writer"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "test-node-writer"},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "alice"},
			{APIGroup: rbacv1.GroupName, Kind: "Group", Name: "system:bootstrappers"}}}, metav1.CreateOptions{}))
	alice := asUser("alice")
	integration.Eventually(t, 10*time.Second, func() string {
		if _, err := alice.CoreV1().Secrets("apps").Get(ctx, "used-by-n2", metav1.GetOptions{}); err != nil {
			return "alice with RBAC: " + err.Error()
		}
		return ""
	})
	if _, err := asUser("system:bootstrap:abcdef", "system:bootstrappers").CoreV1().Secrets("apps").Get(ctx, "used-by-n2", metav1.GetOptions{}); err != nil {
		t.Errorf("a bootstrap token's user with RBAC: %v", err)
	}
	if _, err := alice.CoreV1().Nodes().Patch(ctx, "n2", types.StrategicMergePatchType, ready, metav1.PatchOptions{}, "status"); err != nil {
		t.Errorf("alice patching n2's status with RBAC: %v", err)
	}
	body, _ := json.Marshal(map[string]any{"status": map[string]any{"phase": "Running"}})
	if _, err := alice.CoreV1().Pods("apps").Patch(ctx, "web-2", types.StrategicMergePatchType, body, metav1.PatchOptions{}, "status"); err != nil {
		t.Errorf("alice patching web-2's status with RBAC: %v", err)
	}
}
