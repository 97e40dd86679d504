package pod_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
	"k8s.io/streaming/pkg/httpstream/wsstream"

	"github.com/skiff-dev/skiff/pkg/pki"
)

// fakeKubelet is a kubelet's HTTPS API as the API server sees it: a
// serving certificate of the cluster CA, client certificates required,
// /containerLogs echoing its request, /stats/summary, and SPDY /exec,
// /attach (remotecommand v4) and /portForward (echo) sessions.
type fakeKubelet struct {
	server *httptest.Server
	port   int

	mu       sync.Mutex
	requests []kubeletRequest
}

type kubeletRequest struct {
	Method, Path, RawQuery string
	// ClientCN is the CN of the client certificate the API server showed.
	ClientCN string
}

func startFakeKubelet(t *testing.T, ca *pki.CA, ip string) *fakeKubelet {
	t.Helper()
	serving, err := ca.EnsureServingCert(t.TempDir(), "kubelet", []string{ip})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(serving.CertFile, serving.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	k := &fakeKubelet{}
	k.server = httptest.NewUnstartedServer(http.HandlerFunc(k.serve))
	k.server.Listener.Close()
	if k.server.Listener, err = net.Listen("tcp", net.JoinHostPort(ip, "0")); err != nil {
		t.Fatal(err)
	}
	k.server.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	// No HTTP/2: upgrades are HTTP/1.1.
	k.server.EnableHTTP2 = false
	k.server.StartTLS()
	t.Cleanup(k.server.Close)
	k.port = k.server.Listener.Addr().(*net.TCPAddr).Port
	return k
}

func (k *fakeKubelet) last() kubeletRequest {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.requests) == 0 {
		return kubeletRequest{}
	}
	return k.requests[len(k.requests)-1]
}

func (k *fakeKubelet) serve(w http.ResponseWriter, req *http.Request) {
	r := kubeletRequest{Method: req.Method, Path: req.URL.Path, RawQuery: req.URL.RawQuery}
	if req.TLS != nil && len(req.TLS.PeerCertificates) > 0 {
		r.ClientCN = req.TLS.PeerCertificates[0].Subject.CommonName
	}
	k.mu.Lock()
	k.requests = append(k.requests, r)
	k.mu.Unlock()
	switch {
	case strings.HasPrefix(req.URL.Path, "/containerLogs/"):
		if strings.HasSuffix(req.URL.Path, "/waiting") {
			http.Error(w, `container "waiting" in pod "web" is waiting to start: ContainerCreating`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "log of %s\n", req.URL.Path)
	case req.URL.Path == "/stats/summary":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"node":{"nodeName":"n1"},"pods":[]}`)
	case strings.HasPrefix(req.URL.Path, "/exec/") && wsstream.IsWebSocketRequest(req):
		serveWebSocketExec(w, req)
	case strings.HasPrefix(req.URL.Path, "/exec/"), strings.HasPrefix(req.URL.Path, "/attach/"):
		serveRemoteCommand(w, req)
	case strings.HasPrefix(req.URL.Path, "/portForward/"):
		servePortForward(w, req)
	default:
		http.NotFound(w, req)
	}
}

// serveWebSocketExec is a kubelet taking v5.channel.k8s.io itself
// (ExtendWebSocketsToKubelet): stdout gets "websocket|<path>|<command>".
func serveWebSocketExec(w http.ResponseWriter, req *http.Request) {
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{"v5.channel.k8s.io": {Binary: true, Channels: []wsstream.ChannelType{
		wsstream.ReadChannel, wsstream.WriteChannel, wsstream.WriteChannel, wsstream.WriteChannel, wsstream.ReadChannel,
	}}})
	_, streams, err := conn.Open(w, req)
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(streams[1], "websocket|%s|%s", req.URL.Path, strings.Join(req.URL.Query()["command"], " "))
	data, _ := json.Marshal(metav1.Status{Status: metav1.StatusSuccess})
	_, _ = streams[3].Write(data)
}

type newStream struct {
	stream    httpstream.Stream
	replySent <-chan struct{}
}

// upgrade accepts a SPDY connection of protocol and hands its streams to
// the returned channel once their replies went out.
func upgrade(w http.ResponseWriter, req *http.Request, protocol string) (httpstream.Connection, chan httpstream.Stream) {
	if _, err := httpstream.Handshake(req, w, []string{protocol}); err != nil {
		return nil, nil
	}
	raw := make(chan newStream, 8)
	conn := spdy.NewResponseUpgrader().UpgradeResponse(w, req, func(s httpstream.Stream, replySent <-chan struct{}) error {
		raw <- newStream{s, replySent}
		return nil
	})
	if conn == nil {
		return nil, nil
	}
	ready := make(chan httpstream.Stream, 8)
	go func() {
		for ns := range raw {
			<-ns.replySent
			ready <- ns.stream
		}
	}()
	return conn, ready
}

// serveRemoteCommand answers an exec or attach: stdout gets
// "<path>|<command>|<stdin>" (and "|<width>x<height>" with a TTY), stderr
// "stderr"; the command "exit3" ends with exit code 3.
func serveRemoteCommand(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	conn, streams := upgrade(w, req, "v4.channel.k8s.io")
	if conn == nil {
		return
	}
	defer conn.Close()
	want := 1 // error
	for _, p := range []string{"input", "output", "error", "tty"} {
		if q.Get(p) == "1" {
			want++
		}
	}
	byType := map[string]httpstream.Stream{}
	timeout := time.After(10 * time.Second)
	for len(byType) < want {
		select {
		case s := <-streams:
			byType[s.Headers().Get("streamType")] = s
		case <-timeout:
			return
		}
	}
	// A TTY's first size comes before any input.
	var size string
	if s := byType["resize"]; s != nil {
		var ts struct{ Width, Height uint16 }
		if json.NewDecoder(s).Decode(&ts) == nil {
			size = fmt.Sprintf("|%dx%d", ts.Width, ts.Height)
		}
	}
	var stdin []byte
	if s := byType["stdin"]; s != nil {
		stdin, _ = io.ReadAll(s)
	}
	command := q["command"]
	if s := byType["stdout"]; s != nil {
		fmt.Fprintf(s, "%s|%s|%s%s", req.URL.Path, strings.Join(command, " "), stdin, size)
	}
	if s := byType["stderr"]; s != nil {
		fmt.Fprint(s, "stderr")
	}
	status := metav1.Status{Status: metav1.StatusSuccess}
	if len(command) > 0 && command[0] == "exit3" {
		status = metav1.Status{
			Status: metav1.StatusFailure, Reason: "NonZeroExitCode",
			Message: "command terminated with non-zero exit code: exit status 3",
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: "ExitCode", Message: "3"}}},
		}
	}
	data, _ := json.Marshal(status)
	_, _ = byType["error"].Write(data)
	for _, s := range byType {
		s.Close()
	}
	// Let the client read the streams before the connection goes.
	time.Sleep(100 * time.Millisecond)
}

// servePortForward echoes each data stream as "<port>:<what it read>",
// then closes the request's error stream (the end of a forward).
func servePortForward(w http.ResponseWriter, req *http.Request) {
	conn, streams := upgrade(w, req, "portforward.k8s.io")
	if conn == nil {
		return
	}
	defer conn.Close()
	var mu sync.Mutex
	errorStreams := map[string]httpstream.Stream{}
	for {
		select {
		case s := <-streams:
			id := s.Headers().Get("requestID")
			if s.Headers().Get("streamType") == "error" {
				mu.Lock()
				errorStreams[id] = s
				mu.Unlock()
				continue
			}
			go func() {
				in, _ := io.ReadAll(s)
				fmt.Fprintf(s, "%s:%s", s.Headers().Get("port"), in)
				s.Close()
				mu.Lock()
				defer mu.Unlock()
				if e := errorStreams[id]; e != nil {
					e.Close()
				}
			}()
		case <-conn.CloseChan():
			return
		case <-time.After(30 * time.Second):
			return
		}
	}
}
