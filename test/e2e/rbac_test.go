package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestRBAC checks, with every kubectl found, RBAC as kubectl users meet it:
// bindings, `auth can-i`, `auth whoami`, ServiceAccount tokens, escalation
// prevention and the aggregation of the view role.
func TestRBAC(t *testing.T) {
	forEachKubectl(t, func(t *testing.T, k *kctl) {
		t.Run("ViewBinding", func(t *testing.T) { testViewBinding(t, k) })
		t.Run("ServiceAccountToken", func(t *testing.T) { testServiceAccountRBAC(t, k) })
		t.Run("Escalation", func(t *testing.T) { testEscalation(t, k) })
		t.Run("Aggregation", func(t *testing.T) { testAggregation(t, k) })
	})
}

// testViewBinding: alice, unbound, is refused with upstream's message; a
// RoleBinding to view lets her read pods but not create them.
func testViewBinding(t *testing.T, k *kctl) {
	alice := userKubeconfig(t, k.srv, "alice")
	out := k.fail(t, "--kubeconfig", alice, "get", "pods", "-n", k.ns)
	assertContains(t, out, `Error from server (Forbidden): pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "`+k.ns+`"`)
	assertEqual(t, "can-i list pods as alice, unbound", strings.TrimSpace(k.run("auth", "can-i", "list", "pods", "--as", "alice").stdout), "no")

	out = k.ok(t, "create", "rolebinding", "a", "--clusterrole=view", "--user=alice")
	assertContains(t, out, "rolebinding.rbac.authorization.k8s.io/a created")
	// view gets its rules from the aggregation controller.
	eventually(t, 20*time.Second, func() string {
		if r := k.run("--kubeconfig", alice, "get", "pods", "-n", k.ns); r.err != nil {
			return fmt.Sprintf("alice cannot list pods after the binding:\n%s", r)
		}
		return ""
	})
	out = k.fail(t, "--kubeconfig", alice, "run", "p", "--image=busybox", "-n", k.ns)
	assertContains(t, out, `pods is forbidden: User "alice" cannot create resource "pods" in API group "" in the namespace "`+k.ns+`"`)
	assertEqual(t, "can-i list pods as alice", k.ok(t, "auth", "can-i", "list", "pods", "--as", "alice"), "yes")
	assertEqual(t, "can-i get pods/log as alice", k.ok(t, "auth", "can-i", "get", "pods", "--subresource=log", "--as", "alice"), "yes")
	assertEqual(t, "can-i create pods as alice", strings.TrimSpace(k.run("auth", "can-i", "create", "pods", "--as", "alice").stdout), "no")
	assertEqual(t, "can-i list secrets as alice", strings.TrimSpace(k.run("auth", "can-i", "list", "secrets", "--as", "alice").stdout), "no")
	assertEqual(t, "can-i as alice herself", k.ok(t, "--kubeconfig", alice, "auth", "can-i", "watch", "deployments.apps", "-n", k.ns), "yes")

	list := k.ok(t, "auth", "can-i", "--list", "--as", "alice")
	if !strings.HasPrefix(normalize(list), "Resources Non-Resource URLs Resource Names Verbs ") {
		t.Errorf("can-i --list --as alice: headers of\n%s", list)
	}
	for _, row := range []string{
		"pods [] [] [get list watch]",
		"deployments.apps [] [] [get list watch]",
		"selfsubjectaccessreviews.authorization.k8s.io [] [] [create]",
		"selfsubjectrulesreviews.authorization.k8s.io [] [] [create]",
		"[/api/*] [] [get]",
		"[/version] [] [get]",
	} {
		if !strings.Contains(normalize(list), row) {
			t.Errorf("can-i --list --as alice lacks %q:\n%s", row, list)
		}
	}
	if strings.Contains(list, "secrets") {
		t.Errorf("can-i --list --as alice lists secrets:\n%s", list)
	}

	if minor(k.bin.version) >= 28 {
		out = normalize(k.ok(t, "--kubeconfig", alice, "auth", "whoami"))
		assertContains(t, out, "ATTRIBUTE VALUE Username alice Groups [system:authenticated]")
	}
}

// testServiceAccountRBAC: a ServiceAccount's token may do what its role
// allows and nothing else.
func testServiceAccountRBAC(t *testing.T, k *kctl) {
	k.ok(t, "create", "serviceaccount", "bot")
	k.ok(t, "create", "role", "cm-reader", "--verb=get,list", "--resource=configmaps")
	k.ok(t, "create", "rolebinding", "bot", "--role=cm-reader", "--serviceaccount="+k.ns+":bot")
	k.ok(t, "create", "configmap", "bot-cm", "--from-literal=a=b")
	token := k.ok(t, "create", "token", "bot")
	user := "system:serviceaccount:" + k.ns + ":bot"
	eventually(t, 10*time.Second, func() string {
		if r := k.asToken(token, "get", "configmaps", "-n", k.ns); r.err != nil || !strings.Contains(r.stdout, "bot-cm") {
			return fmt.Sprintf("the token cannot list configmaps:\n%s", r)
		}
		return ""
	})
	for _, args := range [][]string{{"get", "pods", "-n", k.ns}, {"get", "secrets", "-n", k.ns}, {"get", "configmaps", "-n", "default"}, {"delete", "configmap", "bot-cm", "-n", k.ns}} {
		r := k.asToken(token, args...)
		if r.err == nil || !strings.Contains(r.stderr, "Forbidden") || !strings.Contains(r.stderr, `User "`+user+`" cannot`) {
			t.Errorf("%v with the token: want Forbidden for %s:\n%s", args, user, r)
		}
	}
	r := k.asToken(token, "auth", "can-i", "--list", "-n", k.ns)
	if r.err != nil || !strings.Contains(normalize(r.stdout), "configmaps [] [] [get list]") || strings.Contains(r.stdout, "pods") {
		t.Errorf("can-i --list with the token:\n%s", r)
	}
}

// testEscalation: who may create RoleBindings still cannot grant rules they
// do not hold, unless they may "bind" the role.
func testEscalation(t *testing.T, k *kctl) {
	eve := userKubeconfig(t, k.srv, "eve")
	k.ok(t, "create", "role", "binder", "--verb=create,get,list", "--resource=rolebindings.rbac.authorization.k8s.io")
	k.ok(t, "create", "rolebinding", "eve", "--role=binder", "--user=eve")
	eventually(t, 10*time.Second, func() string {
		if r := k.run("--kubeconfig", eve, "get", "rolebindings", "-n", k.ns); r.err != nil {
			return fmt.Sprintf("eve cannot list rolebindings:\n%s", r)
		}
		return ""
	})
	out := k.fail(t, "--kubeconfig", eve, "create", "rolebinding", "mallory", "--clusterrole=edit", "--user=mallory", "-n", k.ns)
	assertContains(t, out, `rolebindings.rbac.authorization.k8s.io "mallory" is forbidden: user "eve" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:`,
		`{APIGroups:[""], Resources:["secrets"], Verbs:[`)
	// The binder role itself eve holds, so she may bind it.
	k.ok(t, "--kubeconfig", eve, "create", "rolebinding", "mallory-binder", "--role=binder", "--user=mallory", "-n", k.ns)
	// With "bind" on edit she may bind it.
	k.ok(t, "create", "role", "bind-edit", "--verb=bind", "--resource=clusterroles.rbac.authorization.k8s.io", "--resource-name=edit")
	k.ok(t, "create", "rolebinding", "eve-bind-edit", "--role=bind-edit", "--user=eve")
	eventually(t, 10*time.Second, func() string {
		if r := k.run("--kubeconfig", eve, "create", "rolebinding", "mallory", "--clusterrole=edit", "--user=mallory", "-n", k.ns); r.err != nil {
			return fmt.Sprintf("eve cannot bind edit with the bind verb:\n%s", r)
		}
		return ""
	})
}

// testAggregation: a ClusterRole labeled aggregate-to-view adds its rules
// to view (and so to edit and admin), and takes them away when deleted.
func testAggregation(t *testing.T, k *kctl) {
	// A rule of this namespace's own (other kubectls run this in parallel).
	name := "podtemplate-viewer-" + k.ns
	k.okStdin(t, `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: `+name+`
  labels:
    rbac.authorization.k8s.io/aggregate-to-view: "true"
rules:
- apiGroups: [""]
  resources: ["podtemplates"]
  resourceNames: ["`+k.ns+`"]
  verbs: ["get"]
`, "apply", "-f", "-")
	for _, role := range []string{"view", "edit", "admin"} {
		eventually(t, 20*time.Second, func() string {
			if r := k.run("get", "clusterrole", role, "-o", "jsonpath={.rules[*].resourceNames}"); r.err != nil || !strings.Contains(r.stdout, k.ns) {
				return fmt.Sprintf("%s lacks the aggregated rule:\n%s", role, r)
			}
			return ""
		})
	}
	alice := "alice-agg"
	k.ok(t, "create", "rolebinding", "agg", "--clusterrole=view", "--user="+alice)
	eventually(t, 10*time.Second, func() string {
		if out := strings.TrimSpace(k.run("auth", "can-i", "get", "podtemplates/"+k.ns, "--as", alice).stdout); out != "yes" {
			return "can-i get podtemplates/" + k.ns + " as " + alice + ": " + out
		}
		return ""
	})
	k.ok(t, "delete", "clusterrole", name)
	eventually(t, 20*time.Second, func() string {
		if r := k.run("get", "clusterrole", "view", "-o", "jsonpath={.rules[*].resourceNames}"); r.err != nil || strings.Contains(r.stdout, k.ns) {
			return fmt.Sprintf("view keeps the rule of a deleted role:\n%s", r)
		}
		return ""
	})
	eventually(t, 10*time.Second, func() string {
		if out := strings.TrimSpace(k.run("auth", "can-i", "get", "podtemplates/"+k.ns, "--as", alice).stdout); out != "no" {
			return "can-i get podtemplates/" + k.ns + " as " + alice + " after the role's deletion: " + out
		}
		return ""
	})
}
