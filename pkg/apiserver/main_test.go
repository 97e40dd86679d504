package apiserver_test

// The harness of the package's integration tests: TestMain starts one etcd
// (pkg/etcd, as `skiff server` embeds it) and one API server pointing at it
// through --etcd-servers, so the tests can also look into etcd directly
// (compaction, the stored bytes). Everything is real: no fakes.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/apiserver"
	"github.com/skiff-dev/skiff/pkg/apiserver/options"
	"github.com/skiff-dev/skiff/pkg/etcd"
	"github.com/skiff-dev/skiff/test/harness"
)

const (
	startTimeout    = 2 * time.Minute
	shutdownTimeout = 60 * time.Second
	// eventTimeout bounds waiting for one watch event.
	eventTimeout = 20 * time.Second
)

// The shared server, set by TestMain.
var (
	srvOpts *options.Options
	cfg     *restclient.Config // admin (system:masters) client config
	cs      *kubernetes.Clientset
	dyn     *dynamic.DynamicClient
	md      metadata.Interface
	httpc   *http.Client // admin HTTP client for raw requests
	etcdc   *clientv3.Client
	etcdURL string
	// preStartRev is an etcd revision from before the server started.
	preStartRev int64
	logFile     string
	nsCounter   atomic.Int64
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) (code int) {
	tmp, err := os.MkdirTemp("", "skiff-apiserver-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		return 1
	}
	if os.Getenv("SKIFF_TEST_KEEP") != "" {
		fmt.Fprintln(os.Stderr, "harness: keeping", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	// The server logs a lot; keep it in a file and show its tail on failure.
	logFile = filepath.Join(tmp, "server.log")
	lf, err := os.Create(logFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		return 1
	}
	defer lf.Close()
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	_ = klogFlags.Set("logtostderr", "false")
	_ = klogFlags.Set("stderrthreshold", "FATAL")
	klog.SetOutput(lf)
	defer func() {
		if code != 0 {
			dumpLogTail(os.Stderr, 80)
		}
	}()

	e, err := etcd.Start(filepath.Join(tmp, "etcd"), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness: starting etcd:", err)
		return 1
	}
	defer e.Close()
	etcdURL = e.ClientURL
	etcdc, err = clientv3.New(clientv3.Config{Endpoints: []string{etcdURL}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness: etcd client:", err)
		return 1
	}
	defer etcdc.Close()
	// A revision from before the server started, and a later write, so that
	// preStartRev is older than the revision every watch cache starts at.
	for i := 0; i < 2; i++ {
		put, err := etcdc.Put(context.Background(), fmt.Sprintf("/skiff-test/before-start-%d", i), "x")
		if err != nil {
			fmt.Fprintln(os.Stderr, "harness: etcd put:", err)
			return 1
		}
		if i == 0 {
			preStartRev = put.Header.Revision
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := startServer(ctx, filepath.Join(tmp, "data"), 0, []string{etcdURL})
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		return 1
	}
	srvOpts = srv.opts
	if srv.badLoopback.Load() {
		fmt.Fprintln(os.Stderr, "harness: the ready callback got no usable loopback config")
		srv.stop(cancel)
		return 1
	}
	if err := buildClients(); err != nil {
		fmt.Fprintln(os.Stderr, "harness: clients:", err)
		srv.stop(cancel)
		return 1
	}

	code = m.Run()

	if err := srv.stop(cancel); err != nil {
		fmt.Fprintln(os.Stderr, "harness: FAIL: graceful shutdown:", err)
		return 1
	}
	return code
}

// runningServer is an apiserver.Run call in progress.
type runningServer struct {
	opts        *options.Options
	done        chan error // receives Run's result
	readyCalls  atomic.Int32
	badLoopback atomic.Bool // the ready callback got no usable loopback config
}

// startServer runs apiserver.Run on a loopback port (a free one when port
// is 0, see harness.OnFreePort) until ctx ends and waits for its ready
// callback. etcdServers nil means the embedded etcd; tweaks change the
// options before the start.
func startServer(ctx context.Context, dataDir string, port int, etcdServers []string, tweaks ...func(*options.Options)) (*runningServer, error) {
	var s *runningServer
	start := func(port int) error {
		opts := options.NewOptions()
		opts.DataDir = dataDir
		opts.SecurePort = port
		opts.BindAddress = "127.0.0.1"
		opts.EtcdServers = etcdServers
		for _, tweak := range tweaks {
			tweak(opts)
		}
		ready := make(chan struct{})
		s = &runningServer{opts: opts, done: make(chan error, 1)}
		go func() {
			s.done <- apiserver.Run(ctx, opts, func(loopback *restclient.Config) {
				if loopback == nil || loopback.Host == "" {
					s.badLoopback.Store(true)
				}
				if s.readyCalls.Add(1) == 1 {
					close(ready)
				}
			})
		}()
		select {
		case <-ready:
			return nil
		case err := <-s.done:
			return fmt.Errorf("apiserver.Run returned before ready: %v", err)
		case <-time.After(startTimeout):
			return fmt.Errorf("server not ready after %s", startTimeout)
		}
	}
	var err error
	if port != 0 {
		err = start(port)
	} else {
		err = harness.OnFreePort(start)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// stop cancels the server's context and waits for Run to return nil.
func (s *runningServer) stop(cancel context.CancelFunc) error {
	cancel()
	select {
	case err := <-s.done:
		if err != nil {
			return fmt.Errorf("apiserver.Run returned %v after cancellation", err)
		}
		return nil
	case <-time.After(shutdownTimeout):
		return fmt.Errorf("apiserver.Run did not return within %s of cancellation", shutdownTimeout)
	}
}

// freePort is a free loopback port that no server of this process got yet.
func freePort() (int, error) { return harness.FreePort() }

func buildClients() error {
	var err error
	cfg, err = clientcmd.BuildConfigFromFlags("", srvOpts.AdminKubeconfig())
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = -1, -1 // no client-side throttling
	if cs, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	if dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return err
	}
	if md, err = metadata.NewForConfig(cfg); err != nil {
		return err
	}
	httpc, err = restclient.HTTPClientFor(cfg)
	return err
}

func dumpLogTail(w io.Writer, lines int) {
	data, err := os.ReadFile(logFile)
	if err != nil {
		return
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	fmt.Fprintf(w, "---- last %d lines of the server log ----\n%s\n", len(all), strings.Join(all, "\n"))
}

// ---------------------------------------------------------------------------
// helpers shared by the tests

// testCtx is a context bounded by the test's life and a minute.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newNamespace creates a fresh namespace for one test.
func newNamespace(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%s", nsCounter.Add(1), strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())))
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	_, err := cs.CoreV1().Namespaces().Create(testCtx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	// As the ServiceAccount controller would (no controllers run here):
	// ServiceAccount admission wants pods' ServiceAccount to exist.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	if _, err := cs.CoreV1().ServiceAccounts(name).Create(testCtx(t), sa, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating service account default in %s: %v", name, err)
	}
	return name
}

// response is a raw HTTP answer.
type response struct {
	code   int
	header http.Header
	body   []byte
}

// status decodes the body as a metav1.Status.
func (r response) status(t *testing.T) metav1.Status {
	t.Helper()
	var s metav1.Status
	if err := json.Unmarshal(r.body, &s); err != nil {
		t.Fatalf("response %d is not a Status: %v\n%s", r.code, err, r.body)
	}
	if s.Kind != "Status" {
		t.Fatalf("response %d has kind %q, want Status:\n%s", r.code, s.Kind, r.body)
	}
	return s
}

// do sends a raw request to the shared server with client (httpc when nil).
func do(t *testing.T, client *http.Client, method, path string, header map[string]string, body []byte) response {
	t.Helper()
	if client == nil {
		client = httpc
	}
	req, err := http.NewRequestWithContext(testCtx(t), method, strings.TrimRight(cfg.Host, "/")+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil && header["Content-Type"] == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: data}
}

// query builds "?k=v&..." from pairs.
func query(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return "?" + v.Encode()
}

// wantStatusErr asserts err is an API error with the given code and reason.
func wantStatusErr(t *testing.T, err error, code int32, reason metav1.StatusReason) *metav1.Status {
	t.Helper()
	var se apierrors.APIStatus
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not an API status error; want %d %s", err, err, code, reason)
	}
	s := se.Status()
	if s.Code != code || s.Reason != reason {
		t.Fatalf("got %d %s (%q), want %d %s", s.Code, s.Reason, s.Message, code, reason)
	}
	return &s
}

func mustClientset(t *testing.T, c *restclient.Config) *kubernetes.Clientset {
	t.Helper()
	client, err := kubernetes.NewForConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func itoa(n int) string { return strconv.Itoa(n) }
