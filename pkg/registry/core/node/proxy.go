// Package node holds the node subresources beyond the generic store:
// nodes/proxy, to the node's kubelet (or another port of the node).
package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/skiff-dev/skiff/pkg/kubeletclient"
	"github.com/skiff-dev/skiff/pkg/registry/core/proxy"
)

var proxyMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

// ProxyREST serves nodes/proxy and nodes/proxy/{path}.
type ProxyREST struct {
	Kubelet kubeletclient.ConnectionInfoGetter
	// Transport reaches ports of the node other than the kubelet's.
	Transport http.RoundTripper
}

var _ rest.Connecter = &ProxyREST{}

// New is NodeProxyOptions.
func (r *ProxyREST) New() runtime.Object { return &corev1.NodeProxyOptions{} }

// Destroy does nothing: the node storage owns the store.
func (r *ProxyREST) Destroy() {}

// ConnectMethods are every method a backend may serve.
func (r *ProxyREST) ConnectMethods() []string { return proxyMethods }

// NewConnectOptions: the rest of the URL is the path.
func (r *ProxyREST) NewConnectOptions() (runtime.Object, bool, string) {
	return &corev1.NodeProxyOptions{}, true, "path"
}

// Connect proxies to the node; id is name, name:port or scheme:name:port.
func (r *ProxyREST) Connect(ctx context.Context, id string, opts runtime.Object, responder rest.Responder) (http.Handler, error) {
	proxyOpts, ok := opts.(*corev1.NodeProxyOptions)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid options object: %T", opts))
	}
	location, transport, err := ResourceLocation(ctx, r.Kubelet, r.Transport, id)
	if err != nil {
		return nil, err
	}
	location.Path = utilnet.JoinPreservingTrailingSlash(location.Path, proxyOpts.Path)
	return proxy.NewHandler(location, transport, true, false, responder), nil
}

// ResourceLocation is the node's kubelet (no port, or the kubelet's) with
// the kubelet transport, or the port asked for with proxyTransport. The
// node's address must resolve to global unicast IPs only.
func ResourceLocation(ctx context.Context, kubelet kubeletclient.ConnectionInfoGetter, proxyTransport http.RoundTripper, id string) (*url.URL, http.RoundTripper, error) {
	scheme, name, port, valid := utilnet.SplitSchemeNamePort(id)
	if !valid {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("invalid node request %q", id))
	}
	info, err := kubelet.GetConnectionInfo(ctx, types.NodeName(name))
	if err != nil {
		return nil, nil, err
	}
	if err := proxyableHostname(ctx, info.Hostname); err != nil {
		return nil, nil, apierrors.NewBadRequest(err.Error())
	}
	if port == "" || port == info.Port {
		return &url.URL{Scheme: info.Scheme, Host: info.HostPort()}, info.Transport, nil
	}
	return &url.URL{Scheme: scheme, Host: net.JoinHostPort(info.Hostname, port)}, proxyTransport, nil
}

func proxyableHostname(ctx context.Context, hostname string) error {
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, hostname)
	if err != nil {
		return err
	}
	if len(addrs) == 0 {
		return errors.New("no addresses for hostname")
	}
	for _, a := range addrs {
		if !a.IP.IsGlobalUnicast() {
			return errors.New("address not allowed")
		}
	}
	return nil
}
