package service

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/registry/core/proxy"
)

var proxyMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

// EndpointSliceGetter lists the EndpointSlices of a service.
type EndpointSliceGetter interface {
	GetEndpointSlices(namespace, service string) ([]*discoveryv1.EndpointSlice, error)
}

// EndpointSlicesFromLister finds a service's slices by their
// kubernetes.io/service-name label.
func EndpointSlicesFromLister(lister discoverylisters.EndpointSliceLister) EndpointSliceGetter {
	return sliceLister{lister}
}

type sliceLister struct {
	lister discoverylisters.EndpointSliceLister
}

func (l sliceLister) GetEndpointSlices(namespace, service string) ([]*discoveryv1.EndpointSlice, error) {
	return l.lister.EndpointSlices(namespace).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: service}))
}

// ProxyREST serves services/proxy and services/proxy/{path}: to a ready
// endpoint of the service that is a pod of its namespace.
type ProxyREST struct {
	Services       rest.Getter
	Pods           rest.Getter
	EndpointSlices EndpointSliceGetter
	Transport      http.RoundTripper
}

var _ rest.Connecter = &ProxyREST{}

// New is ServiceProxyOptions.
func (r *ProxyREST) New() runtime.Object { return &corev1.ServiceProxyOptions{} }

// Destroy does nothing: the service storage owns the store.
func (r *ProxyREST) Destroy() {}

// ConnectMethods are every method a backend may serve.
func (r *ProxyREST) ConnectMethods() []string { return proxyMethods }

// NewConnectOptions: the rest of the URL is the path.
func (r *ProxyREST) NewConnectOptions() (runtime.Object, bool, string) {
	return &corev1.ServiceProxyOptions{}, true, "path"
}

// Connect proxies to an endpoint; id is name, name:port or
// scheme:name:port, the port a service port's name or number.
func (r *ProxyREST) Connect(ctx context.Context, id string, opts runtime.Object, responder rest.Responder) (http.Handler, error) {
	proxyOpts, ok := opts.(*corev1.ServiceProxyOptions)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid options object: %T", opts))
	}
	location, err := r.ResourceLocation(ctx, id)
	if err != nil {
		return nil, err
	}
	location.Path = utilnet.JoinPreservingTrailingSlash(location.Path, proxyOpts.Path)
	return proxy.NewHandler(location, r.Transport, true, false, responder), nil
}

// ResourceLocation picks a ready endpoint of the service port id names
// (upstream's REST.ResourceLocation).
func (r *ProxyREST) ResourceLocation(ctx context.Context, id string) (*url.URL, error) {
	scheme, name, portStr, valid := utilnet.SplitSchemeNamePort(id)
	if !valid {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid service request %q", id))
	}
	obj, err := r.Services.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return nil, apierrors.NewInternalError(fmt.Errorf("service storage returned %T", obj))
	}
	// A port number means the service port of that number, by its name.
	if num, err := strconv.ParseInt(portStr, 10, 64); err == nil {
		found := false
		for _, p := range svc.Spec.Ports {
			if int64(p.Port) == num {
				portStr, found = p.Name, true
				break
			}
		}
		if !found {
			return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("no service port %d found for service %q", num, name))
		}
	}
	namespace := genericapirequest.NamespaceValue(ctx)
	if namespace == "" {
		return nil, apierrors.NewBadRequest("missing required namespace")
	}
	if r.EndpointSlices == nil {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("no endpoints available for service %q", name))
	}
	slices, err := r.EndpointSlices.GetEndpointSlices(namespace, name)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	if len(slices) == 0 {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("no endpoints available for service %q", name))
	}
	family := corev1.IPv4Protocol
	if len(svc.Spec.IPFamilies) > 0 {
		family = svc.Spec.IPFamilies[0]
	}
	hostPort, err := randomEndpoint(name, slices, portStr, family, func(ep *discoveryv1.Endpoint) bool {
		if err := r.isPodEndpoint(ctx, namespace, ep); err != nil {
			klog.V(2).InfoS("Endpoint is not proxied to", "service", klog.KRef(namespace, name), "addresses", ep.Addresses, "reason", err)
			return false
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	return &url.URL{Scheme: scheme, Host: hostPort}, nil
}

// isPodEndpoint: only addresses of pods of the namespace are proxied to
// (not arbitrary IPs someone wrote into a slice).
func (r *ProxyREST) isPodEndpoint(ctx context.Context, namespace string, ep *discoveryv1.Endpoint) error {
	if ep.TargetRef == nil {
		return fmt.Errorf("endpoint has no target ref")
	}
	if ep.TargetRef.Namespace != namespace {
		return fmt.Errorf("endpoint namespace doesn't match context namespace")
	}
	obj, err := r.Pods.Get(ctx, ep.TargetRef.Name, &metav1.GetOptions{})
	if err != nil {
		return err
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return fmt.Errorf("pod storage returned %T", obj)
	}
	for _, ip := range pod.Status.PodIPs {
		if ip.IP == ep.Addresses[0] {
			return nil
		}
	}
	return fmt.Errorf("pod ip(s) doesn't match endpoint ip: %v vs %s", pod.Status.PodIPs, ep.Addresses[0])
}

// randomEndpoint is a random ready endpoint (host:port) serving the named
// port, looking at the slices of family first.
func randomEndpoint(svcName string, slices []*discoveryv1.EndpointSlice, portName string, family corev1.IPFamily, valid func(*discoveryv1.Endpoint) bool) (string, error) {
	order := rand.Perm(len(slices))
	idx := make([]int, len(slices))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool {
		sa, sb := slices[idx[a]], slices[idx[b]]
		if sa.AddressType != sb.AddressType {
			return sa.AddressType == discoveryv1.AddressType(family)
		}
		return order[idx[a]] < order[idx[b]]
	})
	for _, i := range idx {
		slice := slices[i]
		for _, p := range slice.Ports {
			if p.Name == nil || *p.Name != portName || p.Port == nil || len(slice.Endpoints) == 0 {
				continue
			}
			offset := rand.IntN(len(slice.Endpoints))
			for n := range slice.Endpoints {
				ep := &slice.Endpoints[(n+offset)%len(slice.Endpoints)]
				if (ep.Conditions.Ready != nil && !*ep.Conditions.Ready) || len(ep.Addresses) == 0 {
					continue
				}
				if valid != nil && !valid(ep) {
					continue
				}
				return net.JoinHostPort(ep.Addresses[0], strconv.Itoa(int(*p.Port))), nil
			}
		}
	}
	return "", apierrors.NewServiceUnavailable(fmt.Sprintf("no endpoints available for service %q", svcName))
}
