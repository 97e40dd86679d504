package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// backendConn is an upgraded connection to a backend; reader holds what
// was read past the response head.
type backendConn struct {
	conn   net.Conn
	reader *bufio.Reader
}

func (b *backendConn) Close() error { return b.conn.Close() }

// dialUpgrade opens a connection to req.URL with transport's dialer and
// TLS config (the kubelet client certificate), writes req and reads the
// response head. rawHead are the head's bytes as the backend sent them.
func dialUpgrade(ctx context.Context, req *http.Request, transport http.RoundTripper) (*backendConn, *http.Response, []byte, error) {
	conn, err := dialURL(ctx, req.URL, transport)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("error dialing backend: %w", err)
	}
	// Bound the handshake: a backend that never answers must not hold
	// the request forever.
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, nil, nil, fmt.Errorf("error sending request: %w", err)
	}
	rec := &recordingReader{r: conn, on: true}
	br := bufio.NewReader(rec)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, nil, nil, fmt.Errorf("error reading the backend's response: %w", err)
	}
	rec.on = false
	head := rec.buf.Bytes()[:rec.buf.Len()-br.Buffered()]
	_ = conn.SetDeadline(time.Time{})
	return &backendConn{conn: conn, reader: br}, resp, head, nil
}

// recordingReader keeps what it reads while on.
type recordingReader struct {
	r   io.Reader
	buf bytes.Buffer
	on  bool
}

func (r *recordingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if r.on {
		r.buf.Write(p[:n])
	}
	return n, err
}

// dialURL connects to u's host (port by scheme when missing), over TLS for
// https, verifying the backend as transport would.
func dialURL(ctx context.Context, u *url.URL, transport http.RoundTripper) (net.Conn, error) {
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	dial, err := utilnet.DialerFor(transport)
	if err != nil || dial == nil {
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
		dial = d.DialContext
	}
	conn, err := dial(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "https" {
		return conn, nil
	}
	cfg, err := utilnet.TLSClientConfig(transport)
	if err != nil || cfg == nil {
		cfg = &tls.Config{}
	} else {
		cfg = cfg.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	// HTTP/1.1 only: an upgrade has no HTTP/2 form here.
	cfg.NextProtos = []string{"http/1.1"}
	tlsConn := tls.Client(conn, cfg)
	if err := tlsConn.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tlsConn, nil
}
