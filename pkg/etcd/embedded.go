// Package etcd runs the embedded single-member etcd of `skiff server`.
package etcd

import (
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
	// ClientURL is where the apiserver reaches it.
	ClientURL string
}

// Start runs etcd with its data in dir. Client and peer ports are picked free
// at start, so several servers can run side by side; nothing but this process
// needs to know them.
func Start(dir string) (*Embedded, error) {
	clientURL, err := freeLoopbackURL()
	if err != nil {
		return nil, err
	}
	peerURL, err := freeLoopbackURL()
	if err != nil {
		return nil, err
	}
	// etcd's HTTP endpoints (health, metrics) get their own port: served on
	// the gRPC port, closing waits the full request timeout (7 s) for the
	// multiplexed connections.
	httpURL, err := freeLoopbackURL()
	if err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Name = "skiff"
	cfg.Dir = dir
	cfg.ListenClientUrls = []url.URL{*clientURL}
	cfg.ListenClientHttpUrls = []url.URL{*httpURL}
	cfg.AdvertiseClientUrls = []url.URL{*clientURL}
	cfg.ListenPeerUrls = []url.URL{*peerURL}
	cfg.AdvertisePeerUrls = []url.URL{*peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
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
	klog.InfoS("Embedded etcd is ready", "dataDir", dir, "clientURL", clientURL.String())
	return &Embedded{etcd: e, closing: closing, ClientURL: clientURL.String()}, nil
}

// Err reports a fatal etcd error.
func (e *Embedded) Err() <-chan error { return e.etcd.Err() }

// Close stops etcd after its pending writes are on disk.
func (e *Embedded) Close() {
	e.closing.Store(true)
	e.etcd.Close()
	klog.InfoS("Embedded etcd stopped")
}

func freeLoopbackURL() (*url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer l.Close()
	return &url.URL{Scheme: "http", Host: l.Addr().String()}, nil
}
