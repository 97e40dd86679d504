// Package etcd runs the embedded single-member etcd of `skiff server`.
package etcd

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/klog/v2"
)

// Embedded is a running single-member etcd listening on loopback.
type Embedded struct {
	etcd    *embed.Etcd
	closing *atomic.Bool
	failed  chan error
	// ClientURL is where the apiserver reaches it (gRPC only).
	ClientURL string
	// Certs are the TLS files it serves with; nil when it serves plain HTTP.
	Certs *Certs
	// MetricsURL serves /metrics and /health, plain HTTP, no keys.
	MetricsURL string
}

// Start runs etcd with its data in dir. With certs it serves its client and
// peer ports over TLS and answers only clients whose certificate
// certs.CAFile signed; with nil certs it serves them plain and
// unauthenticated (for tests). Ports are picked free at start, so several
// servers can run side by side; nothing but this process needs to know them.
func Start(dir string, certs *Certs) (*Embedded, error) {
	scheme := "http"
	if certs != nil {
		scheme = "https"
	}
	clientURL, err := freeLoopbackURL(scheme)
	if err != nil {
		return nil, err
	}
	peerURL, err := freeLoopbackURL(scheme)
	if err != nil {
		return nil, err
	}
	// etcd's HTTP endpoints get their own port, so that the client port is
	// gRPC alone: served there too, closing waits the full request timeout
	// (7 s) for the multiplexed connections. It requires the same client
	// certificates; what is open is the metrics port below.
	httpURL, err := freeLoopbackURL(scheme)
	if err != nil {
		return nil, err
	}
	// As kubeadm's --listen-metrics-urls: plain HTTP on loopback, serving
	// only /metrics and /health.
	metricsURL, err := freeLoopbackURL("http")
	if err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Name = "skiff"
	cfg.Dir = dir
	cfg.ListenClientUrls = []url.URL{*clientURL}
	cfg.ListenClientHttpUrls = []url.URL{*httpURL}
	cfg.ListenMetricsUrls = []url.URL{*metricsURL}
	cfg.AdvertiseClientUrls = []url.URL{*clientURL}
	cfg.ListenPeerUrls = []url.URL{*peerURL}
	cfg.AdvertisePeerUrls = []url.URL{*peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// The JSON gateway to the KV API (/v3/kv/range, ...) is nothing skiff
	// uses: one way in fewer.
	cfg.EnableGRPCGateway = false
	if certs != nil {
		cfg.ClientTLSInfo.CertFile = certs.Server.CertFile
		cfg.ClientTLSInfo.KeyFile = certs.Server.KeyFile
		cfg.ClientTLSInfo.TrustedCAFile = certs.CAFile
		cfg.ClientTLSInfo.ClientCertAuth = true
		cfg.PeerTLSInfo.CertFile = certs.Peer.CertFile
		cfg.PeerTLSInfo.KeyFile = certs.Peer.KeyFile
		cfg.PeerTLSInfo.TrustedCAFile = certs.CAFile
		cfg.PeerTLSInfo.ClientCertAuth = true
		// Every client is skiff's own Go code.
		cfg.TlsMinVersion = "TLS1.3"
	}
	closing := &atomic.Bool{}
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(newLogger(closing))
	// The apiserver compacts every five minutes itself, as kube-apiserver does.
	cfg.AutoCompactionRetention = "0"

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting embedded etcd in %s: %w", dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd failed: %w", err)
	case <-time.After(2 * time.Minute):
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s not ready after 2 minutes", dir)
	}
	klog.InfoS("Embedded etcd is ready", "dataDir", dir, "clientURL", clientURL.String(), "tls", certs != nil, "metricsURL", metricsURL.String())
	embedded := &Embedded{etcd: e, closing: closing, failed: make(chan error, 1), ClientURL: clientURL.String(), Certs: certs, MetricsURL: metricsURL.String()}
	go embedded.watch()
	return embedded, nil
}

// Failed receives one error when etcd stops other than by Close: a
// listener failed or the server stopped. Without it the apiserver would
// answer 5xx for ever; etcd's own binary exits on either.
func (e *Embedded) Failed() <-chan error { return e.failed }

func (e *Embedded) watch() {
	var err error
	select {
	case lerr, ok := <-e.etcd.Err():
		if !ok || lerr == nil {
			lerr = errors.New("a listener closed")
		}
		err = fmt.Errorf("embedded etcd stopped serving: %w", lerr)
	case <-e.etcd.Server.StopNotify():
		err = errors.New("embedded etcd server stopped")
	}
	if e.closing.Load() {
		return
	}
	e.failed <- err
}

// Close stops etcd after its pending writes are on disk.
func (e *Embedded) Close() {
	e.closing.Store(true)
	e.etcd.Close()
	klog.InfoS("Embedded etcd stopped")
}

func freeLoopbackURL(scheme string) (*url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer l.Close()
	return &url.URL{Scheme: scheme, Host: l.Addr().String()}, nil
}
