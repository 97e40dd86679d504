package e2e

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/certificate/csr"
	"k8s.io/client-go/util/keyutil"

	"github.com/skiff-dev/skiff/test/harness"
)

// TestCertificateSigning: a CSR for kubernetes.io/kube-apiserver-client,
// made with client-go's certificate helpers and approved with `kubectl
// certificate approve`, gets a certificate of the requested lifetime from
// the cluster CA that authenticates as its subject; a request that does
// not fit its signer fails.
func TestCertificateSigning(t *testing.T) {
	paths := findKubectls()
	if len(paths) == 0 {
		t.Skip("no kubectl found: pass -kubectl=PATH or KUBECTL=PATH, install the Google Cloud SDK kubectls, or run hack/build-kubectl.sh")
	}
	srv := sharedServer(t)
	admin := adminClient(t, srv)
	for _, p := range paths {
		bin := resolveKubectl(t, p)
		t.Run(bin.version, func(t *testing.T) {
			t.Parallel()
			k := newKctl(t, bin, srv)
			t.Run("ClientCertificate", func(t *testing.T) { testClientCertificate(t, k, admin) })
			t.Run("SignerValidationFailure", func(t *testing.T) { testSignerValidationFailure(t, k, admin) })
		})
	}
}

func adminClient(t *testing.T, srv *harness.Server) *kubernetes.Clientset {
	t.Helper()
	cfg, err := srv.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(cfg)
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// requestCertificate creates a CSR with client's credentials (client-go's
// certificate/csr helpers).
func requestCertificate(t *testing.T, client kubernetes.Interface, name, signer string, subject pkix.Name, key crypto.Signer, duration *time.Duration, usages ...certificatesv1.KeyUsage) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	der, err := certutil.MakeCSR(key, &subject, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	reqName, _, err := csr.RequestCertificate(client, der, name, signer, duration, usages, key)
	if err != nil {
		t.Fatalf("creating CSR %s: %v", name, err)
	}
	got, err := client.CertificatesV1().CertificateSigningRequests().Get(context.Background(), reqName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.CertificatesV1().CertificateSigningRequests().Delete(context.Background(), reqName, metav1.DeleteOptions{})
	})
	return got
}

// waitForCertificate waits for the CSR's certificate (client-go's
// WaitForCertificate) and parses it.
func waitForCertificate(t *testing.T, client kubernetes.Interface, req *certificatesv1.CertificateSigningRequest) ([]byte, *x509.Certificate) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	certPEM, err := csr.WaitForCertificate(ctx, client, req.Name, req.UID)
	if err != nil {
		t.Fatalf("waiting for the certificate of CSR %s: %v", req.Name, err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatalf("status.certificate is not PEM: %q", certPEM)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, cert
}

// certClient is a client of srv authenticating with the certificate.
func certClient(t *testing.T, srv *harness.Server, certPEM []byte, key crypto.Signer) (*kubernetes.Clientset, string) {
	t.Helper()
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["skiff"] = &clientcmdapi.Cluster{Server: srv.URL, CertificateAuthority: filepath.Join(srv.Dir, "pki", "ca.crt")}
	cfg.AuthInfos["user"] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts["user"] = &clientcmdapi.Context{Cluster: "skiff", AuthInfo: "user"}
	cfg.CurrentContext = "user"
	path := filepath.Join(t.TempDir(), "user.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	restCfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(restCfg), path
}

// whoami is the user a client authenticates as (a SelfSubjectReview).
func whoami(client kubernetes.Interface) (authenticationv1.UserInfo, error) {
	r, err := client.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return authenticationv1.UserInfo{}, err
	}
	return r.Status.UserInfo, nil
}

func testClientCertificate(t *testing.T, k *kctl, admin *kubernetes.Clientset) {
	name := k.ns + "-client"
	user := k.ns + "-alice"
	key := newKey(t)
	hour := time.Hour
	req := requestCertificate(t, admin, name, certificatesv1.KubeAPIServerClientSignerName,
		pkix.Name{CommonName: user, Organization: []string{"e2e-devs"}}, key, &hour,
		certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth)
	if req.Spec.Username != "kubernetes-admin" || req.Spec.ExpirationSeconds == nil || *req.Spec.ExpirationSeconds != 3600 {
		t.Errorf("CSR spec: username %q expirationSeconds %v", req.Spec.Username, req.Spec.ExpirationSeconds)
	}
	// Not approved: not signed.
	time.Sleep(500 * time.Millisecond)
	if row := tableRow(k.ok(t, "get", "csr", name), name); len(row) == 0 || row[len(row)-1] != "Pending" {
		t.Errorf("kubectl get csr before approval: %v, want Pending", row)
	}
	k.ok(t, "certificate", "approve", name)
	certPEM, cert := waitForCertificate(t, admin, req)
	if cert.Subject.CommonName != user || !slices.Equal(cert.Subject.Organization, []string{"e2e-devs"}) {
		t.Errorf("certificate subject %v", cert.Subject)
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || cert.KeyUsage != x509.KeyUsageDigitalSignature || cert.IsCA {
		t.Errorf("certificate usages %v %v, CA %v", cert.ExtKeyUsage, cert.KeyUsage, cert.IsCA)
	}
	// An hour from now, backdated 5 minutes (upstream's policy for short
	// lifetimes).
	if d := cert.NotAfter.Sub(cert.NotBefore); d != 65*time.Minute {
		t.Errorf("certificate lifetime %s, want 1h5m (1h requested, 5m backdated)", d)
	}
	if until := time.Until(cert.NotAfter); until < 58*time.Minute || until > 61*time.Minute {
		t.Errorf("certificate expires in %s, want an hour", until)
	}
	ca, err := certutil.CertsFromFile(k.caFile())
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignatureFrom(ca[0]); err != nil {
		t.Errorf("not signed by the cluster CA: %v", err)
	}
	row := tableRow(k.ok(t, "get", "csr", name), name)
	if len(row) == 0 || row[len(row)-1] != "Approved,Issued" {
		t.Errorf("kubectl get csr after approval: %v, want Approved,Issued", row)
	}

	// The certificate authenticates as its subject.
	client, kubeconfig := certClient(t, k.srv, certPEM, key)
	info, err := whoami(client)
	if err != nil {
		t.Fatalf("selfsubjectreview with the issued certificate: %v", err)
	}
	if info.Username != user || !slices.Contains(info.Groups, "e2e-devs") || !slices.Contains(info.Groups, "system:authenticated") {
		t.Errorf("issued certificate authenticates as %+v", info)
	}
	if minor(k.bin.version) >= 28 {
		out := normalize(k.ok(t, "--kubeconfig="+kubeconfig, "auth", "whoami"))
		assertContains(t, out, "Username "+user, "Groups [e2e-devs system:authenticated]")
	}
}

func testSignerValidationFailure(t *testing.T, k *kctl, admin *kubernetes.Clientset) {
	name := k.ns + "-not-a-node"
	req := requestCertificate(t, admin, name, certificatesv1.KubeAPIServerClientKubeletSignerName,
		pkix.Name{CommonName: "alice", Organization: []string{"system:nodes"}}, newKey(t), nil,
		certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth)
	k.ok(t, "certificate", "approve", name)
	eventually(t, 20*time.Second, func() string {
		got, err := admin.CertificatesV1().CertificateSigningRequests().Get(context.Background(), req.Name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		for _, c := range got.Status.Conditions {
			if c.Type == certificatesv1.CertificateFailed {
				if c.Status != corev1.ConditionTrue || c.Reason != "SignerValidationFailure" || !strings.Contains(c.Message, "system:node:") {
					t.Errorf("Failed condition %+v", c)
				}
				if len(got.Status.Certificate) > 0 {
					t.Errorf("a failed CSR has a certificate")
				}
				return ""
			}
		}
		return fmt.Sprintf("no Failed condition: %+v", got.Status.Conditions)
	})
	row := tableRow(k.ok(t, "get", "csr", name), name)
	if len(row) == 0 || row[len(row)-1] != "Approved,Failed" {
		t.Errorf("kubectl get csr: %v, want Approved,Failed", row)
	}
}

// randomString is n characters of [a-z0-9].
func randomString(t *testing.T, n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// bootstrapToken creates a bootstrap token Secret and returns the token.
func bootstrapToken(t *testing.T, admin kubernetes.Interface, data map[string]string) (id, token string) {
	t.Helper()
	id, secret := randomString(t, 6), randomString(t, 16)
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "bootstrap-token-" + id},
		Type:       "bootstrap.kubernetes.io/token",
		StringData: map[string]string{"token-id": id, "token-secret": secret, "usage-bootstrap-authentication": "true"},
	}
	for k, v := range data {
		s.StringData[k] = v
	}
	if _, err := admin.CoreV1().Secrets("kube-system").Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.CoreV1().Secrets("kube-system").Delete(context.Background(), s.Name, metav1.DeleteOptions{})
	})
	return id, id + "." + secret
}

func tokenClient(srv *harness.Server, token string) *kubernetes.Clientset {
	cfg := &rest.Config{Host: srv.URL, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAFile: filepath.Join(srv.Dir, "pki", "ca.crt")}}
	return kubernetes.NewForConfigOrDie(cfg)
}

// TestBootstrapTokens: bootstrap token Secrets authenticate their tokens
// as system:bootstrap:<id> until they expire (then the token cleaner
// deletes them); wrong secrets are refused; the kubelet client CSRs of
// bootstrappers and of nodes renewing their own certificate are approved
// automatically and signed.
func TestBootstrapTokens(t *testing.T) {
	srv := sharedServer(t)
	admin := adminClient(t, srv)

	id, token := bootstrapToken(t, admin, map[string]string{
		"auth-extra-groups": "system:bootstrappers:e2e",
		"expiration":        time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
	})
	var info authenticationv1.UserInfo
	eventually(t, 10*time.Second, func() string {
		var err error
		if info, err = whoami(tokenClient(srv, token)); err != nil {
			return "the bootstrap token does not authenticate: " + err.Error()
		}
		return ""
	})
	if info.Username != "system:bootstrap:"+id || !slices.Equal(info.Groups, []string{"system:bootstrappers", "system:bootstrappers:e2e", "system:authenticated"}) {
		t.Errorf("bootstrap token authenticates as %+v", info)
	}

	t.Run("WrongSecret", func(t *testing.T) {
		_, err := whoami(tokenClient(srv, id+"."+randomString(t, 16)))
		if !apierrors.IsUnauthorized(err) {
			t.Errorf("wrong token secret: %v, want 401", err)
		}
		_, err = whoami(tokenClient(srv, randomString(t, 6)+"."+randomString(t, 16)))
		if !apierrors.IsUnauthorized(err) {
			t.Errorf("unknown token id: %v, want 401", err)
		}
	})

	t.Run("NotForAuthentication", func(t *testing.T) {
		_, token := bootstrapToken(t, admin, map[string]string{"usage-bootstrap-authentication": "false"})
		time.Sleep(time.Second) // the informer has seen it
		if _, err := whoami(tokenClient(srv, token)); !apierrors.IsUnauthorized(err) {
			t.Errorf("token without usage-bootstrap-authentication: %v, want 401", err)
		}
	})

	t.Run("Expired", func(t *testing.T) {
		id, token := bootstrapToken(t, admin, map[string]string{"expiration": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)})
		if _, err := whoami(tokenClient(srv, token)); !apierrors.IsUnauthorized(err) {
			t.Errorf("expired token: %v, want 401", err)
		}
		waitDeleted(t, admin, id)
	})

	t.Run("ExpiresLater", func(t *testing.T) {
		expiry := time.Now().Add(4 * time.Second).Truncate(time.Second)
		id, token := bootstrapToken(t, admin, map[string]string{"expiration": expiry.UTC().Format(time.RFC3339)})
		eventually(t, 3*time.Second, func() string {
			if _, err := whoami(tokenClient(srv, token)); err != nil {
				return "the token does not authenticate before its expiration: " + err.Error()
			}
			return ""
		})
		time.Sleep(time.Until(expiry))
		// The verdict of the last request is cached for up to 10s, as
		// upstream's --token-auth-success-cache-ttl.
		eventually(t, 15*time.Second, func() string {
			if _, err := whoami(tokenClient(srv, token)); !apierrors.IsUnauthorized(err) {
				return fmt.Sprintf("token after its expiration: %v, want 401", err)
			}
			return ""
		})
		waitDeleted(t, admin, id)
	})

	t.Run("KubeletClientCSR", func(t *testing.T) { testKubeletClientCSR(t, srv, admin, id) })
}

func waitDeleted(t *testing.T, admin kubernetes.Interface, id string) {
	t.Helper()
	eventually(t, 10*time.Second, func() string {
		_, err := admin.CoreV1().Secrets("kube-system").Get(context.Background(), "bootstrap-token-"+id, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return fmt.Sprintf("the expired bootstrap token secret was not deleted (%v)", err)
		}
		return ""
	})
}

// impersonating is admin acting as user in groups and system:masters:
// the requester of the CSRs it creates. (Bootstrap token users and nodes
// may not create CSRs themselves until RBAC grants them
// system:node-bootstrapper; system:masters lets them, and is not what the
// approver looks at.)
func impersonating(t *testing.T, srv *harness.Server, user string, groups ...string) *kubernetes.Clientset {
	cfg, err := srv.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append(groups, "system:masters")}
	return kubernetes.NewForConfigOrDie(cfg)
}

func approvedReason(t *testing.T, admin kubernetes.Interface, name string) string {
	got, err := admin.CertificatesV1().CertificateSigningRequests().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range got.Status.Conditions {
		if c.Type == certificatesv1.CertificateApproved {
			return c.Reason
		}
	}
	return ""
}

func testKubeletClientCSR(t *testing.T, srv *harness.Server, admin *kubernetes.Clientset, tokenID string) {
	node := "e2e-node-" + randomString(t, 5)
	nodeUser := "system:node:" + node
	subject := pkix.Name{CommonName: nodeUser, Organization: []string{"system:nodes"}}
	usages := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}

	// A bootstrapper's request: approved automatically, then signed.
	bootstrapper := impersonating(t, srv, "system:bootstrap:"+tokenID, "system:bootstrappers")
	key := newKey(t)
	req := requestCertificate(t, bootstrapper, "", certificatesv1.KubeAPIServerClientKubeletSignerName, subject, key, nil, usages...)
	if req.Spec.Username != "system:bootstrap:"+tokenID {
		t.Errorf("CSR requester %q", req.Spec.Username)
	}
	certPEM, cert := waitForCertificate(t, admin, req)
	if reason := approvedReason(t, admin, req.Name); reason != "AutoApproved" {
		t.Errorf("approval reason %q, want AutoApproved", reason)
	}
	if d := cert.NotAfter.Sub(cert.NotBefore); d < 364*24*time.Hour || d > 366*24*time.Hour {
		t.Errorf("kubelet client certificate lifetime %s, want a year", d)
	}
	client, _ := certClient(t, srv, certPEM, key)
	info, err := whoami(client)
	if err != nil {
		t.Fatal(err)
	}
	if info.Username != nodeUser || !slices.Equal(info.Groups, []string{"system:nodes", "system:authenticated"}) {
		t.Errorf("kubelet client certificate authenticates as %+v", info)
	}

	// The node renewing its own certificate: approved too.
	self := impersonating(t, srv, nodeUser, "system:nodes")
	renewal := requestCertificate(t, self, "", certificatesv1.KubeAPIServerClientKubeletSignerName, subject, newKey(t), nil, usages...)
	waitForCertificate(t, admin, renewal)

	// Another node's certificate: refused at create by NodeRestriction, as
	// upstream's.
	der, err := certutil.MakeCSR(newKey(t), &pkix.Name{CommonName: "system:node:other", Organization: []string{"system:nodes"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = csr.RequestCertificate(self, der, "", certificatesv1.KubeAPIServerClientKubeletSignerName, nil, usages, nil)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "can only create a node CSR with CN=system:node:") {
		t.Errorf("a node's CSR for another node: %v, want 403 can only create a node CSR with CN=system:node:<node>", err)
	}
	// Anyone else's request: left pending.
	stranger := requestCertificate(t, impersonating(t, srv, "mallory"), "", certificatesv1.KubeAPIServerClientKubeletSignerName, subject, newKey(t), nil, usages...)
	time.Sleep(2 * time.Second)
	for _, r := range []*certificatesv1.CertificateSigningRequest{stranger} {
		if reason := approvedReason(t, admin, r.Name); reason != "" {
			t.Errorf("CSR of %s for %s approved (%s), want pending", r.Spec.Username, r.Name, reason)
		}
	}
}
