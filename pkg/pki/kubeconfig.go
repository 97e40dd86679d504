package pki

import (
	"fmt"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/klog/v2"
)

// Kubeconfig returns a kubeconfig for server, trusting ca and authenticating
// as user with a fresh client certificate.
func (ca *CA) Kubeconfig(server, user string, groups []string) ([]byte, error) {
	certPEM, keyPEM, err := ca.NewClientCert(user, groups)
	if err != nil {
		return nil, err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["skiff"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca.PEM()}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	context := fmt.Sprintf("%s@skiff", user)
	cfg.Contexts[context] = &clientcmdapi.Context{Cluster: "skiff", AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = context
	return clientcmd.Write(*cfg)
}

// ServerOf returns the server URL of the first cluster in a kubeconfig file.
func ServerOf(kubeconfigFile string) (string, error) {
	cfg, err := clientcmd.LoadFromFile(kubeconfigFile)
	if err != nil {
		return "", err
	}
	for _, c := range cfg.Clusters {
		return c.Server, nil
	}
	return "", fmt.Errorf("%s names no cluster", kubeconfigFile)
}

// EnsureKubeconfig keeps the kubeconfig in path while it points at server,
// trusts ca and holds a client certificate of ca with more than
// RenewBefore left; otherwise it writes a new one for user in groups (in
// one rename: clients read it at any time). It tells whether it wrote.
func (ca *CA) EnsureKubeconfig(path, server, user string, groups []string) (bool, error) {
	cfg, err := clientcmd.LoadFromFile(path)
	if err == nil {
		current, reason := ca.kubeconfigCurrent(cfg, server)
		if current {
			return false, nil
		}
		klog.InfoS("Renewing kubeconfig", "file", path, "reason", reason)
	}
	data, err := ca.Kubeconfig(server, user, groups)
	if err != nil {
		return false, err
	}
	return true, writeFileAtomic(path, data, 0o600)
}

// kubeconfigCurrent tells whether cfg's current context may stay, or why not.
func (ca *CA) kubeconfigCurrent(cfg *clientcmdapi.Config, server string) (bool, string) {
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil || cfg.Clusters[ctx.Cluster] == nil || cfg.AuthInfos[ctx.AuthInfo] == nil {
		return false, "no current context"
	}
	if cfg.Clusters[ctx.Cluster].Server != server {
		return false, "server address changed"
	}
	certs, err := certutil.ParseCertsPEM(cfg.AuthInfos[ctx.AuthInfo].ClientCertificateData)
	if err != nil || len(certs) == 0 {
		return false, "no client certificate"
	}
	if certs[0].CheckSignatureFrom(ca.Cert) != nil {
		return false, "client certificate not signed by the CA"
	}
	if NeedsRenewal(certs[0]) {
		return false, fmt.Sprintf("client certificate expires %s", certs[0].NotAfter.Format(time.RFC3339))
	}
	return true, ""
}
