package apiserver_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"

	"github.com/skiff-dev/skiff/pkg/apiserver/options"
	"github.com/skiff-dev/skiff/pkg/pki"
)

const day = 24 * time.Hour

// TestCertificatesRenewWhileRunning: a server whose data dir holds an
// admin.kubeconfig with 89 days left renews it at start; while it runs, a
// serving certificate and an etcd server certificate with 89 days left
// are renewed by the periodic check (interval shortened for the test) and
// the new serving certificate is served without a restart.
func TestCertificatesRenewWhileRunning(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.EnsureCA(filepath.Join(dataDir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dataDir, "admin.kubeconfig")
	writeExpiringKubeconfig(t, ca, kubeconfig, "https://"+net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))

	ctx, cancel := context.WithCancel(context.Background())
	srv, err := startServer(ctx, dataDir, port, nil, func(o *options.Options) {
		o.CertCheckInterval = 300 * time.Millisecond
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.stop(cancel); err != nil {
			t.Error(err)
		}
	})

	// At start: admin.kubeconfig renewed, and it works.
	if left := time.Until(kubeconfigCert(t, kubeconfig).NotAfter); left < 364*day {
		t.Errorf("admin.kubeconfig's certificate has %v left after start, want a year", left.Round(time.Hour))
	}
	adminCfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	client := mustClientset(t, adminCfg)
	if _, err := client.CoreV1().Namespaces().Get(testCtx(t), "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("renewed admin.kubeconfig: %v", err)
	}

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	first := servedCert(t, addr)
	if time.Until(first.NotAfter) < 364*day {
		t.Fatalf("served certificate ends %v", first.NotAfter)
	}
	// Age the certificates on disk as a year of running would.
	servingFile := filepath.Join(dataDir, "pki", "apiserver.crt")
	etcdFile := filepath.Join(dataDir, "pki", "etcd", "server.crt")
	aged := ageCert(t, ca, servingFile, filepath.Join(dataDir, "pki", "apiserver.key"))
	etcdCA, err := pki.LoadCA(filepath.Join(dataDir, "pki", "etcd"))
	if err != nil {
		t.Fatal(err)
	}
	ageCert(t, etcdCA, etcdFile, filepath.Join(dataDir, "pki", "etcd", "server.key"))

	var served *x509.Certificate
	err = wait.PollUntilContextTimeout(testCtx(t), 200*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		served = servedCert(t, addr)
		fresh := served.SerialNumber.Cmp(first.SerialNumber) != 0 && served.SerialNumber.Cmp(aged) != 0
		return fresh && time.Until(served.NotAfter) > 364*day, nil
	})
	if err != nil {
		t.Fatalf("the running server serves serial %v ending %v; want a renewed certificate (not %v nor the aged %v) ending in a year",
			served.SerialNumber, served.NotAfter, first.SerialNumber, aged)
	}
	if left := time.Until(readCertFile(t, etcdFile).NotAfter); left < 364*day {
		t.Errorf("etcd's server certificate has %v left, want it renewed", left.Round(time.Hour))
	}
	// The API still reads and writes etcd.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after-renewal"}}
	if _, err := client.CoreV1().ConfigMaps("default").Create(testCtx(t), cm, metav1.CreateOptions{}); err != nil {
		t.Errorf("write after renewal: %v", err)
	}
}

// servedCert is the certificate the server at addr presents.
func servedCert(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

func readCertFile(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	certs, err := certutil.CertsFromFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

// ageCert replaces certFile by the same certificate (same key, names and
// usages) with 89 days left, and returns its serial.
func ageCert(t *testing.T, ca *pki.CA, certFile, keyFile string) *big.Int {
	t.Helper()
	tmpl := readCertFile(t, certFile)
	key, err := keyutil.PrivateKeyFromFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	aged := expiringIn(t, ca, tmpl, key.(crypto.Signer).Public(), 89*day)
	pem, err := certutil.EncodeCertificates(aged)
	if err != nil {
		t.Fatal(err)
	}
	// One rename, as the server writes it.
	tmp := certFile + ".test"
	if err := os.WriteFile(tmp, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, certFile); err != nil {
		t.Fatal(err)
	}
	return aged.SerialNumber
}

// expiringIn signs a copy of tmpl for pub that ends after left.
func expiringIn(t *testing.T, ca *pki.CA, tmpl *x509.Certificate, pub any, left time.Duration) *x509.Certificate {
	t.Helper()
	c := *tmpl
	c.SerialNumber = big.NewInt(time.Now().UnixNano())
	c.NotBefore = time.Now().Add(-276 * day)
	c.NotAfter = time.Now().Add(left)
	der, err := x509.CreateCertificate(rand.Reader, &c, ca.Cert, pub, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// writeExpiringKubeconfig writes an admin kubeconfig for server whose
// client certificate has 89 days left.
func writeExpiringKubeconfig(t *testing.T, ca *pki.CA, path, server string) {
	t.Helper()
	data, err := ca.Kubeconfig(server, "kubernetes-admin", []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	auth := cfg.AuthInfos["kubernetes-admin"]
	certs, err := certutil.ParseCertsPEM(auth.ClientCertificateData)
	if err != nil {
		t.Fatal(err)
	}
	key, err := keyutil.ParsePrivateKeyPEM(auth.ClientKeyData)
	if err != nil {
		t.Fatal(err)
	}
	aged := expiringIn(t, ca, certs[0], key.(crypto.Signer).Public(), 89*day)
	if auth.ClientCertificateData, err = certutil.EncodeCertificates(aged); err != nil {
		t.Fatal(err)
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
}

func kubeconfigCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := certutil.ParseCertsPEM(cfg.AuthInfos["kubernetes-admin"].ClientCertificateData)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}
