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
)

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	certValidity = 365 * 24 * time.Hour
)

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
	cert, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: commonName}, key)
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
// signed it and it has spec's usages and hosts; otherwise it is replaced.
func (ca *CA) EnsureCert(dir, name string, spec CertSpec) (Files, error) {
	f := Files{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	if pair, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile); err == nil {
		cert := pair.Leaf
		if cert.CheckSignatureFrom(ca.Cert) == nil && slices.Equal(cert.ExtKeyUsage, spec.Usages) &&
			covers(cert, spec.Hosts) && stillValid(cert) {
			return f, nil
		}
	}
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
	cert, key, err := ca.sign(tmpl)
	if err != nil {
		return Files{}, err
	}
	return f, writePair(f.CertFile, f.KeyFile, cert, key)
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
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-5 * time.Minute).UTC()
	tmpl.NotAfter = now.Add(certValidity).UTC()
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
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

func stillValid(cert *x509.Certificate) bool {
	// Renew a month ahead so a long-running server never serves an expired cert.
	return time.Now().Add(30 * 24 * time.Hour).Before(cert.NotAfter)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}
