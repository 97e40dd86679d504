package etcd

import (
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"

	"github.com/skiff-dev/skiff/pkg/pki"
)

// TestRenewedCertsServedWithoutRestart: a running etcd whose server and
// client certificates come within 90 days of their end gets them renewed
// by EnsureCerts, serves the new server certificate at the next handshake
// and accepts the new client certificate, without a restart.
func TestRenewedCertsServedWithoutRestart(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "etcd")
	e := startTLS(t, dataDir)
	defer e.Close()
	pkiDir := filepath.Join(filepath.Dir(dataDir), "pki")
	ca, err := pki.LoadCA(filepath.Join(pkiDir, "etcd"))
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(e.ClientURL, "https://")
	first := servedSerial(t, addr, e.Certs)
	aged := age(t, ca, e.Certs.Server)
	age(t, ca, e.Certs.Client)
	if got := servedSerial(t, addr, e.Certs); got.Cmp(aged) != 0 {
		t.Fatalf("etcd serves serial %v after its file changed to %v: it does not re-read its certificate", got, aged)
	}

	renewed, err := EnsureCerts(pkiDir)
	if err != nil {
		t.Fatal(err)
	}
	served := servedSerial(t, addr, renewed)
	if served.Cmp(aged) == 0 || served.Cmp(first) == 0 {
		t.Errorf("etcd serves serial %v; want the renewed certificate (not %v nor the aged %v)", served, first, aged)
	}
	for _, f := range []pki.Files{renewed.Server, renewed.Client} {
		if left := time.Until(readCert(t, f.CertFile).NotAfter); left < 364*24*time.Hour {
			t.Errorf("%s has %v left after renewal", f.CertFile, left.Round(time.Hour))
		}
	}
	if _, err := client(t, e.ClientURL, tlsConfig(t, renewed.CAFile, renewed.Client)).Put(ctxFor(t, 10*time.Second), "/renewed", "yes"); err != nil {
		t.Errorf("the renewed client certificate: %v", err)
	}
}

// servedSerial is the serial of the certificate etcd presents to a client
// with certs' client certificate.
func servedSerial(t *testing.T, addr string, certs *Certs) *big.Int {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, tlsConfig(t, certs.CAFile, certs.Client))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber
}

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	certs, err := certutil.CertsFromFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

// age replaces f's certificate by a copy (same key, names, usages) that
// ends in 89 days, in one rename, and returns its serial.
func age(t *testing.T, ca *pki.CA, f pki.Files) *big.Int {
	t.Helper()
	tmpl := *readCert(t, f.CertFile)
	key, err := keyutil.PrivateKeyFromFile(f.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore = time.Now().Add(-276 * 24 * time.Hour)
	tmpl.NotAfter = time.Now().Add(89 * 24 * time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, ca.Cert, key.(crypto.Signer).Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pem, err := certutil.EncodeCertificates(cert)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.CertFile+".tmp", pem, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(f.CertFile+".tmp", f.CertFile); err != nil {
		t.Fatal(err)
	}
	return tmpl.SerialNumber
}
