package pki

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// writeExpiring writes dir/name.{crt,key}: a certificate of ca for spec
// with left validity, and returns its key PEM.
func writeExpiring(t *testing.T, ca *CA, dir, name string, spec CertSpec, left time.Duration) []byte {
	t.Helper()
	key, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	cert := signFor(t, ca, key, pkix.Name{CommonName: spec.CommonName, Organization: spec.Organization}, spec, left)
	if err := writePair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"), cert, key); err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := os.ReadFile(filepath.Join(dir, name+".key"))
	return keyPEM
}

func signFor(t *testing.T, ca *CA, key crypto.Signer, subject pkix.Name, spec CertSpec, left time.Duration) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(4242), Subject: subject, DNSNames: spec.Hosts,
		NotBefore: time.Now().Add(-300 * 24 * time.Hour), NotAfter: time.Now().Add(left),
		ExtKeyUsage: spec.Usages, KeyUsage: x509.KeyUsageDigitalSignature,
	}, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	certs, err := certutil.CertsFromFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

// TestEnsureCertRenewsWithin90Days: k3s's rule. 89 days left: renewed for
// a year, keeping the key; 91 days left: kept as it is.
func TestEnsureCertRenewsWithin90Days(t *testing.T) {
	dir := t.TempDir()
	ca, err := EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	spec := CertSpec{CommonName: "s", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, Hosts: []string{"localhost"}}
	day := 24 * time.Hour

	keyPEM := writeExpiring(t, ca, dir, "soon", spec, 89*day)
	files, err := ca.EnsureCert(dir, "soon", spec)
	if err != nil {
		t.Fatal(err)
	}
	renewed := readCert(t, files.CertFile)
	if renewed.SerialNumber.Int64() == 4242 || time.Until(renewed.NotAfter) < 364*day {
		t.Errorf("a certificate with 89 days left was kept (serial %v, NotAfter %v)", renewed.SerialNumber, renewed.NotAfter)
	}
	if again, _ := os.ReadFile(files.KeyFile); !bytes.Equal(again, keyPEM) {
		t.Error("renewal replaced a good key")
	}
	certPEM, _ := os.ReadFile(files.CertFile)
	verify(t, ca, certPEM, x509.ExtKeyUsageServerAuth, "localhost")

	writeExpiring(t, ca, dir, "later", spec, 91*day)
	files, err = ca.EnsureCert(dir, "later", spec)
	if err != nil {
		t.Fatal(err)
	}
	if kept := readCert(t, files.CertFile); kept.SerialNumber.Int64() != 4242 {
		t.Errorf("a certificate with 91 days left was reissued (NotAfter %v)", kept.NotAfter)
	}
	// No temporary files left behind by the atomic writes.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name()[0] == '.' {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// TestEnsureCertRenewsOnTheClock: the same certificate, kept today, is
// renewed once the clock reaches its last 90 days.
func TestEnsureCertRenewsOnTheClock(t *testing.T) {
	dir := t.TempDir()
	ca, err := EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	spec := CertSpec{CommonName: "c", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	files, err := ca.EnsureCert(dir, "c", spec)
	if err != nil {
		t.Fatal(err)
	}
	first := readCert(t, files.CertFile)
	if _, err := ca.EnsureCert(dir, "c", spec); err != nil {
		t.Fatal(err)
	}
	if readCert(t, files.CertFile).SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatal("a fresh certificate was reissued")
	}
	setNow(t, time.Now().Add(280*24*time.Hour))
	if _, err := ca.EnsureCert(dir, "c", spec); err != nil {
		t.Fatal(err)
	}
	if readCert(t, files.CertFile).SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Error("a certificate with 85 days left was kept")
	}
}

func setNow(t *testing.T, at time.Time) {
	t.Helper()
	old := now
	now = func() time.Time { return at }
	t.Cleanup(func() { now = old })
}

// TestEnsureKubeconfigRenewsItsClientCert: a kubeconfig whose client
// certificate has 89 days left is rewritten with a fresh one of the same
// user; with 91 days left, or once fresh, it is kept byte for byte.
func TestEnsureKubeconfigRenewsItsClientCert(t *testing.T) {
	dir := t.TempDir()
	ca, err := EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "admin.kubeconfig")
	const server = "https://127.0.0.1:6443"
	groups := []string{"system:masters"}
	for _, tc := range []struct {
		left    time.Duration
		renewed bool
	}{{89 * 24 * time.Hour, true}, {91 * 24 * time.Hour, false}} {
		writeKubeconfigWithCert(t, ca, path, server, tc.left)
		before, _ := os.ReadFile(path)
		wrote, err := ca.EnsureKubeconfig(path, server, "kubernetes-admin", groups)
		if err != nil {
			t.Fatal(err)
		}
		after, _ := os.ReadFile(path)
		if wrote != tc.renewed || bytes.Equal(before, after) == tc.renewed {
			t.Errorf("%v left: wrote %v (changed %v), want renewed %v", tc.left, wrote, !bytes.Equal(before, after), tc.renewed)
		}
		cfg, err := clientcmd.Load(after)
		if err != nil {
			t.Fatal(err)
		}
		cert := verify(t, ca, cfg.AuthInfos["kubernetes-admin"].ClientCertificateData, x509.ExtKeyUsageClientAuth, "")
		if cert.Subject.CommonName != "kubernetes-admin" || cert.Subject.Organization[0] != "system:masters" {
			t.Errorf("subject %v", cert.Subject)
		}
		if tc.renewed && time.Until(cert.NotAfter) < 364*24*time.Hour {
			t.Errorf("renewed certificate ends %v", cert.NotAfter)
		}
		if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
			t.Errorf("mode %v", info.Mode())
		}
	}
	// Another address: rewritten.
	if wrote, err := ca.EnsureKubeconfig(path, "https://127.0.0.1:7443", "kubernetes-admin", groups); err != nil || !wrote {
		t.Errorf("new address: wrote %v, %v", wrote, err)
	}
}

func writeKubeconfigWithCert(t *testing.T, ca *CA, path, server string, left time.Duration) {
	t.Helper()
	data, err := ca.Kubeconfig(server, "kubernetes-admin", []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	key, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	cert := signFor(t, ca, key, pkix.Name{CommonName: "kubernetes-admin", Organization: []string{"system:masters"}},
		CertSpec{Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, left)
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AuthInfos["kubernetes-admin"].ClientCertificateData = encodeCert(cert)
	cfg.AuthInfos["kubernetes-admin"].ClientKeyData = keyPEM
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
}

// TestCALastsTenYearsAndWarnsAYearAhead: a new CA ends in ten years; it
// warns once less than a year is left.
func TestCALastsTenYearsAndWarnsAYearAhead(t *testing.T) {
	ca, err := EnsureCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(ca.Cert.NotAfter); left < caValidity-time.Hour || left > caValidity {
		t.Errorf("CA valid for %v, want 10 years", left)
	}
	if ca.ExpiresSoon() {
		t.Error("a new CA warns of its expiry")
	}
	setNow(t, ca.Cert.NotAfter.Add(-366*24*time.Hour))
	if ca.ExpiresSoon() {
		t.Error("warned with more than a year left")
	}
	setNow(t, ca.Cert.NotAfter.Add(-364*24*time.Hour))
	if !ca.ExpiresSoon() {
		t.Error("no warning with less than a year left")
	}
}
