package probe

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// hostPort splits a test server's URL.
func hostPort(t *testing.T, raw string) (string, int) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(u.Host)
	n, _ := strconv.Atoi(port)
	return host, n
}

func probeURL(t *testing.T, p *HTTP, action corev1.HTTPGetAction, c *corev1.Container, podIP string, timeout time.Duration) (Result, string) {
	t.Helper()
	req, err := NewHTTPRequest(&action, c, podIP)
	if err != nil {
		t.Fatalf("NewHTTPRequest: %v", err)
	}
	res, out, err := p.Probe(req, timeout)
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	return res, out
}

func TestHTTPStatusCodes(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "fine") })
	mux.HandleFunc("/no-content", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/bad", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, "secret body")
	})
	mux.HandleFunc("/notfound", http.NotFound)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	host, port := hostPort(t, srv.URL)
	p := NewHTTP()
	for _, tc := range []struct {
		path string
		want Result
		out  string
	}{
		{"/ok", Success, "fine"},
		{"/no-content", Success, ""},
		{"/bad", Failure, "HTTP probe failed with statuscode: 500"},
		{"/notfound", Failure, "HTTP probe failed with statuscode: 404"},
	} {
		res, out := probeURL(t, p, corev1.HTTPGetAction{Path: tc.path, Port: intstr.FromInt32(int32(port))}, &corev1.Container{}, host, time.Second)
		if res != tc.want || out != tc.out {
			t.Errorf("%s: got %s %q, want %s %q", tc.path, res, out, tc.want, tc.out)
		}
	}
}

func TestHTTPRequestHeadersAndHost(t *testing.T) {
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = r }))
	defer srv.Close()
	host, port := hostPort(t, srv.URL)
	p := NewHTTP()

	res, _ := probeURL(t, p, corev1.HTTPGetAction{Path: "/healthz?x=1", Port: intstr.FromInt32(int32(port))}, &corev1.Container{}, host, time.Second)
	if res != Success {
		t.Fatalf("got %s", res)
	}
	if ua := got.Header.Get("User-Agent"); ua != "kube-probe/1.37" {
		t.Errorf("User-Agent %q", ua)
	}
	if a := got.Header.Get("Accept"); a != "*/*" {
		t.Errorf("Accept %q", a)
	}
	if got.URL.Path != "/healthz" || got.URL.RawQuery != "x=1" {
		t.Errorf("URL %s", got.URL)
	}
	if e := got.Header.Get("Accept-Encoding"); e != "" {
		t.Errorf("Accept-Encoding %q sent", e)
	}

	action := corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(int32(port)), HTTPHeaders: []corev1.HTTPHeader{
		{Name: "Host", Value: "example.test"}, {Name: "User-Agent", Value: "mine"}, {Name: "Accept", Value: ""},
		{Name: "X-Custom", Value: "a"}, {Name: "X-Custom", Value: "b"},
	}}
	probeURL(t, p, action, &corev1.Container{}, host, time.Second)
	if got.Host != "example.test" {
		t.Errorf("Host %q, want the header's", got.Host)
	}
	if ua := got.Header.Get("User-Agent"); ua != "mine" {
		t.Errorf("User-Agent %q", ua)
	}
	if _, ok := got.Header["Accept"]; ok {
		t.Errorf("an empty Accept header is dropped, got %q", got.Header["Accept"])
	}
	if v := got.Header.Values("X-Custom"); strings.Join(v, ",") != "a,b" {
		t.Errorf("X-Custom %q", v)
	}
}

func TestHTTPPortByName(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	host, port := hostPort(t, srv.URL)
	c := &corev1.Container{Ports: []corev1.ContainerPort{{Name: "other", ContainerPort: 1}, {Name: "http", ContainerPort: int32(port)}}}
	if res, out := probeURL(t, NewHTTP(), corev1.HTTPGetAction{Port: intstr.FromString("http")}, c, host, time.Second); res != Success {
		t.Errorf("by name: %s %s", res, out)
	}
	if _, err := NewHTTPRequest(&corev1.HTTPGetAction{Port: intstr.FromString("missing")}, c, host); err == nil || err.Error() != `port "missing" not found` {
		t.Errorf("missing port name: %v", err)
	}
	if _, err := NewHTTPRequest(&corev1.HTTPGetAction{Port: intstr.FromInt32(70000)}, c, host); err == nil {
		t.Error("port 70000 accepted")
	}
}

func TestHTTPRedirects(t *testing.T) {
	var hits int
	mux := http.NewServeMux()
	mux.HandleFunc("/same", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/target", http.StatusFound) })
	mux.HandleFunc("/target", func(w http.ResponseWriter, _ *http.Request) { hits++; fmt.Fprint(w, "arrived") })
	mux.HandleFunc("/target-bad", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/same-bad", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/target-bad", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	_, port := hostPort(t, srv.URL)
	// The same server under another name: a redirect there is to another host.
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, fmt.Sprintf("http://localhost:%d/target", port), http.StatusFound)
	})
	p := NewHTTP()
	get := func(path string) (Result, string) {
		return probeURL(t, p, corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(int32(port))}, &corev1.Container{}, "127.0.0.1", time.Second)
	}

	if res, out := get("/same"); res != Success || out != "arrived" || hits != 1 {
		t.Errorf("same-host redirect: %s %q (target hit %d times)", res, out, hits)
	}
	if res, out := get("/same-bad"); res != Failure || out != "HTTP probe failed with statuscode: 503" {
		t.Errorf("same-host redirect to a failure: %s %q", res, out)
	}
	hits = 0
	res, out := get("/elsewhere")
	if res != Warning || !strings.HasPrefix(out, "Probe terminated redirects, Response body: ") || hits != 0 {
		t.Errorf("redirect to another host: %s %q (followed %d times)", res, out, hits)
	}
	if res, out := get("/loop"); res != Failure || !strings.Contains(out, "stopped after 10 redirects") {
		t.Errorf("redirect loop: %s %q", res, out)
	}
}

func TestHTTPBodyLimitAndTimeout(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, strings.Repeat("x", 50<<10)) })
	block := make(chan struct{})
	mux.HandleFunc("/slow", func(http.ResponseWriter, *http.Request) { <-block })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer close(block)
	host, port := hostPort(t, srv.URL)
	p := NewHTTP()

	res, out := probeURL(t, p, corev1.HTTPGetAction{Path: "/big", Port: intstr.FromInt32(int32(port))}, &corev1.Container{}, host, time.Second)
	if res != Success || len(out) != 10<<10 {
		t.Errorf("big body: %s, %d bytes kept, want 10 KiB", res, len(out))
	}
	begin := time.Now()
	res, out = probeURL(t, p, corev1.HTTPGetAction{Path: "/slow", Port: intstr.FromInt32(int32(port))}, &corev1.Container{}, host, 200*time.Millisecond)
	if res != Failure || !strings.Contains(out, "Client.Timeout exceeded") {
		t.Errorf("slow server: %s %q", res, out)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("timeout of 200ms took %v", d)
	}
}

func TestHTTPSWithoutVerification(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "tls") }))
	defer srv.Close()
	host, port := hostPort(t, srv.URL)
	res, out := probeURL(t, NewHTTP(), corev1.HTTPGetAction{Scheme: corev1.URISchemeHTTPS, Port: intstr.FromInt32(int32(port))}, &corev1.Container{}, host, time.Second)
	if res != Success || out != "tls" {
		t.Errorf("https: %s %q", res, out)
	}
	// Plain HTTP to the TLS port is a failure, not an error.
	res, _ = probeURL(t, NewHTTP(), corev1.HTTPGetAction{Port: intstr.FromInt32(int32(port))}, &corev1.Container{}, host, time.Second)
	if res != Failure {
		t.Errorf("http to an https port: %s", res)
	}
}

func TestHTTPConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	res, out := probeURL(t, NewHTTP(), corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(int32(port))}, &corev1.Container{}, "127.0.0.1", time.Second)
	if res != Failure || !strings.Contains(out, "connection refused") {
		t.Errorf("refused: %s %q", res, out)
	}
}
