// Package options holds the flags of skiff's API server (kube-apiserver's
// names and defaults where they apply) and what follows from them: the
// data dir's layout, the addresses the server is reached at, the etcd
// connection.
package options

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/apiserver/pkg/storage/storagebackend"
)

// Options are the flags of the API server.
type Options struct {
	DataDir     string
	SecurePort  int
	BindAddress string
	// AdvertiseAddress is the address the kubernetes Service's endpoints
	// list for this server; empty: derived from BindAddress.
	AdvertiseAddress string
	TLSSANs          []string

	EtcdServers  []string
	EtcdCAFile   string
	EtcdCertFile string
	EtcdKeyFile  string

	ServiceClusterIPRange string
	ServiceNodePortRange  string

	// Audit is upstream's audit logging (--audit-policy-file,
	// --audit-log-path, ...).
	Audit *genericoptions.AuditOptions

	// ServiceAccounts are the service account token flags
	// (--service-account-issuer, ..., --api-audiences).
	ServiceAccounts *ServiceAccountOptions

	// EnableBootstrapTokenAuth accepts the bootstrap tokens of kube-system's
	// bootstrap-token-<id> Secrets (--enable-bootstrap-token-auth).
	EnableBootstrapTokenAuth bool

	// KubeletClient are the --kubelet-* flags (kubelet.go).
	KubeletClient *KubeletClientOptions

	// CertCheckInterval is how often a running server renews certificates
	// close to expiry; zero: hourly. No flag: tests set it.
	CertCheckInterval time.Duration
}

// NewOptions returns the defaults of upstream kube-apiserver where they apply.
func NewOptions() *Options {
	return &Options{
		DataDir:               DefaultDataDir(),
		SecurePort:            6443,
		BindAddress:           "0.0.0.0",
		ServiceClusterIPRange: "10.96.0.0/12",
		ServiceNodePortRange:  "30000-32767",
		Audit:                 genericoptions.NewAuditOptions(),
		ServiceAccounts:       NewServiceAccountOptions(),
		KubeletClient:         NewKubeletClientOptions(),
		// Upstream's default is false; skiff's nodes join with bootstrap
		// tokens, so they are on unless turned off.
		EnableBootstrapTokenAuth: true,
	}
}

// DefaultDataDir is /var/lib/skiff for root and ~/.skiff for everyone else.
func DefaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/skiff"
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".skiff")
	}
	return ".skiff"
}

// AddFlags registers the options on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "Directory for certificates, kubeconfigs and the embedded etcd's data.")
	fs.IntVar(&o.SecurePort, "secure-port", o.SecurePort, "The port on which to serve HTTPS with authentication and authorization.")
	fs.StringVar(&o.BindAddress, "bind-address", o.BindAddress, "The IP address on which to listen for the --secure-port port.")
	fs.StringVar(&o.AdvertiseAddress, "advertise-address", o.AdvertiseAddress, "The IP address on which to advertise the apiserver to members of the cluster (the kubernetes Service's endpoints). Empty: the --bind-address, or the host's default interface address when that is 0.0.0.0.")
	fs.StringSliceVar(&o.TLSSANs, "tls-san", o.TLSSANs, "Additional host name or IP address for the serving certificate (repeatable).")
	fs.StringSliceVar(&o.EtcdServers, "etcd-servers", o.EtcdServers, "List of etcd servers to connect with (scheme://ip:port), comma separated. Empty: run an embedded etcd in <data-dir>/etcd.")
	fs.StringVar(&o.EtcdCAFile, "etcd-cafile", o.EtcdCAFile, "SSL Certificate Authority file used to secure etcd communication.")
	fs.StringVar(&o.EtcdCertFile, "etcd-certfile", o.EtcdCertFile, "SSL certification file used to secure etcd communication.")
	fs.StringVar(&o.EtcdKeyFile, "etcd-keyfile", o.EtcdKeyFile, "SSL key file used to secure etcd communication.")
	fs.StringVar(&o.ServiceClusterIPRange, "service-cluster-ip-range", o.ServiceClusterIPRange, "A CIDR notation IP range from which to assign service cluster IPs.")
	o.Audit.AddFlags(fs)
	o.ServiceAccounts.AddFlags(fs)
	o.KubeletClient.AddFlags(fs)
	fs.BoolVar(&o.EnableBootstrapTokenAuth, "enable-bootstrap-token-auth", o.EnableBootstrapTokenAuth, "Allow secrets of type 'bootstrap.kubernetes.io/token' in the 'kube-system' namespace to be used for TLS bootstrapping authentication.")
	fs.StringVar(&o.ServiceNodePortRange, "service-node-port-range", o.ServiceNodePortRange, "A port range to reserve for services with NodePort visibility, inclusive at both ends.")
}

// Validate reports every invalid option.
func (o *Options) Validate() []error {
	var errs []error
	if o.DataDir == "" {
		errs = append(errs, fmt.Errorf("--data-dir must not be empty"))
	}
	if o.SecurePort < 1 || o.SecurePort > 65535 {
		errs = append(errs, fmt.Errorf("--secure-port %d must be between 1 and 65535", o.SecurePort))
	}
	if o.AdvertiseAddress != "" && net.ParseIP(o.AdvertiseAddress) == nil {
		errs = append(errs, fmt.Errorf("--advertise-address %q is not an IP address", o.AdvertiseAddress))
	}
	if net.ParseIP(o.BindAddress) == nil {
		errs = append(errs, fmt.Errorf("--bind-address %q is not an IP address", o.BindAddress))
	}
	if _, _, err := net.ParseCIDR(o.ServiceClusterIPRange); err != nil {
		errs = append(errs, fmt.Errorf("--service-cluster-ip-range: %w", err))
	}
	if _, err := utilnet.ParsePortRange(o.ServiceNodePortRange); err != nil {
		errs = append(errs, fmt.Errorf("--service-node-port-range: %w", err))
	}
	errs = append(errs, o.Audit.Validate()...)
	errs = append(errs, o.ServiceAccounts.Validate()...)
	errs = append(errs, o.KubeletClient.Validate()...)
	return errs
}

// ServerURL is the address clients on this machine use.
func (o *Options) ServerURL() string {
	host := o.BindAddress
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return fmt.Sprintf("https://%s", net.JoinHostPort(host, fmt.Sprint(o.SecurePort)))
}

// ServiceIP is the first address of the service range: the `kubernetes`
// Service's ClusterIP, so the serving certificate must name it.
func (o *Options) ServiceIP() (net.IP, error) {
	_, cidr, err := net.ParseCIDR(o.ServiceClusterIPRange)
	if err != nil {
		return nil, err
	}
	ip := make(net.IP, len(cidr.IP))
	copy(ip, cidr.IP)
	ip[len(ip)-1]++
	return ip, nil
}

// AdvertiseIP is the address other cluster members reach this server at.
func (o *Options) AdvertiseIP() (net.IP, error) {
	if o.AdvertiseAddress != "" {
		return net.ParseIP(o.AdvertiseAddress), nil
	}
	return utilnet.ResolveBindAddress(net.ParseIP(o.BindAddress))
}

// Paths of the files the server keeps in its data dir.
func (o *Options) PKIDir() string          { return filepath.Join(o.DataDir, "pki") }
func (o *Options) EtcdDir() string         { return filepath.Join(o.DataDir, "etcd") }
func (o *Options) AdminKubeconfig() string { return filepath.Join(o.DataDir, "admin.kubeconfig") }

// EtcdTransport is the etcd connection the --etcd-* flags name; no servers
// means the embedded etcd.
func (o *Options) EtcdTransport() storagebackend.TransportConfig {
	return storagebackend.TransportConfig{
		ServerList:    o.EtcdServers,
		TrustedCAFile: o.EtcdCAFile,
		CertFile:      o.EtcdCertFile,
		KeyFile:       o.EtcdKeyFile,
	}
}
