package options

import (
	"fmt"
	"path/filepath"
	"slices"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-dev/skiff/pkg/kubeletclient"
)

// KubeletClientOptions are kube-apiserver's --kubelet-* flags: how
// pods/log, exec, attach, portforward and nodes/proxy reach kubelets.
type KubeletClientOptions struct {
	kubeletclient.Config
}

// PreferredAddressTypes is the default --kubelet-preferred-address-types:
// kubeadm's and k3s's (kube-apiserver's own puts Hostname first). Nodes
// report their host name, which often resolves to a loopback address
// (Debian's /etc/hosts), and nodes/proxy refuses those.
var PreferredAddressTypes = []string{string(corev1.NodeInternalIP), string(corev1.NodeExternalIP), string(corev1.NodeHostName)}

// NewKubeletClientOptions returns upstream's defaults, the preferred
// address types as kubeadm sets them.
func NewKubeletClientOptions() *KubeletClientOptions {
	cfg := kubeletclient.DefaultConfig()
	cfg.PreferredAddressTypes = append([]string(nil), PreferredAddressTypes...)
	return &KubeletClientOptions{Config: cfg}
}

// AddFlags registers the flags on fs.
func (k *KubeletClientOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&k.PreferredAddressTypes, "kubelet-preferred-address-types", k.PreferredAddressTypes, "List of the preferred NodeAddressTypes to use for kubelet connections.")
	fs.DurationVar(&k.HTTPTimeout, "kubelet-timeout", k.HTTPTimeout, "Timeout for kubelet operations.")
	fs.StringVar(&k.CertFile, "kubelet-client-certificate", k.CertFile, "Path to a client cert file for TLS. Empty (with --kubelet-client-key): <data-dir>/pki/apiserver-kubelet-client.crt, signed by the cluster CA at start.")
	fs.StringVar(&k.KeyFile, "kubelet-client-key", k.KeyFile, "Path to a client key file for TLS. Empty (with --kubelet-client-certificate): <data-dir>/pki/apiserver-kubelet-client.key.")
	fs.StringVar(&k.CAFile, "kubelet-certificate-authority", k.CAFile, "Path to a cert file for the certificate authority. Empty: the cluster CA, <data-dir>/pki/ca.crt.")
}

var nodeAddressTypes = []string{
	string(corev1.NodeHostName), string(corev1.NodeInternalIP), string(corev1.NodeExternalIP),
	string(corev1.NodeInternalDNS), string(corev1.NodeExternalDNS),
}

// Validate reports every invalid kubelet client option.
func (k *KubeletClientOptions) Validate() []error {
	var errs []error
	for _, t := range k.PreferredAddressTypes {
		if !slices.Contains(nodeAddressTypes, t) {
			errs = append(errs, fmt.Errorf("--kubelet-preferred-address-types: unknown address type %q (known: %v)", t, nodeAddressTypes))
		}
	}
	if len(k.PreferredAddressTypes) == 0 {
		errs = append(errs, fmt.Errorf("--kubelet-preferred-address-types must not be empty"))
	}
	if (k.CertFile == "") != (k.KeyFile == "") {
		errs = append(errs, fmt.Errorf("--kubelet-client-certificate and --kubelet-client-key must be given together"))
	}
	if k.HTTPTimeout < 0 {
		errs = append(errs, fmt.Errorf("--kubelet-timeout must not be negative"))
	}
	return errs
}

// KubeletClientCertName is the base name, in the PKI dir, of the kubelet
// client certificate skiff makes when no --kubelet-client-certificate is
// given (kubeadm's apiserver-kubelet-client).
const KubeletClientCertName = "apiserver-kubelet-client"

// GeneratesKubeletClientCert tells whether the server signs its own
// kubelet client certificate (no --kubelet-client-certificate given).
func (o *Options) GeneratesKubeletClientCert() bool { return o.KubeletClient.CertFile == "" }

// KubeletConfig is the kubelet connection with skiff's defaults filled
// in: the generated client certificate and the cluster CA.
func (o *Options) KubeletConfig() kubeletclient.Config {
	cfg := o.KubeletClient.Config
	if cfg.CertFile == "" {
		cfg.CertFile = filepath.Join(o.PKIDir(), KubeletClientCertName+".crt")
		cfg.KeyFile = filepath.Join(o.PKIDir(), KubeletClientCertName+".key")
	}
	if cfg.CAFile == "" {
		cfg.CAFile = filepath.Join(o.PKIDir(), "ca.crt")
	}
	return cfg
}
