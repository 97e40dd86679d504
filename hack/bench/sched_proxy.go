package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/cert"
)

// stubbedKinds are the resources upstream kube-scheduler v1.37.2 lists and
// watches that skiff does not serve yet: DynamicResourceAllocation is GA
// and locked on (its informers start whatever the profile), VolumeBinding
// watches CSIStorageCapacities. kube-scheduler waits for every informer to
// sync before it schedules anything, so the proxy answers these with an
// empty list and a watch that stays quiet.
var stubbedKinds = map[string]string{
	"/apis/resource.k8s.io/v1/resourceslices":         "ResourceSlice",
	"/apis/resource.k8s.io/v1/deviceclasses":          "DeviceClass",
	"/apis/resource.k8s.io/v1/resourceclaims":         "ResourceClaim",
	"/apis/resource.k8s.io/v1/devicetaintrules":       "DeviceTaintRule",
	"/apis/storage.k8s.io/v1/csistoragecapacities":    "CSIStorageCapacity",
	"/apis/resource.k8s.io/v1/resourceclaimtemplates": "ResourceClaimTemplate",
}

// schedProxy is an HTTPS reverse proxy in front of the skiff server, which
// both schedulers talk to (so both pay its hop): every request goes on to
// the server with the admin credentials, but for the stubbed resources.
type schedProxy struct {
	srv     *http.Server
	url     string
	stubbed atomic.Int64 // requests answered by the stub
}

func startSchedProxy(cfg *rest.Config, logPath string) (*schedProxy, error) {
	backend, err := url.Parse(cfg.Host)
	if err != nil {
		return nil, err
	}
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, err
	}
	rp := httputil.NewSingleHostReverseProxy(backend)
	rp.Transport = transport
	rp.FlushInterval = -1 // watches stream
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	rp.ErrorLog = log.New(logFile, "", log.LstdFlags|log.Lmicroseconds)
	certPEM, keyPEM, err := cert.GenerateSelfSignedCertKey("127.0.0.1", []net.IP{net.ParseIP("127.0.0.1")}, nil)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &schedProxy{url: "https://" + l.Addr().String()}
	p.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if kind, ok := stubbedKinds[r.URL.Path]; ok && r.Method == http.MethodGet {
				p.stubbed.Add(1)
				stub(w, r, kind)
				return
			}
			rp.ServeHTTP(w, r)
		}),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pair}, NextProtos: []string{"h2", "http/1.1"}},
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          rp.ErrorLog,
	}
	go func() { _ = p.srv.ServeTLS(l, "", "") }()
	return p, nil
}

func (p *schedProxy) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
	p.srv.Close()
}

// kubeconfig writes a kubeconfig for the proxy (no credentials: the proxy
// adds the server's admin ones).
func (p *schedProxy) kubeconfig(path string) error {
	return os.WriteFile(path, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: bench
  cluster:
    server: %s
    insecure-skip-tls-verify: true
contexts:
- name: bench
  context:
    cluster: bench
    user: bench
users:
- name: bench
  user: {}
current-context: bench
`, p.url)), 0o600)
}

// stub answers a list with no items and a watch with, when asked for the
// initial events, the bookmark that ends them, then nothing until the
// client goes or its timeoutSeconds pass.
func stub(w http.ResponseWriter, r *http.Request, kind string) {
	q := r.URL.Query()
	gv := strings.Join(strings.Split(strings.TrimPrefix(r.URL.Path, "/apis/"), "/")[:2], "/")
	w.Header().Set("Content-Type", "application/json")
	const rv = "1"
	if q.Get("watch") != "true" && q.Get("watch") != "1" {
		_ = json.NewEncoder(w).Encode(map[string]any{"kind": kind + "List", "apiVersion": gv,
			"metadata": map[string]any{"resourceVersion": rv}, "items": []any{}})
		return
	}
	w.WriteHeader(http.StatusOK)
	if q.Get("sendInitialEvents") == "true" {
		_ = json.NewEncoder(w).Encode(map[string]any{"type": "BOOKMARK", "object": map[string]any{
			"kind": kind, "apiVersion": gv, "metadata": map[string]any{"resourceVersion": rv,
				"annotations": map[string]string{"k8s.io/initial-events-end": "true"}}}})
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	timeout := 30 * time.Minute
	if s, err := strconv.Atoi(q.Get("timeoutSeconds")); err == nil && s > 0 {
		timeout = time.Duration(s) * time.Second
	}
	select {
	case <-r.Context().Done():
	case <-time.After(timeout):
	}
}
