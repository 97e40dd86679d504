// Package pki creates and reuses the cluster's certificate authority, the
// apiserver's serving certificate and client certificates, and writes
// kubeconfig files holding them.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
	"k8s.io/klog/v2"
)

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	certValidity = 365 * 24 * time.Hour
	// RenewBefore is k3s's rule: a certificate with less left is renewed
	// (at start and by the server's periodic check).
	RenewBefore = 90 * 24 * time.Hour
	// CAWarnBefore is how long before the CA ends a warning is logged: the
	// CA is not renewed automatically (every client trusts it).
	CAWarnBefore = 365 * 24 * time.Hour
)

// now is the clock of issuing and renewal decisions; tests move it.
var now = time.Now

// CA is a certificate authority that signs the cluster's certificates.
type CA struct {
	Cert     *x509.Certificate
	Key      crypto.Signer
	CertFile string
}

// Files names a certificate and its key on disk.
type Files struct {
	CertFile, KeyFile string
}

// EnsureCA loads the cluster CA from dir/ca.{crt,key}, creating it on first use.
func EnsureCA(dir string) (*CA, error) { return EnsureNamedCA(dir, "skiff-ca") }

// EnsureNamedCA is EnsureCA for a CA named commonName when it is created
// (the embedded etcd has a CA of its own).
func EnsureNamedCA(dir, commonName string) (*CA, error) {
	certFile, keyFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if exists(certFile) && exists(keyFile) {
		return LoadCA(dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	cert, err := newCACert(commonName, key)
	if err != nil {
		return nil, err
	}
	if err := writePair(certFile, keyFile, cert, key); err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, CertFile: certFile}, nil
}

// LoadCA reads an existing CA from dir.
func LoadCA(dir string) (*CA, error) {
	certFile, keyFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	certs, err := certutil.CertsFromFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("reading CA certificate: %w", err)
	}
	key, err := keyutil.PrivateKeyFromFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("reading CA key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("CA key in %s cannot sign", keyFile)
	}
	return &CA{Cert: certs[0], Key: signer, CertFile: certFile}, nil
}

// newCACert is a self-signed CA certificate valid for caValidity.
func newCACert(commonName string, key crypto.Signer) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	t := now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             t.Add(-5 * time.Minute).UTC(),
		NotAfter:              t.Add(caValidity).UTC(),
		KeyUsage:              x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// ExpiresSoon tells whether the CA ends within CAWarnBefore, and logs a
// warning then: renewing a CA means handing every client its new
// certificate, so it is an operator's job, announced a year ahead.
func (ca *CA) ExpiresSoon() bool {
	left := ca.Cert.NotAfter.Sub(now())
	if left >= CAWarnBefore {
		return false
	}
	klog.ErrorS(nil, "Certificate authority expires within a year; certificates it signs stop working then",
		"file", ca.CertFile, "notAfter", ca.Cert.NotAfter, "daysLeft", int(left.Hours()/24))
	return true
}

// NeedsRenewal tells whether cert has less than RenewBefore left.
func NeedsRenewal(cert *x509.Certificate) bool {
	return cert.NotAfter.Sub(now()) < RenewBefore
}

// EnsureServingCert returns dir/<name>.{crt,key}, a server certificate for
// hosts (DNS names and IPs), reusing the existing one while it is valid and
// covers every host.
func (ca *CA) EnsureServingCert(dir, name string, hosts []string) (Files, error) {
	return ca.EnsureCert(dir, name, CertSpec{CommonName: name, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, Hosts: hosts})
}

// CertSpec is what a certificate of EnsureCert must hold.
type CertSpec struct {
	CommonName   string
	Organization []string
	Usages       []x509.ExtKeyUsage
	// Hosts are the DNS names and IPs a server certificate is valid for.
	Hosts []string
}

// EnsureCert returns dir/<name>.{crt,key}, a certificate for spec signed by
// ca. The existing pair is reused while it is valid, its key matches, ca
// signed it, it has spec's usages and hosts and more than RenewBefore
// left; otherwise it is replaced, keeping the key when it is readable (so
// the pair on disk never mismatches). Both files are replaced atomically:
// the API server and etcd re-read them while serving.
func (ca *CA) EnsureCert(dir, name string, spec CertSpec) (Files, error) {
	f := Files{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	if pair, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile); err == nil {
		cert := pair.Leaf
		if cert.CheckSignatureFrom(ca.Cert) == nil && slices.Equal(cert.ExtKeyUsage, spec.Usages) && covers(cert, spec.Hosts) {
			if !NeedsRenewal(cert) {
				return f, nil
			}
			klog.InfoS("Renewing certificate", "file", f.CertFile, "notAfter", cert.NotAfter)
		}
	}
	key := readKey(f.KeyFile)
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: spec.CommonName, Organization: spec.Organization},
		ExtKeyUsage: spec.Usages,
	}
	for _, h := range spec.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if key == nil {
		var err error
		if key, err = newKey(); err != nil {
			return Files{}, err
		}
		keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
		if err != nil {
			return Files{}, err
		}
		if err := writeFileAtomic(f.KeyFile, keyPEM, 0o600); err != nil {
			return Files{}, err
		}
	}
	cert, err := ca.signKey(tmpl, key)
	if err != nil {
		return Files{}, err
	}
	return f, writeFileAtomic(f.CertFile, encodeCert(cert), 0o644)
}

// readKey is the private key in file, nil when there is none usable.
func readKey(file string) crypto.Signer {
	key, err := keyutil.PrivateKeyFromFile(file)
	if err != nil {
		return nil
	}
	signer, _ := key.(crypto.Signer)
	return signer
}

// NewClientCert signs a client certificate for user in groups (the x509
// authenticator reads the user from the CN and groups from O).
func (ca *CA) NewClientCert(user string, groups []string) (certPEM, keyPEM []byte, err error) {
	cert, key, err := ca.sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: user, Organization: groups},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCert(cert), keyPEM, nil
}

// PEM returns the CA certificate in PEM form.
func (ca *CA) PEM() []byte { return encodeCert(ca.Cert) }

func (ca *CA) sign(tmpl *x509.Certificate) (*x509.Certificate, crypto.Signer, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	cert, err := ca.signKey(tmpl, key)
	return cert, key, err
}

// signKey issues tmpl for key, valid for certValidity from now.
func (ca *CA) signKey(tmpl *x509.Certificate, key crypto.Signer) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	t := now()
	tmpl.SerialNumber = serial
	tmpl.NotBefore = t.Add(-5 * time.Minute).UTC()
	tmpl.NotAfter = t.Add(certValidity).UTC()
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func newKey() (crypto.Signer, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func encodeCert(cert *x509.Certificate) []byte {
	out, _ := certutil.EncodeCertificates(cert)
	return out
}

func writePair(certFile, keyFile string, cert *x509.Certificate, key crypto.Signer) error {
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return err
	}
	if err := keyutil.WriteKey(keyFile, keyPEM); err != nil {
		return err
	}
	return certutil.WriteCert(certFile, encodeCert(cert))
}

func covers(cert *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
				return false
			}
		} else if !slices.Contains(cert.DNSNames, h) {
			return false
		}
	}
	return true
}

// writeFileAtomic replaces path by data in one rename, so that a reader
// never sees a half-written file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename: no such file
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}
