// Package kubeletclient is how the API server reaches a node's kubelet (as
// upstream's pkg/kubelet/client): the node's address by preferred type, the
// port the kubelet reports, and a TLS transport presenting the API server's
// kubelet client certificate and verifying the kubelet against a CA. It
// also builds the transport for proxying to pods and services.
package kubeletclient

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/transport"
)

// DefaultPort is the kubelet's port when a node reports none (upstream's
// ports.KubeletPort).
const DefaultPort = 10250

// DefaultPreferredAddressTypes is upstream's --kubelet-preferred-address-types.
var DefaultPreferredAddressTypes = []string{
	string(corev1.NodeHostName),
	string(corev1.NodeInternalDNS),
	string(corev1.NodeInternalIP),
	string(corev1.NodeExternalDNS),
	string(corev1.NodeExternalIP),
}

// Config is the kubelet connection the --kubelet-* flags describe.
type Config struct {
	// Port is used when a node's status.daemonEndpoints.kubeletEndpoint
	// has none.
	Port int
	// PreferredAddressTypes pick the node address to dial, first match wins.
	PreferredAddressTypes []string
	// HTTPTimeout bounds dialing and the TLS handshake (--kubelet-timeout).
	HTTPTimeout time.Duration
	// CertFile and KeyFile are the client certificate presented to kubelets.
	CertFile, KeyFile string
	// CAFile verifies the kubelets' serving certificates; empty: they are
	// not verified (as upstream without --kubelet-certificate-authority).
	CAFile string
}

// DefaultConfig is upstream kube-apiserver's kubelet connection defaults.
func DefaultConfig() Config {
	return Config{
		Port:                  DefaultPort,
		PreferredAddressTypes: append([]string(nil), DefaultPreferredAddressTypes...),
		HTTPTimeout:           5 * time.Second,
	}
}

// ConnectionInfo is how to reach one node's kubelet.
type ConnectionInfo struct {
	Scheme, Hostname, Port string
	// Transport verifies the kubelet; InsecureSkipTLSVerifyTransport does
	// not (pods/log?insecureSkipTLSVerifyBackend=true).
	Transport                      http.RoundTripper
	InsecureSkipTLSVerifyTransport http.RoundTripper
	// NodeFeatures are the node's status.declaredFeatures.
	NodeFeatures []string
}

// HostPort is the kubelet's address for a URL.
func (c *ConnectionInfo) HostPort() string { return net.JoinHostPort(c.Hostname, c.Port) }

// ConnectionInfoGetter finds the kubelet of a node.
type ConnectionInfoGetter interface {
	GetConnectionInfo(ctx context.Context, nodeName types.NodeName) (*ConnectionInfo, error)
}

// NodeGetter reads nodes (the nodes storage is one).
type NodeGetter interface {
	Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error)
}

// NodeConnectionInfoGetter reads the connection from the Node object.
type NodeConnectionInfoGetter struct {
	nodes                          NodeGetter
	defaultPort                    int
	preferredAddressTypes          []corev1.NodeAddressType
	transport, insecureSkipVerifyT http.RoundTripper
}

// New returns the getter of kubelet connections of cfg, reading nodes.
func New(nodes NodeGetter, cfg Config) (*NodeConnectionInfoGetter, error) {
	secure, err := MakeTransport(cfg, false)
	if err != nil {
		return nil, err
	}
	insecure, err := MakeTransport(cfg, true)
	if err != nil {
		return nil, err
	}
	g := &NodeConnectionInfoGetter{nodes: nodes, defaultPort: cfg.Port, transport: secure, insecureSkipVerifyT: insecure}
	for _, t := range cfg.PreferredAddressTypes {
		g.preferredAddressTypes = append(g.preferredAddressTypes, corev1.NodeAddressType(t))
	}
	return g, nil
}

// GetConnectionInfo is the node's preferred address, its kubelet's port and
// the transports to it.
func (g *NodeConnectionInfoGetter) GetConnectionInfo(ctx context.Context, nodeName types.NodeName) (*ConnectionInfo, error) {
	// Nodes are cluster-scoped: the request's namespace (a pod's) is not theirs.
	obj, err := g.nodes.Get(genericapirequest.WithNamespace(ctx, ""), string(nodeName), &metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	node, ok := obj.(*corev1.Node)
	if !ok {
		return nil, apierrors.NewInternalError(fmt.Errorf("node storage returned %T", obj))
	}
	host, err := PreferredAddress(node, g.preferredAddressTypes)
	if err != nil {
		return nil, err
	}
	port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port <= 0 {
		port = g.defaultPort
	}
	return &ConnectionInfo{
		Scheme:                         "https",
		Hostname:                       host,
		Port:                           strconv.Itoa(port),
		Transport:                      g.transport,
		InsecureSkipTLSVerifyTransport: g.insecureSkipVerifyT,
		NodeFeatures:                   node.Status.DeclaredFeatures,
	}, nil
}

// PreferredAddress is the node's first address of the first type in
// types that it has; upstream's error text when none matches.
func PreferredAddress(node *corev1.Node, types []corev1.NodeAddressType) (string, error) {
	for _, t := range types {
		for _, a := range node.Status.Addresses {
			if a.Type == t {
				return a.Address, nil
			}
		}
	}
	return "", fmt.Errorf("no preferred addresses found; known addresses: %v", node.Status.Addresses)
}

// MakeTransport is a transport to kubelets with cfg's client certificate,
// re-read when the files change; insecureSkipTLSVerify (or no CA) does
// not verify the kubelet.
func MakeTransport(cfg Config, insecureSkipTLSVerify bool) (http.RoundTripper, error) {
	tc := &transport.Config{TLS: transport.TLSConfig{
		CAFile:   cfg.CAFile,
		CertFile: cfg.CertFile,
		KeyFile:  cfg.KeyFile,
		// Renewed certificates are picked up without a restart.
		ReloadTLSFiles: true,
	}}
	if insecureSkipTLSVerify || cfg.CAFile == "" {
		tc.TLS.Insecure = true
		tc.TLS.CAFile = ""
	}
	if cfg.HTTPTimeout > 0 {
		dialer := &net.Dialer{Timeout: cfg.HTTPTimeout, KeepAlive: 30 * time.Second}
		tc.DialHolder = &transport.DialHolder{Dial: dialer.DialContext}
	}
	rt, err := transport.New(tc)
	if err != nil {
		return nil, fmt.Errorf("kubelet client transport: %w", err)
	}
	return rt, nil
}

// ProxyTransport is the transport of pods/proxy, services/proxy and
// nodes/proxy to ports other than the kubelet's, as upstream's: backends
// are reached by IP, so their certificates are not verified.
func ProxyTransport() *http.Transport {
	return utilnet.SetTransportDefaults(&http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as upstream: pods are dialled by IP
	})
}
