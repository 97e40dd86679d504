package server

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// SelfSignedCert makes (once) the kubelet's self-signed serving
// certificate in dir as upstream's kubelet without --tls-cert-file:
// kubelet.crt and kubelet.key, for nodeName and the given IPs. An existing
// pair is kept.
func SelfSignedCert(dir, nodeName string, ips []net.IP) (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(dir, "kubelet.crt"), filepath.Join(dir, "kubelet.key")
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil {
		return certFile, keyFile, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("creating %s: %w", dir, err)
	}
	cert, key, err := certutil.GenerateSelfSignedCertKey(nodeName, ips, nil)
	if err != nil {
		return "", "", fmt.Errorf("generating the kubelet's self-signed certificate: %w", err)
	}
	if err := certutil.WriteCert(certFile, cert); err != nil {
		return "", "", fmt.Errorf("writing %s: %w", certFile, err)
	}
	if err := keyutil.WriteKey(keyFile, key); err != nil {
		return "", "", fmt.Errorf("writing %s: %w", keyFile, err)
	}
	return certFile, keyFile, nil
}

// certReloader serves the certificate of two files, loading them again
// when either changes (a rotated kubelet-serving certificate).
type certReloader struct {
	certFile, keyFile string

	mu       sync.Mutex
	cert     *tls.Certificate
	modTimes [2]time.Time
	checked  time.Time
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("kubelet server: no serving certificate (TLSCertFile and TLSKeyFile)")
	}
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	if _, err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) load() (*tls.Certificate, error) {
	var mods [2]time.Time
	for i, f := range []string{r.certFile, r.keyFile} {
		st, err := os.Stat(f)
		if err != nil {
			return nil, fmt.Errorf("kubelet server certificate: %w", err)
		}
		mods[i] = st.ModTime()
	}
	if r.cert != nil && mods == r.modTimes {
		return r.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return nil, fmt.Errorf("kubelet server certificate %s: %w", r.certFile, err)
	}
	r.cert, r.modTimes = &cert, mods
	return r.cert, nil
}

// GetCertificate looks at the files at most once a second.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) < time.Second && r.cert != nil {
		return r.cert, nil
	}
	r.checked = time.Now()
	cert, err := r.load()
	if err != nil && r.cert != nil {
		// A half-written rotation: keep serving the old one.
		return r.cert, nil
	}
	return cert, err
}

// preferCurrent serves current's certificate once there is one, fallback's
// until then: upstream's kubelet fails handshakes until its kubelet-serving
// certificate is issued, but the self-signed one keeps the port answering
// clients that do not verify it (probes, insecureSkipTLSVerifyBackend) in
// the meantime; verifying clients refuse it either way.
func preferCurrent(current func() *tls.Certificate, fallback func(*tls.ClientHelloInfo) (*tls.Certificate, error)) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if current == nil {
		return fallback
	}
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if cert := current(); cert != nil {
			return cert, nil
		}
		return fallback(hello)
	}
}
