package pki

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

func TestEnsureCAIsIdempotent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki") // does not exist yet
	first, err := EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Cert.IsCA || first.Cert.Subject.CommonName != "skiff-ca" {
		t.Errorf("CA cert IsCA=%v CN=%q", first.Cert.IsCA, first.Cert.Subject.CommonName)
	}
	if first.Cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Error("CA cannot sign certificates")
	}
	if first.CertFile != filepath.Join(dir, "ca.crt") {
		t.Errorf("CertFile %q", first.CertFile)
	}
	keyInfo, err := os.Stat(filepath.Join(dir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	if perm := keyInfo.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("ca.key mode %v is readable by others", perm)
	}
	certPEM, err := os.ReadFile(first.CertFile)
	if err != nil {
		t.Fatal(err)
	}

	second, err := EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Cert.Equal(first.Cert) {
		t.Error("second EnsureCA returned another certificate")
	}
	if !bytes.Equal(second.PEM(), first.PEM()) {
		t.Error("PEM differs between calls")
	}
	if after, _ := os.ReadFile(first.CertFile); !bytes.Equal(after, certPEM) {
		t.Error("second EnsureCA rewrote ca.crt")
	}
	// The key loaded back is the one that signed: certificates it signs verify.
	certPEMClient, _, err := second.NewClientCert("u", nil)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, first, certPEMClient, x509.ExtKeyUsageClientAuth, "")

	loaded, err := LoadCA(dir)
	if err != nil || !loaded.Cert.Equal(first.Cert) {
		t.Errorf("LoadCA: %v, same cert %v", err, err == nil && loaded.Cert.Equal(first.Cert))
	}
}

func TestLoadCAErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadCA(dir); err == nil {
		t.Error("LoadCA of an empty dir succeeded")
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.key"), []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(dir); err == nil {
		t.Error("LoadCA of garbage succeeded")
	}
	if _, err := EnsureCA(dir); err == nil {
		t.Error("EnsureCA silently replaced or accepted a garbage CA")
	}
}

// verify checks certPEM chains to ca for usage (and host, when not empty).
func verify(t *testing.T, ca *CA, certPEM []byte, usage x509.ExtKeyUsage, host string) *x509.Certificate {
	t.Helper()
	certs, err := certutil.ParseCertsPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		t.Errorf("certificate does not verify for %v %q: %v", usage, host, err)
	}
	return certs[0]
}

func TestServingCert(t *testing.T) {
	dir := t.TempDir()
	ca, err := EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	hosts := []string{"localhost", "127.0.0.1", "10.96.0.1", "kubernetes.default.svc", "::1"}
	files, err := ca.EnsureServingCert(dir, "apiserver", hosts)
	if err != nil {
		t.Fatal(err)
	}
	if files.CertFile != filepath.Join(dir, "apiserver.crt") || files.KeyFile != filepath.Join(dir, "apiserver.key") {
		t.Errorf("files %+v", files)
	}
	certPEM, err := os.ReadFile(files.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	cert := verify(t, ca, certPEM, x509.ExtKeyUsageServerAuth, "kubernetes.default.svc")
	for _, h := range hosts {
		if err := cert.VerifyHostname(h); err != nil {
			t.Errorf("serving cert does not cover %s: %v", h, err)
		}
	}
	if err := cert.VerifyHostname("other.example"); err == nil {
		t.Error("serving cert covers a host nobody asked for")
	}
	if !slices.Contains(cert.DNSNames, "localhost") || !slices.ContainsFunc(cert.IPAddresses, net.ParseIP("10.96.0.1").Equal) {
		t.Errorf("DNS %v IPs %v", cert.DNSNames, cert.IPAddresses)
	}
	if slices.Contains(cert.DNSNames, "127.0.0.1") {
		t.Error("an IP was put among the DNS names")
	}
	if time.Until(cert.NotAfter) < 300*24*time.Hour {
		t.Errorf("serving cert expires already at %v", cert.NotAfter)
	}
	// The pair loads as a TLS key pair.
	if _, err := tls.LoadX509KeyPair(files.CertFile, files.KeyFile); err != nil {
		t.Errorf("cert and key do not match: %v", err)
	}

	// Same or fewer hosts: reused as is.
	if _, err := ca.EnsureServingCert(dir, "apiserver", hosts[:2]); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(files.CertFile); !bytes.Equal(again, certPEM) {
		t.Error("serving cert regenerated although it covered every host")
	}

	// A new SAN: regenerated, covering it and the old ones asked for.
	more := append(slices.Clone(hosts), "skiff.example.com", "192.0.2.7")
	if _, err := ca.EnsureServingCert(dir, "apiserver", more); err != nil {
		t.Fatal(err)
	}
	newPEM, err := os.ReadFile(files.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(newPEM, certPEM) {
		t.Fatal("serving cert not regenerated for a new SAN")
	}
	newCert := verify(t, ca, newPEM, x509.ExtKeyUsageServerAuth, "skiff.example.com")
	for _, h := range more {
		if err := newCert.VerifyHostname(h); err != nil {
			t.Errorf("regenerated cert does not cover %s: %v", h, err)
		}
	}
	if _, err := tls.LoadX509KeyPair(files.CertFile, files.KeyFile); err != nil {
		t.Errorf("regenerated cert and key do not match: %v", err)
	}
}

func TestServingCertRenewedWhenExpiring(t *testing.T) {
	dir := t.TempDir()
	ca, err := EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A certificate covering the host but valid for ten more days only: too
	// close to expiry, so EnsureServingCert must replace it.
	key, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "s"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	short, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	files := Files{CertFile: filepath.Join(dir, "s.crt"), KeyFile: filepath.Join(dir, "s.key")}
	if err := writePair(files.CertFile, files.KeyFile, short, key); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.EnsureServingCert(dir, "s", []string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	certs, err := certutil.CertsFromFile(files.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	if certs[0].SerialNumber.Int64() == 42 || time.Until(certs[0].NotAfter) < 300*24*time.Hour {
		t.Errorf("an expiring serving cert was kept (serial %v, NotAfter %v)", certs[0].SerialNumber, certs[0].NotAfter)
	}
}

func TestClientCert(t *testing.T) {
	ca, err := EnsureCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user   string
		groups []string
	}{
		{"kubernetes-admin", []string{"system:masters"}},
		{"system:node:n1", []string{"system:nodes", "extra"}},
		{"nobody", nil},
	} {
		t.Run(tc.user, func(t *testing.T) {
			certPEM, keyPEM, err := ca.NewClientCert(tc.user, tc.groups)
			if err != nil {
				t.Fatal(err)
			}
			cert := verify(t, ca, certPEM, x509.ExtKeyUsageClientAuth, "")
			if cert.Subject.CommonName != tc.user {
				t.Errorf("CN %q, want %q", cert.Subject.CommonName, tc.user)
			}
			// O is a DER SET: its order is not kept, its members are.
			if !slices.Equal(sorted(cert.Subject.Organization), sorted(tc.groups)) {
				t.Errorf("O %v, want %v", cert.Subject.Organization, tc.groups)
			}
			if slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
				t.Error("client cert is usable as a server cert")
			}
			if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
				t.Errorf("cert and key do not match: %v", err)
			}
		})
	}
	// Each call makes a fresh key and serial.
	a, _, _ := ca.NewClientCert("u", nil)
	b, _, _ := ca.NewClientCert("u", nil)
	ca1, _ := certutil.ParseCertsPEM(a)
	cb1, _ := certutil.ParseCertsPEM(b)
	if ca1[0].SerialNumber.Cmp(cb1[0].SerialNumber) == 0 {
		t.Error("two client certs share a serial number")
	}
}

func TestKubeconfig(t *testing.T) {
	dir := t.TempDir()
	ca, err := EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	data, err := ca.Kubeconfig("https://127.0.0.1:6443", "kubernetes-admin", []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil || ctx.Namespace != "default" {
		t.Fatalf("current context %q: %+v", cfg.CurrentContext, ctx)
	}
	cluster, user := cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
	if cluster == nil || user == nil {
		t.Fatalf("context names cluster %q user %q that do not exist", ctx.Cluster, ctx.AuthInfo)
	}
	if cluster.Server != "https://127.0.0.1:6443" || !bytes.Equal(cluster.CertificateAuthorityData, ca.PEM()) {
		t.Errorf("cluster %s, CA data matches: %v", cluster.Server, bytes.Equal(cluster.CertificateAuthorityData, ca.PEM()))
	}
	cert := verify(t, ca, user.ClientCertificateData, x509.ExtKeyUsageClientAuth, "")
	if cert.Subject.CommonName != "kubernetes-admin" || !slices.Equal(cert.Subject.Organization, []string{"system:masters"}) {
		t.Errorf("client cert subject %v", cert.Subject)
	}
	// client-go builds a working REST config from it.
	rc, err := clientcmd.RESTConfigFromKubeConfig(data)
	if err != nil || rc.Host != "https://127.0.0.1:6443" {
		t.Errorf("REST config %v %v", rc, err)
	}

	path := filepath.Join(dir, "admin.kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if server, err := ServerOf(path); err != nil || server != "https://127.0.0.1:6443" {
		t.Errorf("ServerOf = %q, %v", server, err)
	}
	if _, err := ServerOf(filepath.Join(dir, "missing")); err == nil {
		t.Error("ServerOf of a missing file succeeded")
	}
	empty := filepath.Join(dir, "empty.kubeconfig")
	if err := os.WriteFile(empty, []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ServerOf(empty); err == nil {
		t.Error("ServerOf of a kubeconfig without clusters succeeded")
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestEnsureCert(t *testing.T) {
	dir := t.TempDir()
	ca, err := EnsureNamedCA(filepath.Join(dir, "etcd"), "etcd-ca")
	if err != nil {
		t.Fatal(err)
	}
	if ca.Cert.Subject.CommonName != "etcd-ca" {
		t.Errorf("CA CN %q", ca.Cert.Subject.CommonName)
	}
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	spec := CertSpec{CommonName: "peer", Organization: []string{"o"}, Usages: both, Hosts: []string{"localhost", "127.0.0.1"}}
	files, err := ca.EnsureCert(dir, "peer", spec)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := os.ReadFile(files.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	cert := verify(t, ca, certPEM, x509.ExtKeyUsageServerAuth, "localhost")
	verify(t, ca, certPEM, x509.ExtKeyUsageClientAuth, "")
	if cert.Subject.CommonName != "peer" || !slices.Equal(cert.Subject.Organization, []string{"o"}) {
		t.Errorf("subject %v", cert.Subject)
	}
	if info, err := os.Stat(files.KeyFile); err != nil || info.Mode().Perm()&0o077 != 0 {
		t.Errorf("key file: %v, mode %v", err, info.Mode())
	}

	if _, err := ca.EnsureCert(dir, "peer", spec); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(files.CertFile); !bytes.Equal(again, certPEM) {
		t.Error("a valid certificate was reissued")
	}

	// Other usages: reissued with them.
	serverOnly := spec
	serverOnly.Usages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	if _, err := ca.EnsureCert(dir, "peer", serverOnly); err != nil {
		t.Fatal(err)
	}
	reissued, _ := os.ReadFile(files.CertFile)
	if bytes.Equal(reissued, certPEM) {
		t.Error("certificate kept although the usages changed")
	}

	// Another CA (its files were replaced): the old certificate would not
	// verify, so it is reissued by the new one.
	other, err := EnsureNamedCA(filepath.Join(dir, "other"), "other-ca")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.EnsureCert(dir, "peer", serverOnly); err != nil {
		t.Fatal(err)
	}
	byOther, _ := os.ReadFile(files.CertFile)
	verify(t, other, byOther, x509.ExtKeyUsageServerAuth, "localhost")

	// A key that does not match the certificate: reissued.
	if err := os.WriteFile(files.KeyFile, mustKeyPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := other.EnsureCert(dir, "peer", serverOnly); err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(files.CertFile, files.KeyFile); err != nil {
		t.Errorf("a mismatched key was kept: %v", err)
	}
}

func mustKeyPEM(t *testing.T) []byte {
	t.Helper()
	key, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	out, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
