package apiserver

import (
	"context"
	"time"

	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/apiserver/options"
	"github.com/skiff-dev/skiff/pkg/etcd"
)

// etcdGiveUp bounds each step of stopping after the embedded etcd failed: a
// graceful shutdown needs etcd (in-flight requests, withdrawing the
// endpoint), so it gets a moment, not more.
const etcdGiveUp = 2 * time.Second

// startEmbeddedEtcd runs etcd in <data-dir>/etcd over mutual TLS with the
// certificates of <data-dir>/pki, and returns how the apiserver reaches it.
func startEmbeddedEtcd(o *options.Options) (*etcd.Embedded, storagebackend.TransportConfig, error) {
	certs, err := etcd.EnsureCerts(o.PKIDir())
	if err != nil {
		return nil, storagebackend.TransportConfig{}, err
	}
	embedded, err := etcd.Start(o.EtcdDir(), certs)
	if err != nil {
		return nil, storagebackend.TransportConfig{}, err
	}
	return embedded, storagebackend.TransportConfig{
		ServerList:    []string{embedded.ClientURL},
		TrustedCAFile: certs.CAFile,
		CertFile:      certs.Client.CertFile,
		KeyFile:       certs.Client.KeyFile,
	}, nil
}

// embeddedEtcd is what runWithEmbeddedEtcd needs of an etcd.Embedded.
type embeddedEtcd interface {
	Failed() <-chan error
	Close()
}

// runWithEmbeddedEtcd runs serve until ctx ends, then closes etcd; or until
// the embedded etcd fails: then it returns that error within a few seconds
// (as k3s and etcd's own binary exit), instead of answering 5xx for ever.
func runWithEmbeddedEtcd(ctx context.Context, embedded embeddedEtcd, serve func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- serve(ctx) }()
	select {
	case err := <-served:
		embedded.Close()
		return err
	case err := <-embedded.Failed():
		klog.ErrorS(err, "Embedded etcd stopped underneath the API server; exiting")
		cancel()
		for _, wait := range []func(){
			func() { <-served },
			embedded.Close, // its files are left as after a crash, which etcd recovers from
		} {
			waitAtMost(etcdGiveUp, wait)
		}
		return err
	}
}

func waitAtMost(d time.Duration, f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
}
