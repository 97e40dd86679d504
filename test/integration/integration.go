// Package integration starts skiff's parts in the test process for
// integration tests: a real API server on its embedded etcd, and the
// controllers as skiff runs them.
package integration

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/apiserver"
	"github.com/skiff-dev/skiff/pkg/apiserver/options"
	"github.com/skiff-dev/skiff/pkg/controllers"
	"github.com/skiff-dev/skiff/test/harness"
)

// ServerOptions tune StartAPIServer.
type ServerOptions struct {
	// LogFilter picks the log lines shown when the test fails (the last
	// LogLines of them); nil: every line.
	LogFilter func(line string) bool
	// LogLines is how many are shown; 0: 60. FULL_LOG=1 shows all.
	LogLines int
	// Verbosity is klog's -v; 0 leaves it.
	Verbosity int
	// Customize changes the server's options before it starts.
	Customize func(*options.Options)
}

// StartAPIServer runs skiff's API server (apiserver.Run, its own data dir
// and embedded etcd, a free port) until the test ends and returns an
// admin (system:masters) config without client-side rate limits. klog
// goes to a file of the test's, shown on failure. Skipped with -short.
func StartAPIServer(t testing.TB, so ServerOptions) *restclient.Config {
	t.Helper()
	if testing.Short() {
		t.Skip("starts an API server")
	}
	dir := t.TempDir()
	logFile := filepath.Join(dir, "server.log")
	lf, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	if so.Verbosity > 0 {
		_ = fs.Set("v", fmt.Sprint(so.Verbosity))
	}
	klog.SetOutput(lf)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		data, _ := os.ReadFile(logFile)
		var lines []string
		for _, l := range strings.Split(string(data), "\n") {
			if so.LogFilter == nil || so.LogFilter(l) {
				lines = append(lines, l)
			}
		}
		n := so.LogLines
		if n == 0 {
			n = 60
		}
		if len(lines) > n && os.Getenv("FULL_LOG") == "" {
			lines = lines[len(lines)-n:]
		}
		t.Logf("last lines of the server's log:\n%s", strings.Join(lines, "\n"))
	})

	ctx, cancel := context.WithCancel(context.Background())
	var opts *options.Options
	done := make(chan error, 1)
	err = harness.OnFreePort(func(port int) error {
		opts = options.NewOptions()
		opts.DataDir = filepath.Join(dir, "data")
		opts.SecurePort = port
		opts.BindAddress = "127.0.0.1"
		if so.Customize != nil {
			so.Customize(opts)
		}
		ready := make(chan struct{})
		var once sync.Once
		go func() {
			done <- apiserver.Run(ctx, opts, func(*restclient.Config) { once.Do(func() { close(ready) }) })
		}()
		select {
		case <-ready:
			return nil
		case err := <-done:
			return fmt.Errorf("apiserver.Run returned before ready: %v", err)
		case <-time.After(2 * time.Minute):
			return fmt.Errorf("server not ready")
		}
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Error("the API server did not stop")
		}
		lf.Close()
	})
	cfg, err := clientcmd.BuildConfigFromFlags("", opts.AdminKubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = -1, -1
	return cfg
}

// StartUpstreamAPIServer runs upstream's kube-apiserver (hack/upstream.sh's
// build, on its own etcd) until the test ends and returns an admin config:
// for tests that hold skiff and upstream to the same expectations. Skipped
// when it is not built, and with -short.
func StartUpstreamAPIServer(t testing.TB) *restclient.Config {
	t.Helper()
	return harness.StartUpstreamTest(t, harness.Options{}).AdminConfig(t)
}

// RunControllers runs controllers.Run against cfg until the test ends,
// which fails if they return an error or do not stop. Options.Controllers
// picks which (e.g. []string{"replicaset-controller"}); with
// UseServiceAccountCredentials each runs as its ServiceAccount, so its
// RBAC role is exercised too.
func RunControllers(t testing.TB, cfg *restclient.Config, opts controllers.Options) {
	t.Helper()
	StartControllers(t, cfg, opts)
}

// StartControllers is RunControllers that the test may also stop earlier
// (e.g. to restart the controllers): stop cancels them and waits until
// they return, failing the test if they return an error or do not stop
// within a minute; it runs at the test's end too, and only once.
func StartControllers(t testing.TB, cfg *restclient.Config, opts controllers.Options) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- controllers.Run(ctx, cfg, opts) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("controllers.Run: %v", err)
				}
			case <-time.After(time.Minute):
				t.Error("the controllers did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// Eventually polls check until it returns "" and fails the test with its
// last answer if it still does not after timeout.
func Eventually(t testing.TB, timeout time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		problem := check()
		if problem == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, problem)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
