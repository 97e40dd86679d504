// Package proxy forwards API requests to kubelets, pods and service
// endpoints: plain requests through a reverse proxy, upgraded connections
// (SPDY, WebSocket) byte for byte, and WebSocket clients of exec, attach
// and portforward translated to the SPDY that kubelets speak. It behaves
// as upstream's UpgradeAwareHandler, StreamTranslatorHandler and
// TunnelingHandler (k8s.io/apimachinery/pkg/util/proxy and
// k8s.io/apiserver/pkg/util/proxy) as a client sees them; those packages
// are not imported because they need a module (github.com/mxk/go-flowrate,
// for bandwidth limits skiff does not offer) outside go.sum.
package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/klog/v2"
	"k8s.io/streaming/pkg/httpstream"
)

// Handler proxies requests to Location.
type Handler struct {
	// Location is the backend: scheme, host and the path requests go to;
	// its query replaces the request's for upgrades (exec's command...),
	// the request's own query is kept otherwise.
	Location *url.URL
	// Transport reaches the backend; its TLS config and dialer also serve
	// upgraded connections.
	Transport http.RoundTripper
	// Rewrite wraps Transport so responses link back through the API
	// (Location headers, X-Forwarded-* headers) and backend errors are
	// 503s, as upstream's proxy subresources.
	Rewrite bool
	// UpgradeRequired refuses plain requests (exec, attach, portforward).
	UpgradeRequired bool
	// Responder writes errors as API Statuses.
	Responder rest.Responder
}

// NewHandler returns a Handler; a location without scheme is http.
func NewHandler(location *url.URL, transport http.RoundTripper, rewrite, upgradeRequired bool, responder rest.Responder) *Handler {
	loc := *location
	if loc.Scheme == "" {
		loc.Scheme = "http"
	}
	return &Handler{Location: &loc, Transport: transport, Rewrite: rewrite, UpgradeRequired: upgradeRequired, Responder: responder}
}

// ServeHTTP forwards req.
func (h *Handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if httpstream.IsUpgradeRequest(req) {
		h.upgrade(w, req)
		return
	}
	if h.UpgradeRequired {
		h.Responder.Error(apierrors.NewBadRequest("Upgrade request required"))
		return
	}
	loc := *h.Location
	loc.RawQuery = req.URL.RawQuery
	if !strings.HasSuffix(loc.Path, "/") && strings.HasSuffix(req.URL.Path, "/") {
		loc.Path += "/"
	}
	// A proxy's root is a directory: relative links of its pages resolve
	// below it (upstream's answer to issue 4958).
	if loc.Path == "" && (req.Method == http.MethodGet || req.Method == http.MethodHead) {
		target := req.URL.Path + "/"
		if req.URL.RawQuery != "" {
			target += "?" + req.URL.RawQuery
		}
		w.Header().Set("Location", target)
		w.WriteHeader(http.StatusMovedPermanently)
		return
	}
	transport := h.Transport
	if transport == nil {
		transport = http.DefaultTransport
	}
	if h.Rewrite {
		transport = newRewritingTransport(req.URL, h.Location, transport)
	}
	backend := &url.URL{Scheme: loc.Scheme, Host: loc.Host}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = &url.URL{Scheme: backend.Scheme, Host: backend.Host, Path: loc.Path, RawPath: loc.RawPath, RawQuery: loc.RawQuery}
			// Keep the client's Host header, as upstream's proxy does.
			pr.Out.Host = pr.In.Host
			// The client's address appended, as httputil's Director does.
			forwardedFor := clientIP(pr.In)
			if prior := pr.In.Header["X-Forwarded-For"]; len(prior) > 0 {
				forwardedFor = strings.Join(prior, ", ") + ", " + forwardedFor
			}
			pr.Out.Header.Set("X-Forwarded-For", forwardedFor)
		},
		Transport: transport,
		// Streamed bodies reach the client within upstream's 200 ms.
		FlushInterval: 200 * time.Millisecond,
		ErrorHandler: func(_ http.ResponseWriter, _ *http.Request, err error) {
			h.Responder.Error(err)
		},
	}
	rp.ServeHTTP(w, req)
}

func clientIP(req *http.Request) string {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	return host
}

// upgrade dials the backend, sends the upgrade request and, once the
// backend switched protocols, copies bytes both ways until one ends.
func (h *Handler) upgrade(w http.ResponseWriter, req *http.Request) {
	out := utilnet.CloneRequest(req)
	out.URL = h.Location
	utilnet.AppendForwardedForHeader(out)
	backend, resp, rawResponse, err := dialUpgrade(req.Context(), out, h.Transport)
	if err != nil {
		klog.V(4).InfoS("Proxy upgrade failed", "location", h.Location.Redacted(), "err", err)
		h.Responder.Error(err)
		return
	}
	defer backend.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		if resp.StatusCode < 400 {
			h.Responder.Error(fmt.Errorf("invalid upgrade response: status code %d", resp.StatusCode))
			return
		}
		// The backend's refusal (a 403, a 400 naming a missing container)
		// is the client's answer.
		writeResponse(w, resp)
		return
	}
	client, clientBuf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		h.Responder.Error(fmt.Errorf("error hijacking connection: %w", err))
		return
	}
	defer client.Close()
	if _, err := client.Write(rawResponse); err != nil {
		return
	}
	splice(client, clientBuf.Reader, backend.conn, backend.reader)
}

// writeResponse copies a backend's non-upgrade answer to w.
func writeResponse(w http.ResponseWriter, resp *http.Response) {
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, 1<<20))
}

// splice copies client→backend and backend→client until either side ends,
// then closes both.
func splice(client net.Conn, clientReader io.Reader, backend net.Conn, backendReader io.Reader) {
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			client.Close()
			backend.Close()
		})
	}
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(backend, clientReader)
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(client, backendReader)
		done <- struct{}{}
	}()
	<-done
	closeBoth()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}
