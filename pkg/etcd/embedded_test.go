package etcd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	certutil "k8s.io/client-go/util/cert"

	"github.com/skiff-dev/skiff/pkg/pki"
)

func startTLS(t *testing.T, dataDir string) *Embedded {
	t.Helper()
	certs, err := EnsureCerts(filepath.Join(filepath.Dir(dataDir), "pki"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := Start(dataDir, certs)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// client connects to url with tlsCfg (nil: plain gRPC) and fails fast.
func client(t *testing.T, url string, tlsCfg *tls.Config) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 3 * time.Second, TLS: tlsCfg, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// tlsConfig trusts ca and presents f's certificate (none when f is empty).
func tlsConfig(t *testing.T, ca string, f pki.Files) *tls.Config {
	t.Helper()
	roots, err := certutil.NewPool(ca)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: roots}
	if f.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestMutualTLS: the client port answers only certificates of etcd's own
// CA; the metrics port serves metrics and health, no keys.
func TestMutualTLS(t *testing.T) {
	root := t.TempDir()
	e := startTLS(t, filepath.Join(root, "etcd"))
	t.Cleanup(e.Close)
	if !strings.HasPrefix(e.ClientURL, "https://127.0.0.1:") {
		t.Fatalf("client URL %s is not https on loopback", e.ClientURL)
	}
	certs := e.Certs

	good := client(t, e.ClientURL, tlsConfig(t, certs.CAFile, certs.Client))
	if _, err := good.Put(ctxFor(t, 10*time.Second), "/registry/secrets/default/s", "secret-value"); err != nil {
		t.Fatalf("put with the apiserver's client certificate: %v", err)
	}

	// The cluster CA signs users' certificates: etcd must not trust it.
	clusterCA, err := pki.EnsureCA(filepath.Join(root, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	user, err := clusterCA.EnsureCert(root, "user", pki.CertSpec{CommonName: "u", Organization: []string{"system:masters"}, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]*tls.Config{
		"plain gRPC":           nil,
		"TLS without a cert":   tlsConfig(t, certs.CAFile, pki.Files{}),
		"cluster-CA user cert": tlsConfig(t, certs.CAFile, user),
	} {
		c := client(t, e.ClientURL, cfg)
		if resp, err := c.Get(ctxFor(t, 3*time.Second), "/registry/", clientv3.WithPrefix()); err == nil {
			t.Errorf("%s: read %d keys", name, len(resp.Kvs))
		} else {
			t.Logf("%s: refused: %v", name, err)
		}
	}

	// The refusals above are the TLS handshake's, not a slow server's. A Go
	// client sends no certificate the server's CA list does not name;
	// forced, the cluster-CA one is refused as of an unknown authority.
	host := strings.TrimPrefix(e.ClientURL, "https://")
	forced := tlsConfig(t, certs.CAFile, user)
	forced.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &forced.Certificates[0], nil }
	for cfg, want := range map[*tls.Config]string{
		tlsConfig(t, certs.CAFile, pki.Files{}): "certificate required",
		tlsConfig(t, certs.CAFile, user):        "certificate required",
		forced:                                  "unknown certificate authority",
	} {
		if err := handshake(host, cfg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("TLS handshake: %v, want %q", err, want)
		}
	}
	if err := handshake(host, tlsConfig(t, certs.CAFile, certs.Client)); err != nil {
		t.Errorf("TLS handshake with the apiserver's certificate: %v", err)
	}

	for _, path := range []string{"/metrics", "/health"} {
		resp, err := http.Get(e.MetricsURL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || strings.Contains(string(body), "secret-value") {
			t.Errorf("GET %s: %d, %d bytes", path, resp.StatusCode, len(body))
		}
	}
	resp, err := http.Post(e.MetricsURL+"/v3/kv/range", "application/json", strings.NewReader(`{"key":"Lw==","range_end":"MA=="}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST /v3/kv/range on the metrics port: %d, want 404", resp.StatusCode)
	}
}

// TestReadsPlainLayoutData: a data dir written by the plain-HTTP etcd of
// earlier releases is read back over TLS.
func TestReadsPlainLayoutData(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etcd")
	plain, err := Start(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plain.ClientURL, "http://") {
		t.Fatalf("plain client URL %s", plain.ClientURL)
	}
	if _, err := client(t, plain.ClientURL, nil).Put(ctxFor(t, 10*time.Second), "/registry/configmaps/default/old", "written-plain"); err != nil {
		t.Fatal(err)
	}
	plain.Close()

	e := startTLS(t, dir)
	t.Cleanup(e.Close)
	resp, err := client(t, e.ClientURL, tlsConfig(t, e.Certs.CAFile, e.Certs.Client)).Get(ctxFor(t, 10*time.Second), "/registry/configmaps/default/old")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "written-plain" {
		t.Fatalf("read back %v", resp.Kvs)
	}
}

// TestFailed: Failed reports a listener that dies and a server that stops,
// within the 10 s `skiff server` has to exit in; Close is not a failure.
func TestFailed(t *testing.T) {
	for name, kill := range map[string]func(e *Embedded){
		"client listener closed": func(e *Embedded) { e.etcd.Clients[0].Close() },
		"server stopped":         func(e *Embedded) { e.etcd.Server.HardStop() },
	} {
		t.Run(name, func(t *testing.T) {
			e := startTLS(t, filepath.Join(t.TempDir(), "etcd"))
			t.Cleanup(e.Close)
			kill(e)
			select {
			case err := <-e.Failed():
				if err == nil {
					t.Error("Failed sent nil")
				}
				t.Logf("failed: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("Failed reported nothing within 10s")
			}
		})
	}

	e := startTLS(t, filepath.Join(t.TempDir(), "etcd"))
	e.Close()
	select {
	case err := <-e.Failed():
		t.Errorf("Close reported as a failure: %v", err)
	case <-time.After(time.Second):
	}
}

// handshake completes a TLS handshake with addr and reads once, returning
// the TLS alert the server sent, if any: a server refusing the client's
// certificate sends it after the client's side of a TLS 1.3 handshake is
// done.
func handshake(addr string, cfg *tls.Config) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(time.Second))
	_, err = conn.Read(make([]byte, 1))
	if err != nil && strings.Contains(err.Error(), "remote error: tls:") {
		return err
	}
	return nil // accepted: the gRPC server then waits for, or gives up on, HTTP/2
}
