package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/test/harness"
)

// auditEvent is what the tests read of an audit.k8s.io/v1 Event.
type auditEvent struct {
	Verb string `json:"verb"`
	User struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef struct {
		Resource, Namespace, Name string
	} `json:"objectRef"`
	ResponseStatus struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// auditCreates are the create requests of resource in namespace in the
// audit log at path.
func auditCreates(t *testing.T, path, resource, namespace string) []auditEvent {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []auditEvent
	scanner := bufio.NewScanner(bytes.NewReader(data))
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		var e auditEvent
		if json.Unmarshal(scanner.Bytes(), &e) == nil && e.Verb == "create" &&
			e.ObjectRef.Resource == resource && e.ObjectRef.Namespace == namespace {
			out = append(out, e)
		}
	}
	return out
}

// TestControllerServiceAccounts: `skiff server` runs its controllers as
// upstream's kube-controller-manager with --use-service-account-credentials:
// the audit log names each controller's ServiceAccount as the user of its
// writes, and a controller whose ClusterRoleBinding is removed is refused
// (403) until the binding is back.
func TestControllerServiceAccounts(t *testing.T) {
	paths := findKubectls()
	if len(paths) == 0 {
		t.Skip("no kubectl found: pass -kubectl=PATH or KUBECTL=PATH, install the Google Cloud SDK kubectls, or run hack/build-kubectl.sh")
	}
	dir := t.TempDir()
	policy := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(`apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  verbs: [create]
  resources: [{group: "", resources: [serviceaccounts, configmaps]}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	auditLog := filepath.Join(dir, "audit.log")
	srv, err := harness.StartSkiff(context.Background(), harness.Options{Args: []string{"--audit-policy-file", policy, "--audit-log-path", auditLog}})
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, srv)
	k := newKctl(t, resolveKubectl(t, paths[len(paths)-1]), srv)

	// The namespace of newKctl got its default ServiceAccount and
	// kube-root-ca.crt from the controllers, each as its ServiceAccount.
	for _, c := range []struct{ resource, name, user string }{
		{"serviceaccounts", "default", "system:serviceaccount:kube-system:service-account-controller"},
		{"configmaps", "kube-root-ca.crt", "system:serviceaccount:kube-system:root-ca-cert-publisher"},
	} {
		eventually(t, 20*time.Second, func() string {
			for _, e := range auditCreates(t, auditLog, c.resource, k.ns) {
				if e.ObjectRef.Name == c.name && e.ResponseStatus.Code == 201 {
					if e.User.Username != c.user {
						t.Errorf("%s %s created by %q, want %q", c.resource, c.name, e.User.Username, c.user)
					}
					return ""
				}
			}
			return fmt.Sprintf("no audited create of %s %s/%s", c.resource, k.ns, c.name)
		})
	}
	accounts := k.ok(t, "get", "serviceaccounts", "-n", "kube-system", "-o", "name")
	assertContains(t, accounts, "serviceaccount/service-account-controller", "serviceaccount/root-ca-cert-publisher")

	// Without its binding the ServiceAccount controller is refused.
	const binding = "system:controller:service-account-controller"
	k.ok(t, "get", "clusterrolebinding", binding)
	k.ok(t, "delete", "clusterrolebinding", binding)
	unbound := k.ns + "-unbound"
	k.ok(t, "create", "namespace", unbound)
	t.Cleanup(func() { k.run("delete", "namespace", unbound, "--wait=false") })
	eventually(t, 20*time.Second, func() string {
		for _, e := range auditCreates(t, auditLog, "serviceaccounts", unbound) {
			if e.ResponseStatus.Code == 403 && e.User.Username == "system:serviceaccount:kube-system:service-account-controller" {
				return ""
			}
		}
		return "the ServiceAccount controller's create in " + unbound + " was not refused"
	})
	if r := k.run("get", "serviceaccount", "default", "-n", unbound); r.err == nil {
		t.Fatalf("namespace %s got a default ServiceAccount without the controller's binding", unbound)
	}

	// The binding back (as the bootstrap policy has it): the controller
	// catches up.
	k.ok(t, "create", "clusterrolebinding", binding, "--clusterrole="+binding, "--serviceaccount=kube-system:service-account-controller")
	eventually(t, 30*time.Second, func() string {
		// A change of the namespace makes it try again at once.
		k.run("label", "namespace", unbound, "retry="+fmt.Sprint(time.Now().UnixNano()), "--overwrite")
		if r := k.run("get", "serviceaccount", "default", "-n", unbound); r.err != nil {
			return "no default ServiceAccount after the binding is back:\n" + r.String()
		}
		return ""
	})
	last := auditCreates(t, auditLog, "serviceaccounts", unbound)
	if n := len(last); n == 0 || last[n-1].ResponseStatus.Code != 201 || !strings.HasSuffix(last[n-1].User.Username, ":service-account-controller") {
		t.Errorf("last audited create in %s: %+v", unbound, last)
	}
}
