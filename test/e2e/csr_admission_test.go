package e2e

import (
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	certutil "k8s.io/client-go/util/cert"
)

// TestCSRAdmission: a kubectl user who may create, read and update CSRs
// and their approval cannot mint herself a system:masters certificate
// (CertificateSubjectRestriction), cannot approve requests to a signer she
// holds no "approve" on (CertificateApproval) and cannot fail them through
// /status without "sign" (CertificateSigning); given those verbs on the
// signer, she can.
func TestCSRAdmission(t *testing.T) {
	forEachKubectl(t, func(t *testing.T, k *kctl) {
		user := k.ns + "-mallory"
		kubeconfig := userKubeconfig(t, k.srv, user)
		role := k.ns + "-csr-requester"
		k.ok(t, "create", "clusterrole", role, "--verb=create,get,list,update,patch",
			"--resource=certificatesigningrequests,certificatesigningrequests/approval,certificatesigningrequests/status")
		k.ok(t, "create", "clusterrolebinding", role, "--clusterrole="+role, "--user="+user)
		t.Cleanup(func() { k.run("delete", "clusterrolebinding,clusterrole", role) })
		as := func(args ...string) *result { return k.run(append([]string{"--kubeconfig", kubeconfig}, args...)...) }
		eventually(t, 10*time.Second, func() string {
			if r := as("get", "csr"); r.err != nil {
				return fmt.Sprintf("%s cannot list CSRs after the binding:\n%s", user, r)
			}
			return ""
		})

		// system:masters for kube-apiserver-client: refused at create.
		name := k.ns + "-masters"
		out := k.failWith(t, procOpts{stdin: csrYAML(t, name, "kubernetes.io/kube-apiserver-client", user, "system:masters")},
			"--kubeconfig", kubeconfig, "create", "-f", "-")
		assertContains(t, out, `Error from server (Forbidden): error when creating "STDIN": certificatesigningrequests.certificates.k8s.io "`+name+
			`" is forbidden: use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed`)
		if r := k.run("get", "csr", name); r.err == nil {
			t.Errorf("the system:masters CSR exists:\n%s", r)
		}

		// Another group: created, but she may not approve it.
		name = k.ns + "-devs"
		k.okWith(t, procOpts{stdin: csrYAML(t, name, "kubernetes.io/kube-apiserver-client", user, "e2e-devs")},
			"--kubeconfig", kubeconfig, "create", "-f", "-")
		t.Cleanup(func() { k.run("delete", "csr", name) })
		out = k.failWith(t, procOpts{}, "--kubeconfig", kubeconfig, "certificate", "approve", name)
		assertContains(t, out, `certificatesigningrequests.certificates.k8s.io "`+name+
			`" is forbidden: user not permitted to approve requests with signerName "kubernetes.io/kube-apiserver-client"`)
		if got := k.jsonpath(t, "{.status.conditions[*].type}", "csr", name); got != "" {
			t.Errorf("conditions after the refused approval: %q", got)
		}

		// Nor may she fail a request of a signer she does not run.
		custom := k.ns + "-custom"
		k.okWith(t, procOpts{stdin: csrYAML(t, custom, "example.com/"+k.ns, user, "e2e-devs")}, "--kubeconfig", kubeconfig, "create", "-f", "-")
		t.Cleanup(func() { k.run("delete", "csr", custom) })
		failed := `{"status":{"conditions":[{"type":"Failed","status":"True","reason":"E2E","message":"e2e"}]}}`
		out = k.fail(t, "--kubeconfig", kubeconfig, "patch", "csr", custom, "--subresource=status", "--type=merge", "-p", failed)
		assertContains(t, out, `certificatesigningrequests.certificates.k8s.io "`+custom+
			`" is forbidden: user not permitted to sign requests with signerName "example.com/`+k.ns+`"`)

		// With approve on the signer she may approve; the controller signs.
		signer := k.ns + "-signer"
		// (kubectl create clusterrole refuses "signers": not a served resource.)
		k.okStdin(t, signerRoleYAML(signer, "approve", "kubernetes.io/kube-apiserver-client"), "create", "-f", "-")
		k.ok(t, "create", "clusterrolebinding", signer, "--clusterrole="+signer, "--user="+user)
		t.Cleanup(func() { k.run("delete", "clusterrolebinding,clusterrole", signer) })
		eventually(t, 10*time.Second, func() string {
			if r := as("certificate", "approve", name); r.err != nil {
				return fmt.Sprintf("%s cannot approve with approve on the signer:\n%s", user, r)
			}
			return ""
		})
		eventually(t, 20*time.Second, func() string {
			if row := tableRow(k.ok(t, "get", "csr", name), name); len(row) == 0 || row[len(row)-1] != "Approved,Issued" {
				return fmt.Sprintf("CSR after approval: %v, want Approved,Issued", row)
			}
			return ""
		})

		// With sign on example.com/* she may fail her custom signer's request.
		k.okStdin(t, signerRoleYAML(signer+"-sign", "sign", "example.com/*"), "create", "-f", "-")
		k.ok(t, "create", "clusterrolebinding", signer+"-sign", "--clusterrole="+signer+"-sign", "--user="+user)
		t.Cleanup(func() { k.run("delete", "clusterrolebinding,clusterrole", signer+"-sign") })
		eventually(t, 10*time.Second, func() string {
			if r := as("patch", "csr", custom, "--subresource=status", "--type=merge", "-p", failed); r.err != nil {
				return fmt.Sprintf("%s cannot fail the request with sign on example.com/*:\n%s", user, r)
			}
			return ""
		})
		if got := k.jsonpath(t, "{.status.conditions[*].type}", "csr", custom); got != "Failed" {
			t.Errorf("conditions after the status patch: %q, want Failed", got)
		}
	})
}

// TestCertificateControllerRole: the bootstrap policy gives the certificate
// controller's ServiceAccount upstream's approve and sign rights on the
// signers, and no approve on kube-apiserver-client.
func TestCertificateControllerRole(t *testing.T) {
	forEachKubectl(t, func(t *testing.T, k *kctl) {
		sa := "system:serviceaccount:kube-system:certificate-controller"
		for _, c := range []struct {
			verb, signer, want string
		}{
			{"approve", "kubernetes.io/kube-apiserver-client-kubelet", "true"},
			{"approve", "kubernetes.io/kube-apiserver-client", "false"},
			{"sign", "kubernetes.io/kube-apiserver-client", "true"},
			{"sign", "kubernetes.io/kubelet-serving", "true"},
			{"sign", "example.com/foo", "false"},
		} {
			// (kubectl auth can-i does not know "signers" and asks for
			// group "": a SubjectAccessReview asks what the plugins ask.)
			review := fmt.Sprintf(`apiVersion: authorization.k8s.io/v1
kind: SubjectAccessReview
spec:
  user: %s
  resourceAttributes: {group: certificates.k8s.io, version: "*", resource: signers, verb: %s, name: %s}
`, sa, c.verb, c.signer)
			got := k.okStdin(t, review, "create", "-f", "-", "-o", "jsonpath={.status.allowed}")
			if got != c.want {
				t.Errorf("SubjectAccessReview %s %s for %s: allowed %q, want %s", c.verb, c.signer, sa, got, c.want)
			}
		}
		var binding struct {
			Subjects []struct{ Kind, Name, Namespace string }
			RoleRef  struct{ Name string } `json:"roleRef"`
		}
		k.getJSON(t, &binding, "clusterrolebinding", "system:controller:certificate-controller")
		if binding.RoleRef.Name != "system:controller:certificate-controller" || len(binding.Subjects) != 1 ||
			binding.Subjects[0].Kind != "ServiceAccount" || binding.Subjects[0].Namespace != "kube-system" || binding.Subjects[0].Name != "certificate-controller" {
			t.Errorf("system:controller:certificate-controller binding %+v", binding)
		}
	})
}

// signerRoleYAML is a ClusterRole allowing verb on the signer.
func signerRoleYAML(name, verb, signer string) string {
	return fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: %s
rules:
- apiGroups: [certificates.k8s.io]
  resources: [signers]
  resourceNames: [%q]
  verbs: [%s]
`, name, signer, verb)
}

// csrYAML is a CertificateSigningRequest manifest for a client
// certificate of cn in the groups orgs.
func csrYAML(t *testing.T, name, signer, cn string, orgs ...string) string {
	t.Helper()
	pemCSR, err := certutil.MakeCSR(newKey(t), &pkix.Name{CommonName: cn, Organization: orgs}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata:
  name: %s
spec:
  signerName: %s
  request: %s
  usages: [digital signature, client auth]
`, name, signer, base64.StdEncoding.EncodeToString(pemCSR))
}
