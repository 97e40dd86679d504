package app

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/pflag"
	restclient "k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/pkg/pki"
	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

func parseSchedulerFlags(t *testing.T, args ...string) *schedulerOptions {
	t.Helper()
	o := newSchedulerOptions(framework.Registry{})
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.addFlags(fs)
	o.addStandaloneFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return o
}

// TestSchedulerConfigPrecedence: as upstream's, leader-election flags
// given override --config; QPS flags apply only without --config.
func TestSchedulerConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  qps: 7
leaderElection:
  leaderElect: true
  leaseDuration: 30s
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseSchedulerFlags(t, "--config", file, "--leader-elect=false", "--kube-api-qps", "99").config()
	if err != nil {
		t.Fatal(err)
	}
	if *cfg.LeaderElection.LeaderElect || cfg.LeaderElection.LeaseDuration.Duration != 30*time.Second || cfg.ClientConnection.QPS != 7 {
		t.Errorf("leaderElect %v lease %v qps %v; want false (flag), 30s (file), 7 (file)", *cfg.LeaderElection.LeaderElect, cfg.LeaderElection.LeaseDuration, cfg.ClientConnection.QPS)
	}
	cfg, err = parseSchedulerFlags(t, "--kube-api-qps", "99", "--kube-api-burst", "200", "--kubeconfig", "k").config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientConnection.QPS != 99 || cfg.ClientConnection.Burst != 200 || cfg.ClientConnection.Kubeconfig != "k" ||
		cfg.LeaderElection.ResourceName != "kube-scheduler" || cfg.LeaderElection.ResourceNamespace != "kube-system" {
		t.Errorf("without --config: %+v %+v", cfg.ClientConnection, cfg.LeaderElection)
	}
	if cfg, _ = parseSchedulerFlags(t).config(); cfg.ClientConnection.QPS != 50 || cfg.ClientConnection.Burst != 100 {
		t.Errorf("defaults: qps %v burst %v, want upstream's 50/100", cfg.ClientConnection.QPS, cfg.ClientConnection.Burst)
	}
	if _, err := parseSchedulerFlags(t, "--leader-elect-lease-duration", "1s").config(); err == nil {
		t.Error("a lease shorter than the renew deadline was accepted")
	}
}

// TestAsUser: the server's scheduler authenticates with a certificate for
// system:kube-scheduler from the cluster CA, not the loopback token.
func TestAsUser(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	loopback := &restclient.Config{Host: "https://127.0.0.1:1", BearerToken: "loopback-token",
		TLSClientConfig: restclient.TLSClientConfig{CAData: []byte("ca"), ServerName: "apiserver-loopback-client"}}
	cfg, err := asUser(loopback, dir, schedulerUser)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BearerToken != "" || cfg.Host != loopback.Host || cfg.ServerName != "apiserver-loopback-client" || string(cfg.CAData) != "ca" {
		t.Errorf("config %+v", cfg)
	}
	block, _ := pem.Decode(cfg.CertData)
	if block == nil {
		t.Fatal("no certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "system:kube-scheduler" || cert.CheckSignatureFrom(ca.Cert) != nil {
		t.Errorf("certificate for %q, signed by the CA: %v", cert.Subject.CommonName, cert.CheckSignatureFrom(ca.Cert))
	}
}
