package pod_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/client-go/util/exec"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apiserver/options"
	"github.com/skiff-dev/skiff/pkg/pki"
	"github.com/skiff-dev/skiff/test/integration"
)

// hostIP is an address of this machine that upstream lets the API server
// proxy to (global unicast: not loopback).
func hostIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.String()
		}
	}
	t.Skip("no global unicast IPv4 address on this machine: pods/proxy and nodes/proxy refuse loopback")
	return ""
}

type cluster struct {
	cfg     *restclient.Config
	client  *kubernetes.Clientset
	ca      *pki.CA
	kubelet *fakeKubelet
	ip      string
	// kubeconfig is the admin's, for kubectl.
	kubeconfig string
	// podPort serves the pod "web" (HTTP echo).
	podPort int
}

// TestConnectSubresources runs pods/log, exec, attach, portforward,
// proxy, nodes/proxy and services/proxy against a real API server, a
// fake kubelet on this machine's address (TLS, client certificates
// checked) and an HTTP server standing for the pod.
func TestConnectSubresources(t *testing.T) {
	var opts *options.Options
	cfg := integration.StartAPIServer(t, integration.ServerOptions{Customize: func(o *options.Options) { opts = o }})
	c := &cluster{cfg: cfg, client: kubernetes.NewForConfigOrDie(cfg), ip: hostIP(t), kubeconfig: opts.AdminKubeconfig()}
	var err error
	if c.ca, err = pki.LoadCA(opts.PKIDir()); err != nil {
		t.Fatal(err)
	}
	c.kubelet = startFakeKubelet(t, c.ca, c.ip)
	c.podPort = startPodServer(t, c.ip)
	c.setUp(t)

	t.Run("discovery", c.testDiscovery)
	t.Run("log", c.testLog)
	t.Run("exec", c.testExec)
	t.Run("attach", c.testAttach)
	t.Run("portforward", c.testPortForward)
	t.Run("podProxy", c.testPodProxy)
	t.Run("nodeProxy", c.testNodeProxy)
	t.Run("serviceProxy", c.testServiceProxy)
	t.Run("kubectl", c.testKubectl)
	t.Run("rbac", c.testRBAC)
}

// startPodServer answers "<method> <path>?<query> <body>".
func startPodServer(t *testing.T, ip string) int {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/redirect":
			http.Redirect(w, req, "/elsewhere", http.StatusFound)
			return
		case "/page.html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, `<html><body><a href="/docs/">docs</a><img src="logo.png"></body></html>`)
			return
		}
		body, _ := io.ReadAll(req.Body)
		fmt.Fprintf(w, "%s %s?%s %s", req.Method, req.URL.Path, req.URL.RawQuery, body)
	})}
	go srv.Serve(l) //nolint:errcheck
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

func (c *cluster) setUp(t *testing.T) {
	ctx := context.Background()
	// A closed port: the node "gone" has no kubelet listening.
	l, err := net.Listen("tcp", net.JoinHostPort(c.ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	gonePort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	for name, port := range map[string]int{"n1": c.kubelet.port, "gone": gonePort, "wsnode": c.kubelet.port} {
		node, err := c.client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: c.ip}}
		node.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(port)
		if name == "wsnode" {
			// This kubelet takes WebSocket streams itself.
			node.Status.DeclaredFeatures = []string{"ExtendWebSocketsToKubelet"}
		}
		if _, err := c.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// No controllers run: the ServiceAccount admission wants the default one.
	if _, err := c.client.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{
			{Name: "c1", Image: "busybox", Ports: []corev1.ContainerPort{{ContainerPort: int32(c.podPort)}}},
		}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "two"}, Spec: corev1.PodSpec{NodeName: "n1",
			InitContainers: []corev1.Container{{Name: "init", Image: "busybox"}},
			Containers:     []corev1.Container{{Name: "a", Image: "busybox"}, {Name: "b", Image: "busybox"}, {Name: "waiting", Image: "busybox"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "pending"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c1", Image: "busybox"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "onws"}, Spec: corev1.PodSpec{NodeName: "wsnode", Containers: []corev1.Container{{Name: "c1", Image: "busybox"}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "lost"}, Spec: corev1.PodSpec{NodeName: "gone", Containers: []corev1.Container{{Name: "c1", Image: "busybox"}}}},
	}
	for _, p := range pods {
		pod, err := c.client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Spec.NodeName != "" {
			pod.Status.Phase = corev1.PodRunning
			pod.Status.PodIP = c.ip
			pod.Status.PodIPs = []corev1.PodIP{{IP: c.ip}}
			if _, err := c.client.CoreV1().Pods("default").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// raw GETs path with the admin's credentials and returns status and body.
func (c *cluster) raw(t *testing.T, method, path string, body io.Reader) (int, string) {
	t.Helper()
	rt, err := restclient.TransportFor(c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, c.cfg.Host+path, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, statusMessage(data)
}

// statusMessage is the message of a Status body, else the body.
func statusMessage(body []byte) string {
	var status metav1.Status
	if json.Unmarshal(body, &status) == nil && status.Kind == "Status" {
		return status.Message
	}
	return string(body)
}

// testDiscovery: the subresources are listed with upstream's verbs and kinds.
func (c *cluster) testDiscovery(t *testing.T) {
	list, err := c.client.Discovery().ServerResourcesForGroupVersion("v1")
	if err != nil {
		t.Fatal(err)
	}
	proxyVerbs := "create delete get patch update"
	want := map[string]string{
		"pods/log":         "Pod get",
		"pods/exec":        "PodExecOptions create get",
		"pods/attach":      "PodAttachOptions create get",
		"pods/portforward": "PodPortForwardOptions create get",
		"pods/proxy":       "PodProxyOptions " + proxyVerbs,
		"nodes/proxy":      "NodeProxyOptions " + proxyVerbs,
		"services/proxy":   "ServiceProxyOptions " + proxyVerbs,
	}
	for _, r := range list.APIResources {
		if w, ok := want[r.Name]; ok {
			verbs := append([]string(nil), r.Verbs...)
			slices.Sort(verbs)
			if got := r.Kind + " " + strings.Join(verbs, " "); got != w {
				t.Errorf("%s: %q, want %q", r.Name, got, w)
			}
			delete(want, r.Name)
		}
	}
	if len(want) > 0 {
		t.Errorf("not listed: %v", want)
	}
}

func (c *cluster) testLog(t *testing.T) {
	const base = "/api/v1/namespaces/default/pods/"
	code, body := c.raw(t, "GET", base+"web/log?container=c1&follow=true&previous=true&timestamps=true&sinceSeconds=10&tailLines=5&limitBytes=100&insecureSkipTLSVerifyBackend=false", nil)
	if code != 200 || body != "log of /containerLogs/default/web/c1\n" {
		t.Fatalf("log: %d %q", code, body)
	}
	got := c.kubelet.last()
	want := url.Values{"follow": {"true"}, "previous": {"true"}, "timestamps": {"true"}, "sinceSeconds": {"10"}, "tailLines": {"5"}, "limitBytes": {"100"}}
	if q, _ := url.ParseQuery(got.RawQuery); q.Encode() != want.Encode() {
		t.Errorf("kubelet got query %q, want %q", got.RawQuery, want.Encode())
	}
	if got.ClientCN != "kube-apiserver-kubelet-client" {
		t.Errorf("kubelet saw client %q, want kube-apiserver-kubelet-client", got.ClientCN)
	}

	since := "2026-01-02T03:04:05Z"
	if code, _ := c.raw(t, "GET", base+"web/log?sinceTime="+since, nil); code != 200 {
		t.Errorf("sinceTime: %d", code)
	} else if q, _ := url.ParseQuery(c.kubelet.last().RawQuery); q.Get("sinceTime") != since {
		t.Errorf("sinceTime passed as %q", c.kubelet.last().RawQuery)
	}

	// Through client-go, the single container by default.
	data, err := c.client.CoreV1().Pods("default").GetLogs("web", &corev1.PodLogOptions{}).DoRaw(context.Background())
	if err != nil || string(data) != "log of /containerLogs/default/web/c1\n" {
		t.Errorf("default container: %q, %v", data, err)
	}

	for _, tc := range []struct {
		query   string
		code    int
		message string
	}{
		{"two/log", 400, "a container name must be specified for pod two, choose one of: [init a b waiting]"},
		{"web/log?container=nope", 400, "container nope is not valid for pod web"},
		{"web/log?tailLines=-1", 422, "tailLines: Invalid value: -1: must be greater than or equal to 0"},
		{"web/log?limitBytes=0", 422, "limitBytes: Invalid value: 0: must be greater than 0"},
		{"web/log?sinceSeconds=0", 422, "sinceSeconds: Invalid value: 0: must be greater than 0"},
		{"web/log?sinceSeconds=5&sinceTime=" + since, 422, "at most one of `sinceTime` or `sinceSeconds` may be specified"},
		{"web/log?stream=Stdout", 422, "stream: Forbidden: may not be specified"},
		{"web/log?tailLines=abc", 400, `strconv.ParseInt: parsing "abc": invalid syntax`},
		{"web/log?sinceTime=yesterday", 400, "yesterday"},
		{"nothere/log", 404, `pods "nothere" not found`},
		// The kubelet's refusal is passed on with its code.
		{"two/log?container=waiting", 400, `container "waiting" in pod "web" is waiting to start: ContainerCreating`},
		{"pending/log", 204, ""},
	} {
		code, body := c.raw(t, "GET", base+tc.query, nil)
		if code != tc.code || !strings.Contains(body, tc.message) {
			t.Errorf("%s: %d %s, want %d containing %q", tc.query, code, body, tc.code, tc.message)
		}
	}
	// No kubelet listening: the dial error, a 500 as upstream's.
	if code, body := c.raw(t, "GET", base+"lost/log", nil); code != 500 || !strings.Contains(body, "connection refused") {
		t.Errorf("lost node: %d %s", code, body)
	}
}

func (c *cluster) execURL(name string, o *corev1.PodExecOptions) *url.URL {
	return c.client.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name(name).
		SubResource("exec").VersionedParams(o, scheme.ParameterCodec).URL()
}

type execResult struct {
	stdout, stderr string
	err            error
}

func run(e remotecommand.Executor, stdin string) execResult {
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts := remotecommand.StreamOptions{Stdout: &out, Stderr: &errOut}
	if stdin != "" {
		opts.Stdin = strings.NewReader(stdin)
	}
	err := e.StreamWithContext(ctx, opts)
	return execResult{out.String(), errOut.String(), err}
}

func (c *cluster) testExec(t *testing.T) {
	o := &corev1.PodExecOptions{Command: []string{"sh", "-c", "cat"}, Stdin: true, Stdout: true, Stderr: true}
	u := c.execURL("web", o)
	spdyExec, err := remotecommand.NewSPDYExecutor(c.cfg, "POST", u)
	if err != nil {
		t.Fatal(err)
	}
	wsExec, err := remotecommand.NewWebSocketExecutor(c.cfg, "GET", u.String())
	if err != nil {
		t.Fatal(err)
	}
	const want = "/exec/default/web/c1|sh -c cat|hello"
	for name, e := range map[string]remotecommand.Executor{"spdy": spdyExec, "websocket": wsExec} {
		r := run(e, "hello")
		if r.err != nil || r.stdout != want || r.stderr != "stderr" {
			t.Errorf("%s: stdout %q stderr %q err %v, want %q", name, r.stdout, r.stderr, r.err, want)
		}
		if cn := c.kubelet.last().ClientCN; cn != "kube-apiserver-kubelet-client" {
			t.Errorf("%s: kubelet saw client %q", name, cn)
		}
	}

	// A kubelet declaring ExtendWebSocketsToKubelet gets the WebSocket
	// itself; SPDY still reaches it as SPDY.
	u = c.execURL("onws", &corev1.PodExecOptions{Command: []string{"ls"}, Stdout: true})
	wsExec, _ = remotecommand.NewWebSocketExecutor(c.cfg, "GET", u.String())
	if r := run(wsExec, ""); r.err != nil || r.stdout != "websocket|/exec/default/onws/c1|ls" {
		t.Errorf("websocket to a WebSocket kubelet: %q %v", r.stdout, r.err)
	}
	spdyExec, _ = remotecommand.NewSPDYExecutor(c.cfg, "POST", u)
	if r := run(spdyExec, ""); r.err != nil || r.stdout != "/exec/default/onws/c1|ls|" {
		t.Errorf("spdy to a WebSocket kubelet: %q %v", r.stdout, r.err)
	}

	// A TTY: the terminal's size reaches the kubelet both ways.
	u = c.execURL("web", &corev1.PodExecOptions{Command: []string{"sh"}, Stdin: true, Stdout: true, TTY: true})
	spdyExec, _ = remotecommand.NewSPDYExecutor(c.cfg, "POST", u)
	wsExec, _ = remotecommand.NewWebSocketExecutor(c.cfg, "GET", u.String())
	for name, e := range map[string]remotecommand.Executor{"spdy": spdyExec, "websocket": wsExec} {
		var out bytes.Buffer
		sizes := make(sizeQueue, 1)
		sizes <- remotecommand.TerminalSize{Width: 80, Height: 24}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := e.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: strings.NewReader("ls"), Stdout: &out, Tty: true, TerminalSizeQueue: sizes})
		cancel()
		close(sizes)
		if want := "/exec/default/web/c1|sh|ls|80x24"; err != nil || out.String() != want {
			t.Errorf("%s tty: %q %v, want %q", name, out.String(), err, want)
		}
	}

	// The command's exit code reaches the client both ways.
	u = c.execURL("web", &corev1.PodExecOptions{Command: []string{"exit3"}, Stdout: true})
	spdyExec, _ = remotecommand.NewSPDYExecutor(c.cfg, "POST", u)
	wsExec, _ = remotecommand.NewWebSocketExecutor(c.cfg, "GET", u.String())
	for name, e := range map[string]remotecommand.Executor{"spdy": spdyExec, "websocket": wsExec} {
		var exitErr exec.CodeExitError
		if r := run(e, ""); !errors.As(r.err, &exitErr) || exitErr.ExitStatus() != 3 {
			t.Errorf("%s exit3: %v, want exit code 3", name, r.err)
		}
	}

	// Refusals before any upgrade: 400s with upstream's words.
	for _, tc := range []struct {
		pod, container string
		want           string
	}{
		{"web", "nope", "container nope is not valid for pod web"},
		{"pending", "", "pod pending does not have a host assigned"},
		{"two", "", "a container name must be specified for pod two, choose one of: [init a b waiting]"},
	} {
		u := c.execURL(tc.pod, &corev1.PodExecOptions{Command: []string{"true"}, Stdout: true, Container: tc.container})
		e, _ := remotecommand.NewSPDYExecutor(c.cfg, "POST", u)
		r := run(e, "")
		if r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
			t.Errorf("%s/%s: %v, want %q", tc.pod, tc.container, r.err, tc.want)
		}
		code, body := c.raw(t, "POST", u.RequestURI(), nil)
		if code != 400 || !strings.Contains(body, tc.want) {
			t.Errorf("%s/%s without upgrade: %d %s", tc.pod, tc.container, code, body)
		}
	}
	// A plain request to a pod with a node: upgrade required.
	if code, body := c.raw(t, "POST", c.execURL("web", o).RequestURI(), nil); code != 400 || !strings.Contains(body, "Upgrade request required") {
		t.Errorf("no upgrade: %d %s", code, body)
	}
	// No kubelet: the dial error, as upstream (500).
	u = c.execURL("lost", &corev1.PodExecOptions{Command: []string{"true"}, Stdout: true})
	e, _ := remotecommand.NewSPDYExecutor(c.cfg, "POST", u)
	if r := run(e, ""); r.err == nil || !strings.Contains(r.err.Error(), "connection refused") {
		t.Errorf("lost node: %v", r.err)
	}
}

type sizeQueue chan remotecommand.TerminalSize

func (q sizeQueue) Next() *remotecommand.TerminalSize {
	size, ok := <-q
	if !ok {
		return nil
	}
	return &size
}

func (c *cluster) testAttach(t *testing.T) {
	u := c.client.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name("web").SubResource("attach").
		VersionedParams(&corev1.PodAttachOptions{Stdin: true, Stdout: true, Stderr: true}, scheme.ParameterCodec).URL()
	spdyExec, _ := remotecommand.NewSPDYExecutor(c.cfg, "POST", u)
	wsExec, _ := remotecommand.NewWebSocketExecutor(c.cfg, "GET", u.String())
	for name, e := range map[string]remotecommand.Executor{"spdy": spdyExec, "websocket": wsExec} {
		if r := run(e, "typed"); r.err != nil || r.stdout != "/attach/default/web/c1||typed" {
			t.Errorf("%s: %q %v", name, r.stdout, r.err)
		}
	}
}

func (c *cluster) testPortForward(t *testing.T) {
	u := c.client.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name("web").SubResource("portforward").URL()
	rt, upgrader, err := spdy.RoundTripperFor(c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	spdyDialer := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, "POST", u)
	wsDialer, err := portforward.NewSPDYOverWebsocketDialer(u, c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]httpstream.Dialer{"spdy": spdyDialer, "websocket": wsDialer} {
		conn, _, err := d.Dial("portforward.k8s.io")
		if err != nil {
			t.Errorf("%s: dial: %v", name, err)
			continue
		}
		h := http.Header{}
		h.Set(corev1.StreamType, corev1.StreamTypeError)
		h.Set(corev1.PortHeader, "8080")
		h.Set(corev1.PortForwardRequestIDHeader, "0")
		if _, err := conn.CreateStream(h); err != nil {
			t.Errorf("%s: error stream: %v", name, err)
		}
		h.Set(corev1.StreamType, corev1.StreamTypeData)
		data, err := conn.CreateStream(h)
		if err != nil {
			t.Errorf("%s: data stream: %v", name, err)
			conn.Close()
			continue
		}
		_, _ = data.Write([]byte("ping"))
		data.Close()
		got, err := io.ReadAll(data)
		if err != nil || string(got) != "8080:ping" {
			t.Errorf("%s: %q %v, want 8080:ping", name, got, err)
		}
		conn.Close()
	}
	if last := c.kubelet.last(); last.Path != "/portForward/default/web" || last.ClientCN != "kube-apiserver-kubelet-client" {
		t.Errorf("kubelet got %+v", last)
	}
}

func (c *cluster) testPodProxy(t *testing.T) {
	const base = "/api/v1/namespaces/default/pods/"
	port := fmt.Sprint(c.podPort)
	for _, tc := range []struct{ method, path, body, want string }{
		{"GET", base + "web/proxy/hello?x=1", "", "GET /hello?x=1 "},
		{"GET", base + "web:" + port + "/proxy/a/b/", "", "GET /a/b/? "},
		{"POST", base + "http:web:" + port + "/proxy/post", "payload", "POST /post? payload"},
		{"PUT", base + "web/proxy/", "x", "PUT /? x"},
	} {
		code, body := c.raw(t, tc.method, tc.path, strings.NewReader(tc.body))
		if code != 200 || body != tc.want {
			t.Errorf("%s %s: %d %q, want %q", tc.method, tc.path, code, body, tc.want)
		}
	}
	// The proxy's root redirects to the directory; a backend redirect
	// points back through the API.
	rt, _ := restclient.TransportFor(c.cfg)
	noFollow := &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for path, want := range map[string]string{
		base + "web/proxy":          base + "web/proxy/",
		base + "web/proxy/redirect": base + "web/proxy/elsewhere",
	} {
		resp, err := noFollow.Get(c.cfg.Host + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode/100 != 3 || !strings.HasSuffix(loc, want) {
			t.Errorf("%s: %d Location %q, want …%s", path, resp.StatusCode, loc, want)
		}
	}
	// Links of HTML pages lead back through the API.
	if code, body := c.raw(t, "GET", base+"web/proxy/page.html", nil); code != 200 ||
		body != `<html><body><a href="/api/v1/namespaces/default/pods/web/proxy/docs/">docs</a><img src="logo.png"></body></html>` {
		t.Errorf("HTML: %d %s", code, body)
	}
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{base + "pending/proxy/", 400, "address not allowed"},
		{base + "a:b:c:d/proxy/", 400, `invalid pod request "a:b:c:d"`},
		{base + "ftp:web:80/proxy/", 400, `invalid pod request "ftp:web:80"`},
		// Nothing listens there: upstream's 503.
		{base + "web:1/proxy/", 503, "error trying to reach service"},
	} {
		if code, body := c.raw(t, "GET", tc.path, nil); code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want %d %q", tc.path, code, body, tc.code, tc.want)
		}
	}
}

func (c *cluster) testNodeProxy(t *testing.T) {
	for _, path := range []string{"/api/v1/nodes/n1/proxy/stats/summary", fmt.Sprintf("/api/v1/nodes/n1:%d/proxy/stats/summary", c.kubelet.port)} {
		code, body := c.raw(t, "GET", path, nil)
		if code != 200 || !strings.Contains(body, `"nodeName":"n1"`) {
			t.Errorf("%s: %d %s", path, code, body)
		}
		if last := c.kubelet.last(); last.Path != "/stats/summary" || last.ClientCN != "kube-apiserver-kubelet-client" {
			t.Errorf("%s: kubelet got %+v", path, last)
		}
	}
	// Through client-go as kubectl get --raw does.
	data, err := c.client.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/n1/proxy/containerLogs/default/web/c1").DoRaw(context.Background())
	if err != nil || string(data) != "log of /containerLogs/default/web/c1\n" {
		t.Errorf("containerLogs: %q %v", data, err)
	}
	// Another port of the node: plain HTTP with the proxy transport.
	if code, body := c.raw(t, "GET", fmt.Sprintf("/api/v1/nodes/http:n1:%d/proxy/other", c.podPort), nil); code != 200 || body != "GET /other? " {
		t.Errorf("other port: %d %q", code, body)
	}
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/api/v1/nodes/gone/proxy/pods", 503, "error trying to reach service"},
		{"/api/v1/nodes/nothere/proxy/pods", 404, `nodes "nothere" not found`},
		{"/api/v1/nodes/x:y:z:w/proxy/pods", 400, `invalid node request "x:y:z:w"`},
	} {
		if code, body := c.raw(t, "GET", tc.path, nil); code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want %d %q", tc.path, code, body, tc.code, tc.want)
		}
	}
}

func (c *cluster) testServiceProxy(t *testing.T) {
	ctx := context.Background()
	_, err := c.client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "websvc"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "other", Port: 81}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.client.DiscoveryV1().EndpointSlices("default").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "websvc-1", Labels: map[string]string{discoveryv1.LabelServiceName: "websvc"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{c.ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"}},
		},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(c.podPort))}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const base = "/api/v1/namespaces/default/services/"
	// The API server's informer sees the slice shortly.
	integration.Eventually(t, 10*time.Second, func() string {
		if code, body := c.raw(t, "GET", base+"websvc:http/proxy/svc?y=2", nil); code != 200 || body != "GET /svc?y=2 " {
			return fmt.Sprintf("websvc:http: %d %q", code, body)
		}
		return ""
	})
	if code, body := c.raw(t, "GET", base+"http:websvc:80/proxy/num", nil); code != 200 || body != "GET /num? " {
		t.Errorf("port number: %d %q", code, body)
	}
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{base + "websvc:82/proxy/", 503, `no service port 82 found for service "websvc"`},
		{base + "websvc:other/proxy/", 503, `no endpoints available for service "websvc"`},
		{base + "nosvc/proxy/", 404, `services "nosvc" not found`},
	} {
		if code, body := c.raw(t, "GET", tc.path, nil); code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want %d %q", tc.path, code, body, tc.code, tc.want)
		}
	}
}

// testRBAC: each subresource needs its verb; a WebSocket GET of exec
// needs "create" too, as upstream since 1.35.
func (c *cluster) testRBAC(t *testing.T) {
	ctx := context.Background()
	_, err := c.client.RbacV1().Roles("default").Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "reader"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods", "pods/log", "pods/exec", "pods/attach"}, Verbs: []string{"get"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.client.RbacV1().RoleBindings("default").Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := c.ca.NewClientCert("alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	alice := restclient.AnonymousClientConfig(c.cfg)
	alice.CertData, alice.KeyData = certPEM, keyPEM
	aliceClient := kubernetes.NewForConfigOrDie(alice)

	integration.Eventually(t, 10*time.Second, func() string {
		if _, err := aliceClient.CoreV1().Pods("default").GetLogs("web", &corev1.PodLogOptions{}).DoRaw(ctx); err != nil {
			return fmt.Sprintf("alice's logs: %v", err)
		}
		return ""
	})
	u := c.execURL("web", &corev1.PodExecOptions{Command: []string{"true"}, Stdout: true})
	spdyExec, _ := remotecommand.NewSPDYExecutor(alice, "POST", u)
	wsExec, _ := remotecommand.NewWebSocketExecutor(alice, "GET", u.String())
	for name, e := range map[string]remotecommand.Executor{"spdy POST": spdyExec, "websocket GET": wsExec} {
		if r := run(e, ""); r.err == nil || !strings.Contains(r.err.Error(), "forbidden") {
			t.Errorf("%s with only get: %v, want forbidden", name, r.err)
		}
	}
	// The same refusal as a Status: 403 naming the subresource.
	rt, _ := restclient.TransportFor(alice)
	req, _ := http.NewRequest("GET", alice.Host+u.RequestURI(), nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-Websocket-Version", "13")
	req.Header.Set("Sec-Websocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Sec-Websocket-Protocol", "v5.channel.k8s.io")
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.HasPrefix(statusMessage(body), `pods "web" is forbidden`) {
		t.Errorf("websocket GET with only get: %d %s", resp.StatusCode, body)
	}
	// Nodes are not alice's.
	if _, err := aliceClient.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/n1/proxy/pods").DoRaw(ctx); !apierrors.IsForbidden(err) {
		t.Errorf("alice's nodes/proxy: %v, want forbidden", err)
	}
	// The API server's own kubelet client may use every kubelet API: what
	// a kubelet's webhook authorizer asks.
	for _, sub := range []string{"proxy", "log", "stats", "metrics"} {
		sar, err := c.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               "kube-apiserver-kubelet-client",
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "create", Resource: "nodes", Subresource: sub, Name: "n1"},
		}}, metav1.CreateOptions{})
		if err != nil || !sar.Status.Allowed {
			t.Errorf("kube-apiserver-kubelet-client on nodes/%s: %+v %v", sub, sar.Status, err)
		}
	}
	// Adding create lets both through.
	role, _ := c.client.RbacV1().Roles("default").Get(ctx, "reader", metav1.GetOptions{})
	role.Rules = append(role.Rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods/exec"}, Verbs: []string{"create"}})
	if _, err := c.client.RbacV1().Roles("default").Update(ctx, role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	integration.Eventually(t, 10*time.Second, func() string {
		for name, e := range map[string]remotecommand.Executor{"spdy POST": spdyExec, "websocket GET": wsExec} {
			if r := run(e, ""); r.err != nil {
				return fmt.Sprintf("%s with create: %v", name, r.err)
			}
		}
		return ""
	})
}
