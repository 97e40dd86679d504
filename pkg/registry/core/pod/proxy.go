package pod

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/skiff-dev/skiff/pkg/registry/core/proxy"
)

// proxyMethods are the methods pods/proxy, nodes/proxy and services/proxy
// forward.
var proxyMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

// ProxyREST serves pods/proxy and pods/proxy/{path}: HTTP(S) to the pod's
// IP.
type ProxyREST struct {
	Pods      rest.Getter
	Transport http.RoundTripper
}

var _ rest.Connecter = &ProxyREST{}

// New is PodProxyOptions.
func (r *ProxyREST) New() runtime.Object { return &corev1.PodProxyOptions{} }

// Destroy does nothing: the pod storage owns the store.
func (r *ProxyREST) Destroy() {}

// ConnectMethods are every method a backend may serve.
func (r *ProxyREST) ConnectMethods() []string { return proxyMethods }

// NewConnectOptions: the rest of the URL is the path.
func (r *ProxyREST) NewConnectOptions() (runtime.Object, bool, string) {
	return &corev1.PodProxyOptions{}, true, "path"
}

// Connect proxies to the pod; id is name, name:port or scheme:name:port.
func (r *ProxyREST) Connect(ctx context.Context, id string, opts runtime.Object, responder rest.Responder) (http.Handler, error) {
	proxyOpts, ok := opts.(*corev1.PodProxyOptions)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid options object: %T", opts))
	}
	location, err := ResourceLocation(ctx, r.Pods, id)
	if err != nil {
		return nil, err
	}
	location.Path = utilnet.JoinPreservingTrailingSlash(location.Path, proxyOpts.Path)
	return proxy.NewHandler(location, r.Transport, true, false, responder), nil
}

// ResourceLocation is the URL of the pod named by id (name, name:port or
// scheme:name:port): its first IP, and the port given or else the first
// container port. Only global unicast IPs are proxied to (never the API
// server's own loopback or link-local neighbours).
func ResourceLocation(ctx context.Context, pods rest.Getter, id string) (*url.URL, error) {
	scheme, name, port, valid := utilnet.SplitSchemeNamePort(id)
	if !valid {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid pod request %q", id))
	}
	pod, err := getPod(ctx, pods, name)
	if err != nil {
		return nil, err
	}
	if port == "" {
		for _, c := range pod.Spec.Containers {
			if len(c.Ports) > 0 {
				port = strconv.Itoa(int(c.Ports[0].ContainerPort))
				break
			}
		}
	}
	var podIP string
	if len(pod.Status.PodIPs) > 0 {
		podIP = pod.Status.PodIPs[0].IP
	}
	if ip := net.ParseIP(podIP); ip == nil || !ip.IsGlobalUnicast() {
		return nil, apierrors.NewBadRequest("address not allowed")
	}
	loc := &url.URL{Scheme: scheme, Host: podIP}
	if port != "" {
		loc.Host = net.JoinHostPort(podIP, port)
	} else if ip := net.ParseIP(podIP); ip.To4() == nil {
		loc.Host = "[" + podIP + "]"
	}
	return loc, nil
}
