package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// upgradeProxy hands an upgrade request (SPDY or WebSocket) to the
// runtime's streaming server at location and, once that answers 101,
// copies bytes both ways until either side closes: what upstream's
// UpgradeAwareHandler does for the kubelet (written here: that package
// needs a module outside go.sum). A non-upgrade answer (an error) goes
// back to the client as it is.
type upgradeProxy struct {
	location *url.URL
}

func (p upgradeProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") == "" {
		writeError(w, http.StatusBadRequest, "Upgrade request required")
		return
	}
	backend, err := dialLocation(r.Context(), p.location)
	if err != nil {
		klog.ErrorS(err, "Error dialing the runtime's streaming server", "location", p.location.Redacted())
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	defer backend.Close()

	out := r.Clone(context.Background())
	out.URL = &url.URL{Scheme: p.location.Scheme, Host: p.location.Host, Path: p.location.Path, RawQuery: p.location.RawQuery}
	if out.URL.RawQuery == "" {
		out.URL.RawQuery = r.URL.RawQuery
	}
	out.Host = p.location.Host
	out.RequestURI = ""
	// The client's credentials are for the kubelet, not the runtime.
	out.Header.Del("Authorization")
	if err := out.Write(backend); err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("writing the request to the runtime's streaming server: %v", err))
		return
	}
	backendReader := bufio.NewReader(backend)
	resp, err := http.ReadResponse(backendReader, out)
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("reading the runtime's streaming server's answer: %v", err))
		return
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		return
	}
	client, clientBuf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("hijacking the connection: %v", err))
		return
	}
	defer client.Close()
	// The deadlines the server set for a normal request do not apply to
	// a stream.
	_ = client.SetDeadline(time.Time{})
	if err := resp.Write(client); err != nil {
		klog.V(2).InfoS("Writing the upgrade answer failed", "err", err)
		return
	}
	splice(client, clientBuf.Reader, backend, backendReader)
}

// splice copies both ways; when one direction ends, its write side is
// half-closed so the other end sees EOF, and the copy ends when both have.
func splice(client net.Conn, clientReader io.Reader, backend net.Conn, backendReader io.Reader) {
	var wg sync.WaitGroup
	copyHalf := func(dst net.Conn, src io.Reader) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			_ = dst.Close()
		}
	}
	wg.Add(2)
	go copyHalf(backend, clientReader)
	go copyHalf(client, backendReader)
	wg.Wait()
}

func dialLocation(ctx context.Context, u *url.URL) (net.Conn, error) {
	host := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			host = net.JoinHostPort(u.Hostname(), "443")
		} else {
			host = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	d := &net.Dialer{Timeout: 30 * time.Second}
	switch u.Scheme {
	case "http", "":
		return d.DialContext(ctx, "tcp", host)
	case "https":
		return (&tls.Dialer{NetDialer: d, Config: &tls.Config{ServerName: u.Hostname(), NextProtos: []string{"http/1.1"}}}).DialContext(ctx, "tcp", host)
	default:
		return nil, fmt.Errorf("the runtime's streaming URL has scheme %q", u.Scheme)
	}
}
