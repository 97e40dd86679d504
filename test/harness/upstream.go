package harness

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"k8s.io/client-go/util/keyutil"

	"github.com/skiff-dev/skiff/pkg/etcd"
	"github.com/skiff-dev/skiff/pkg/pki"
)

// UpstreamVersion is the Kubernetes release skiff is measured against.
const UpstreamVersion = "v1.37.2"

// UpstreamDir is where hack/upstream.sh puts the upstream binaries:
// ${SKIFF_UPSTREAM_CACHE:-$HOME/.cache/skiff/upstream}/v1.37.2.
func UpstreamDir() string {
	base := os.Getenv("SKIFF_UPSTREAM_CACHE")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache", "skiff", "upstream")
	}
	return filepath.Join(base, UpstreamVersion)
}

// UpstreamBinary returns the path of an upstream binary (kube-apiserver,
// e2e.test, ...) and whether hack/upstream.sh has built it.
func UpstreamBinary(name string) (string, bool) {
	path := filepath.Join(UpstreamDir(), name)
	info, err := os.Stat(path)
	return path, err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0
}

// StartUpstream runs the upstream kube-apiserver on a loopback port,
// with an etcd in this process, a fresh CA, serving and admin client
// certificates (made with pkg/pki like skiff's) and a service-account key,
// and returns once /readyz answers 200. Flags not set here keep upstream's
// defaults (admission plugins included).
func StartUpstream(ctx context.Context, opts Options) (*Server, error) {
	bin, ok := UpstreamBinary("kube-apiserver")
	if !ok {
		return nil, fmt.Errorf("%s not found: build it with hack/upstream.sh kube-apiserver", bin)
	}
	dir, temporary, err := prepareDir(opts, "upstream")
	if err != nil {
		return nil, err
	}
	s, err := startUpstream(ctx, bin, dir, opts.Port, opts.Args)
	if err != nil {
		if temporary {
			os.RemoveAll(dir)
		}
		return nil, err
	}
	s.removeDir = temporary
	return s, nil
}

func startUpstream(ctx context.Context, bin, dir string, port int, extra []string) (*Server, error) {
	pkiDir := filepath.Join(dir, "pki")
	ca, err := pki.EnsureCA(pkiDir)
	if err != nil {
		return nil, err
	}
	serving, err := ca.EnsureServingCert(pkiDir, "apiserver", []string{"localhost", "127.0.0.1", "10.96.0.1",
		"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"})
	if err != nil {
		return nil, err
	}
	saKey, saPub, err := serviceAccountKeys(pkiDir)
	if err != nil {
		return nil, err
	}
	db, err := etcd.Start(filepath.Join(dir, "etcd"), nil)
	if err != nil {
		return nil, err
	}

	var s *Server
	err = startWithRetry(port, func(port int) error {
		s = &Server{Name: "upstream", Dir: dir, LogPath: filepath.Join(dir, "kube-apiserver.log"),
			URL: fmt.Sprintf("https://127.0.0.1:%d", port), Port: port, Kubeconfig: filepath.Join(dir, "admin.kubeconfig")}
		kubeconfig, err := ca.Kubeconfig(s.URL, "kubernetes-admin", []string{"system:masters"})
		if err != nil {
			return err
		}
		if err := os.WriteFile(s.Kubeconfig, kubeconfig, 0o600); err != nil {
			return err
		}
		args := append([]string{
			"--etcd-servers=" + db.ClientURL,
			"--secure-port=" + strconv.Itoa(port),
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			// The kubernetes service's endpoints would name the loopback
			// address, which endpoint validation rejects.
			"--endpoint-reconciler-type=none",
			"--tls-cert-file=" + serving.CertFile,
			"--tls-private-key-file=" + serving.KeyFile,
			"--client-ca-file=" + ca.CertFile,
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + saPub,
			"--service-account-signing-key-file=" + saKey,
			"--service-cluster-ip-range=10.96.0.0/12",
			"--authorization-mode=Node,RBAC",
		}, extra...)
		if err := s.launch(bin, args, nil); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, startTimeout)
		defer cancel()
		if err := s.waitReady(wctx); err != nil {
			s.kill()
			return addrInUse(err, s.LogTail(40))
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	s.etcd = db
	return s, nil
}

// serviceAccountKeys writes an ECDSA key pair for signing and verifying
// service-account tokens.
func serviceAccountKeys(dir string) (keyFile, pubFile string, err error) {
	keyFile, pubFile = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return "", "", err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	return keyFile, pubFile, os.WriteFile(pubFile, pubPEM, 0o644)
}
