package apiserver

import (
	"context"
	"time"

	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/etcd"
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

// checkCertificates renews what needs it, as at start.
func (o *Options) checkCertificates(embeddedEtcd bool) error {
	ca, _, err := o.ensurePKI()
	if err != nil {
		return err
	}
	if err := o.ensureAdminKubeconfig(ca); err != nil {
		return err
	}
	ca.ExpiresSoon()
	if !embeddedEtcd {
		return nil
	}
	_, err = etcd.EnsureCerts(o.PKIDir())
	return err
}
