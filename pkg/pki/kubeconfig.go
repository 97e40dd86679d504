package pki

import (
	"fmt"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
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
