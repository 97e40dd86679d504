// Package server is the kubelet's HTTPS API on :10250, as upstream's:
// /healthz, /pods, /spec, /stats/summary, /metrics, /metrics/resource,
// /containerLogs, /exec, /attach, /portForward and /run, every request
// authenticated (client certificate or TokenReview) and authorized
// (SubjectAccessReview) with upstream's attributes. Exec, attach and
// port-forward go to the runtime's CRI streaming server through an
// upgrade-aware proxy (SPDY, and WebSocket v5.channel.k8s.io translated
// to SPDY).
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apiserver/pkg/server/healthz"
	compbasemetrics "k8s.io/component-base/metrics"
	internalapi "k8s.io/cri-api/pkg/apis"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/kubelet/server/stats"
)

// DefaultPort is the kubelet's --port.
const DefaultPort = 10250

// PodSource is the kubelet's pods: the pods bound to this node, each
// with the kubelet's latest status (the status manager's, else the
// API's), as upstream's pod manager + status manager.
type PodSource interface {
	Pods() []*corev1.Pod
}

// Runtime is the node's CRI runtime.
type Runtime interface {
	RuntimeService() internalapi.RuntimeService
}

// Config is what the server serves and how.
type Config struct {
	NodeName string
	// Address to listen on, e.g. ":10250" or "127.0.0.1:0".
	Address string
	// TLSCertFile and TLSKeyFile are the serving certificate (re-read
	// when they change, so a rotated certificate is picked up).
	TLSCertFile, TLSKeyFile string
	// CurrentCertificate, if set, is the certificate to serve (a
	// kubelet-serving one from the certificate manager); while it returns
	// nil, TLSCertFile's is served.
	CurrentCertificate func() *tls.Certificate
	// Auth authenticates and authorizes every request (see WebhookAuth);
	// required.
	Auth Auth
	Pods PodSource
	// Runtime: nil serves no exec/attach/portForward/run/containerLogs
	// and no pod stats.
	Runtime Runtime
	// Stats serves /stats/summary and /metrics/resource (stats.New, and its
	// Run for CPU rates); nil: /stats/summary answers 503 and
	// /metrics/resource resource_scrape_error 1.
	Stats *stats.Provider
	// SyncLoopHealthy is /healthz/syncloop's check; nil: always healthy.
	SyncLoopHealthy func(*http.Request) error
	// HealthChecks are more /healthz checks.
	HealthChecks []healthz.HealthChecker
	// Machine is /spec; nil: stats.Machine.
	Machine func() (*stats.MachineInfo, error)
}

// Server is the kubelet's API.
type Server struct {
	cfg      Config
	handler  http.Handler
	registry compbasemetrics.KubeRegistry
	httpSrv  *http.Server
	listener net.Listener
}

// New builds the server; Run serves it.
func New(cfg Config) (*Server, error) {
	if cfg.Auth == nil {
		return nil, errors.New("kubelet server: no authenticator/authorizer")
	}
	if cfg.Pods == nil {
		return nil, errors.New("kubelet server: no pod source")
	}
	if cfg.Machine == nil {
		cfg.Machine = stats.Machine
	}
	s := &Server{cfg: cfg}
	s.registry = compbasemetrics.NewKubeRegistry()
	s.registry.CustomMustRegister(&podMetrics{s: s})
	s.handler = withAuth(cfg.NodeName, cfg.Auth, s.routes())
	return s, nil
}

// Handler is the authenticated, authorized API (for tests and for
// serving on a listener of the caller's).
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	checks := []healthz.HealthChecker{
		healthz.PingHealthz,
		healthz.LogHealthz,
		healthz.NamedCheck("syncloop", func(r *http.Request) error {
			if s.cfg.SyncLoopHealthy == nil {
				return nil
			}
			return s.cfg.SyncLoopHealthy(r)
		}),
	}
	healthz.InstallHandler(mux, append(checks, s.cfg.HealthChecks...)...)

	mux.HandleFunc("/pods", getOnly(s.getPods))
	mux.HandleFunc("/pods/", getOnly(s.getPods))
	mux.HandleFunc("/spec", getOnly(s.getSpec))
	mux.HandleFunc("/spec/", getOnly(s.getSpec))
	mux.HandleFunc("GET /stats/summary", s.getSummary)
	mux.HandleFunc("POST /stats/summary", s.getSummary)

	mux.Handle("/metrics", s.metricsHandler())
	mux.Handle("/metrics/resource", s.resourceMetricsHandler())

	mux.HandleFunc("/containerLogs/{podNamespace}/{podID}/{containerName}", getOnly(s.getContainerLogs))

	for _, m := range []string{http.MethodGet, http.MethodPost} {
		mux.HandleFunc(m+" /exec/{podNamespace}/{podID}/{containerName}", s.getExec)
		mux.HandleFunc(m+" /exec/{podNamespace}/{podID}/{uid}/{containerName}", s.getExec)
		mux.HandleFunc(m+" /attach/{podNamespace}/{podID}/{containerName}", s.getAttach)
		mux.HandleFunc(m+" /attach/{podNamespace}/{podID}/{uid}/{containerName}", s.getAttach)
		// Upstream's path is /portForward; /portforward as well for
		// clients that lower-case it.
		for _, pf := range []string{"/portForward", "/portforward"} {
			mux.HandleFunc(m+" "+pf+"/{podNamespace}/{podID}", s.getPortForward)
			mux.HandleFunc(m+" "+pf+"/{podNamespace}/{podID}/{uid}", s.getPortForward)
		}
	}
	mux.HandleFunc("POST /run/{podNamespace}/{podID}/{containerName}", s.getRun)
	mux.HandleFunc("POST /run/{podNamespace}/{podID}/{uid}/{containerName}", s.getRun)
	return mux
}

// getOnly answers other methods with 405 as upstream's GET-only web
// services.
func getOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed")
			return
		}
		h(w, r)
	}
}

// Listen opens the TLS listener (so the caller knows the address before
// Run, e.g. with port 0).
func (s *Server) Listen() (net.Addr, error) {
	if s.listener != nil {
		return s.listener.Addr(), nil
	}
	certs, err := newCertReloader(s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
	if err != nil {
		return nil, err
	}
	tlsCfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: preferCurrent(s.cfg.CurrentCertificate, certs.GetCertificate),
		// The authenticator verifies the chain against the client CA
		// bundle; TLS only asks for a certificate (upstream's setting).
		ClientAuth: tls.RequestClientCert,
		NextProtos: []string{"h2", "http/1.1"},
	}
	l, err := net.Listen("tcp", s.cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("kubelet server: listening on %s: %w", s.cfg.Address, err)
	}
	s.listener = tls.NewListener(l, tlsCfg)
	s.httpSrv = &http.Server{
		Handler:           s.handler,
		IdleTimeout:       90 * time.Second,
		ReadHeaderTimeout: 30 * time.Second,
		// Upstream's 4 hours: logs -f and exec are long.
		ReadTimeout:    4 * time.Hour,
		WriteTimeout:   4 * time.Hour,
		MaxHeaderBytes: 1 << 20,
		ErrorLog:       nil,
	}
	return s.listener.Addr(), nil
}

// Run serves until ctx ends, then shuts down: no new connections, open
// requests get up to 5 s (hijacked streams are closed with their
// connections by the runtime side).
func (s *Server) Run(ctx context.Context) error {
	addr, err := s.Listen()
	if err != nil {
		return err
	}
	klog.InfoS("Starting to listen", "address", addr.String())
	done := make(chan error, 1)
	go func() { done <- s.httpSrv.Serve(s.listener) }()
	select {
	case err := <-done:
		return fmt.Errorf("kubelet server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.httpSrv.Shutdown(shutdownCtx); err != nil {
		_ = s.httpSrv.Close()
	}
	<-done
	klog.InfoS("Kubelet server stopped", "address", addr.String())
	return nil
}
