package apiserver

import (
	"context"
	"fmt"
	"time"

	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/etcd"
	"github.com/skiff-dev/skiff/pkg/pki"
)

// certCheckInterval is how often a running server renews the certificates
// that come within pki.RenewBefore of expiring. Renewing needs no restart:
// the serving certificate is read through dynamiccertificates (which
// watches its files), etcd and its clients read their files at every TLS
// handshake, kubectl reads admin.kubeconfig at every run.
const certCheckInterval = time.Hour

// renewCertificates runs the start's certificate checks again every
// interval until ctx ends: the serving certificate, admin.kubeconfig, the
// embedded etcd's certificates, and the CAs' expiry warning.
func (o *Options) renewCertificates(ctx context.Context, embeddedEtcd bool) {
	interval := o.certCheckInterval
	if interval <= 0 {
		interval = certCheckInterval
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if err := o.checkCertificates(embeddedEtcd); err != nil {
			klog.ErrorS(err, "Renewing certificates failed; will retry", "interval", interval)
		}
	}
}

// checkCertificates renews what needs it, as at start, but never makes a
// CA: a new one while running would lock every client out.
func (o *Options) checkCertificates(embeddedEtcd bool) error {
	ca, err := pki.LoadCA(o.PKIDir())
	if err != nil {
		return err
	}
	if _, err := o.ensureServingCert(ca); err != nil {
		return err
	}
	if err := o.ensureAdminKubeconfig(ca); err != nil {
		return err
	}
	ca.ExpiresSoon()
	if !embeddedEtcd {
		return nil
	}
	if _, err := pki.LoadCA(etcd.CADir(o.PKIDir())); err != nil {
		return fmt.Errorf("etcd CA: %w", err)
	}
	_, err = etcd.EnsureCerts(o.PKIDir())
	return err
}
