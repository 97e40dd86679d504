package apiserver

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"time"

	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/apiserver/options"
	"github.com/skiff-dev/skiff/pkg/etcd"
	"github.com/skiff-dev/skiff/pkg/pki"
)

// ensurePKI keeps or makes the cluster CA and the serving certificate.
func ensurePKI(o *options.Options) (*pki.CA, pki.Files, error) {
	ca, err := pki.EnsureCA(o.PKIDir())
	if err != nil {
		return nil, pki.Files{}, fmt.Errorf("certificate authority: %w", err)
	}
	serving, err := ensureServingCert(o, ca)
	if err != nil {
		return nil, pki.Files{}, err
	}
	return ca, serving, ensureKubeletClientCert(o, ca)
}

// KubeletClientUser is the user of the kubelet client certificate skiff
// signs (kubeadm's name); the bootstrap policy grants it
// system:kubelet-api-admin.
const KubeletClientUser = "kube-apiserver-kubelet-client"

// ensureKubeletClientCert keeps or renews <pki>/apiserver-kubelet-client,
// the certificate the server presents to kubelets, unless
// --kubelet-client-certificate names one.
func ensureKubeletClientCert(o *options.Options, ca *pki.CA) error {
	if !o.GeneratesKubeletClientCert() {
		return nil
	}
	_, err := ca.EnsureCert(o.PKIDir(), options.KubeletClientCertName, pki.CertSpec{
		CommonName: KubeletClientUser,
		Usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return fmt.Errorf("kubelet client certificate: %w", err)
	}
	return nil
}

// ensureServingCert keeps or renews the serving certificate for every name
// the server is reached by.
func ensureServingCert(o *options.Options, ca *pki.CA) (pki.Files, error) {
	serviceIP, err := o.ServiceIP()
	if err != nil {
		return pki.Files{}, err
	}
	hosts := []string{"localhost", "127.0.0.1", serviceIP.String(),
		"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	if hostname, err := os.Hostname(); err == nil {
		hosts = append(hosts, hostname)
	}
	if ip := net.ParseIP(o.BindAddress); ip != nil && !ip.IsUnspecified() {
		hosts = append(hosts, ip.String())
	}
	if ip, err := o.AdvertiseIP(); err == nil {
		hosts = append(hosts, ip.String())
	}
	hosts = append(hosts, o.TLSSANs...)
	serving, err := ca.EnsureServingCert(o.PKIDir(), "apiserver", hosts)
	if err != nil {
		return pki.Files{}, fmt.Errorf("serving certificate: %w", err)
	}
	return serving, nil
}

// ensureAdminKubeconfig keeps the admin kubeconfig of earlier starts unless
// it points at another address or its certificate needs renewal.
func ensureAdminKubeconfig(o *options.Options, ca *pki.CA) error {
	_, err := ca.EnsureKubeconfig(o.AdminKubeconfig(), o.ServerURL(), "kubernetes-admin", []string{"system:masters"})
	return err
}

// certCheckInterval is how often a running server renews the certificates
// that come within pki.RenewBefore of expiring. Renewing needs no restart:
// the serving certificate is read through dynamiccertificates (which
// watches its files), etcd and its clients read their files at every TLS
// handshake, kubectl reads admin.kubeconfig at every run.
const certCheckInterval = time.Hour

// renewCertificates runs the start's certificate checks again every
// interval until ctx ends: the serving certificate, admin.kubeconfig, the
// embedded etcd's certificates, and the CAs' expiry warning.
func renewCertificates(ctx context.Context, o *options.Options, embeddedEtcd bool) {
	interval := o.CertCheckInterval
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
		if err := checkCertificates(o, embeddedEtcd); err != nil {
			klog.ErrorS(err, "Renewing certificates failed; will retry", "interval", interval)
		}
	}
}

// checkCertificates renews what needs it, as at start, but never makes a
// CA: a new one while running would lock every client out.
func checkCertificates(o *options.Options, embeddedEtcd bool) error {
	ca, err := pki.LoadCA(o.PKIDir())
	if err != nil {
		return err
	}
	if _, err := ensureServingCert(o, ca); err != nil {
		return err
	}
	if err := ensureAdminKubeconfig(o, ca); err != nil {
		return err
	}
	if err := ensureKubeletClientCert(o, ca); err != nil {
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
