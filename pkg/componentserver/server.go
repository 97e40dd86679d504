// Package componentserver serves what every component besides the API
// server serves, as kube-controller-manager and kube-scheduler do:
// /healthz, /livez and /readyz open to all, /metrics authenticated and
// authorized through the API server (TokenReview, SubjectAccessReview), over
// HTTPS with a self-signed certificate unless one is given.
package componentserver

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericfilters "k8s.io/apiserver/pkg/server/filters"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/apiserver/pkg/server/mux"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
)

// Options are the serving flags (upstream's names: --secure-port,
// --bind-address, --tls-cert-file, --authentication-kubeconfig, ...).
type Options struct {
	Secure         *genericoptions.SecureServingOptions
	Authentication *genericoptions.DelegatingAuthenticationOptions
	Authorization  *genericoptions.DelegatingAuthorizationOptions
}

// NewOptions serves on port with upstream's defaults: /healthz, /livez,
// /readyz open, system:masters allowed everything, every other request asked
// of the API server; the self-signed certificate (named pairName) stays in
// memory.
func NewOptions(port int, pairName string) *Options {
	o := &Options{
		Secure:         genericoptions.NewSecureServingOptions(),
		Authentication: genericoptions.NewDelegatingAuthenticationOptions(),
		Authorization:  genericoptions.NewDelegatingAuthorizationOptions(),
	}
	o.Secure.BindPort = port
	o.Secure.ServerCert.PairName = pairName
	o.Secure.ServerCert.CertDirectory = ""
	return o
}

// AddFlags registers the flags on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	o.Secure.AddFlags(fs)
	o.Authentication.AddFlags(fs)
	o.Authorization.AddFlags(fs)
}

// Validate reports every invalid option.
func (o *Options) Validate() []error {
	errs := o.Authentication.Validate()
	errs = append(errs, o.Authorization.Validate()...)
	return append(errs, o.Secure.Validate()...)
}

// Serve serves until ctx ends; the returned channel is closed once the
// server has stopped. Without their own kubeconfigs, the reviews go to the
// API server of kubeconfig. /metrics gathers the component-base registry
// and extra.
func (o *Options) Serve(ctx context.Context, name, kubeconfig string, checks []healthz.HealthChecker, extra ...prometheus.Gatherer) (<-chan struct{}, error) {
	if o.Authentication.RemoteKubeConfigFile == "" {
		o.Authentication.RemoteKubeConfigFile = kubeconfig
	}
	if o.Authorization.RemoteKubeConfigFile == "" {
		o.Authorization.RemoteKubeConfigFile = kubeconfig
	}
	if err := o.Secure.MaybeDefaultWithSelfSignedCerts("localhost", nil, []net.IP{net.ParseIP("127.0.0.1")}); err != nil {
		return nil, fmt.Errorf("self-signed serving certificate: %w", err)
	}
	var info *genericapiserver.SecureServingInfo
	if err := o.Secure.ApplyTo(&info); err != nil {
		return nil, err
	}
	if info == nil {
		// --secure-port 0: nothing is served, as upstream's components.
		klog.InfoS("Not serving health and metrics: --secure-port is 0", "component", name)
		stopped := make(chan struct{})
		go func() { <-ctx.Done(); close(stopped) }()
		return stopped, nil
	}
	var authn genericapiserver.AuthenticationInfo
	if err := o.Authentication.ApplyTo(&authn, info, nil); err != nil {
		return nil, fmt.Errorf("delegated authentication: %w", err)
	}
	var authz genericapiserver.AuthorizationInfo
	if err := o.Authorization.ApplyTo(&authz); err != nil {
		return nil, fmt.Errorf("delegated authorization: %w", err)
	}
	m := mux.NewPathRecorderMux(name)
	if len(checks) == 0 {
		checks = []healthz.HealthChecker{healthz.PingHealthz}
	}
	healthz.InstallHandler(m, checks...)
	healthz.InstallLivezHandler(m, healthz.PingHealthz)
	healthz.InstallReadyzHandler(m, healthz.PingHealthz)
	gatherers := append(prometheus.Gatherers{legacyregistry.DefaultGatherer}, extra...)
	m.Handle("/metrics", promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	stopped, _, err := info.Serve(withDelegatedAuth(m, authn, authz), 10*time.Second, ctx.Done())
	return stopped, err
}

// withDelegatedAuth is kube-controller-manager's handler chain: every
// request is authenticated (anonymous when without credentials) and
// authorized, a denial answered 401 or 403 with a Status.
func withDelegatedAuth(handler http.Handler, authn genericapiserver.AuthenticationInfo, authz genericapiserver.AuthorizationInfo) http.Handler {
	resolver := &apirequest.RequestInfoFactory{}
	handler = genericapifilters.WithAuthorization(handler, authz.Authorizer, scheme.Codecs)
	handler = genericapifilters.WithAuthentication(handler, authn.Authenticator, genericapifilters.Unauthorized(scheme.Codecs), nil, nil)
	handler = genericapifilters.WithRequestInfo(handler, resolver)
	handler = genericapifilters.WithCacheControl(handler)
	return genericfilters.WithPanicRecovery(handler, resolver)
}
