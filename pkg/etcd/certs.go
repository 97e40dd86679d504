package etcd

import (
	"crypto/x509"
	"fmt"
	"path/filepath"

	"github.com/skiff-dev/skiff/pkg/pki"
)

// Certs are the files of the embedded etcd's mutual TLS, laid out as
// kubeadm lays them out: <pki>/etcd/{ca,server,peer}.{crt,key} and the
// apiserver's client certificate <pki>/apiserver-etcd-client.{crt,key}.
type Certs struct {
	// CAFile is etcd's own CA, the only one etcd trusts for client and
	// peer certificates. Not the cluster CA: that one signs the
	// certificates of users (skiff kubeconfig, approved CSRs), and etcd,
	// without auth of its own, would give each of them every key.
	CAFile string
	Server pki.Files
	Peer   pki.Files
	// Client is the apiserver's client certificate.
	Client pki.Files
}

// etcdHosts are the names the embedded etcd is reached by: it listens on
// loopback only.
var etcdHosts = []string{"localhost", "127.0.0.1", "::1"}

// CADir is where the embedded etcd's CA lives under pkiDir.
func CADir(pkiDir string) string { return filepath.Join(pkiDir, "etcd") }

// EnsureCerts creates the embedded etcd's CA and certificates under pkiDir
// on first use and reuses them while they have more than pki.RenewBefore
// left (a running server calls it again to renew them: etcd and its
// clients read the files at each TLS handshake).
func EnsureCerts(pkiDir string) (*Certs, error) {
	dir := CADir(pkiDir)
	ca, err := pki.EnsureNamedCA(dir, "etcd-ca")
	if err != nil {
		return nil, fmt.Errorf("etcd CA: %w", err)
	}
	ca.ExpiresSoon()
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	certs := &Certs{CAFile: ca.CertFile}
	// As kubeadm's: server and peer certificates serve and also
	// authenticate (a peer dials the others).
	if certs.Server, err = ca.EnsureCert(dir, "server", pki.CertSpec{CommonName: "skiff-etcd", Usages: both, Hosts: etcdHosts}); err != nil {
		return nil, fmt.Errorf("etcd server certificate: %w", err)
	}
	if certs.Peer, err = ca.EnsureCert(dir, "peer", pki.CertSpec{CommonName: "skiff-etcd-peer", Usages: both, Hosts: etcdHosts}); err != nil {
		return nil, fmt.Errorf("etcd peer certificate: %w", err)
	}
	client := pki.CertSpec{CommonName: "kube-apiserver-etcd-client", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if certs.Client, err = ca.EnsureCert(pkiDir, "apiserver-etcd-client", client); err != nil {
		return nil, fmt.Errorf("etcd client certificate: %w", err)
	}
	return certs, nil
}
