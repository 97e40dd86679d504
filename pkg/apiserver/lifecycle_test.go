package apiserver_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-dev/skiff/pkg/apiserver"
	"github.com/skiff-dev/skiff/pkg/apiserver/options"
	"github.com/skiff-dev/skiff/pkg/controlplane/systemnamespaces"
	"github.com/skiff-dev/skiff/pkg/pki"
)

// maxIdleShutdown bounds how long Run may take to return once its context
// is cancelled while no request is in flight.
const maxIdleShutdown = 5 * time.Second

// TestEmbeddedEtcdLifecycle runs a second server in the default mode (etcd
// embedded in <data-dir>/etcd), stops it by cancelling its context, and
// starts it again on the same data dir: the data, the CA and the admin
// kubeconfig survive, and each Run returns nil promptly after cancellation
// and releases its port.
func TestEmbeddedEtcdLifecycle(t *testing.T) {
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}

	run := func(t *testing.T, check func(t *testing.T, client *kubernetes.Clientset, opts *options.Options)) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		srv, err := startServer(ctx, dir, port, nil)
		if err != nil {
			t.Fatal(err)
		}
		stopped := false
		defer func() {
			if !stopped { // check failed: do not leave the server running
				_ = srv.stop(cancel)
			}
		}()
		c, err := clientcmd.BuildConfigFromFlags("", srv.opts.AdminKubeconfig())
		if err != nil {
			t.Fatal(err)
		}
		client := mustClientset(t, c)
		check(t, client, srv.opts)

		start := time.Now()
		stopped = true
		if err := srv.stop(cancel); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		t.Logf("Run returned %s after cancellation", took.Round(time.Millisecond))
		// Nothing is in flight: shutting down the server and the embedded
		// etcd takes about a second. Storage clients left open make etcd's
		// close wait out its request timeout (~7s) instead.
		if took > maxIdleShutdown {
			t.Errorf("Run took %s to return after cancellation of an idle server, want under %s", took.Round(time.Millisecond), maxIdleShutdown)
		}
		if srv.badLoopback.Load() {
			t.Error("the ready callback got no usable loopback config")
		}
		if n := srv.readyCalls.Load(); n != 1 {
			t.Errorf("ready callback called %d times, want once", n)
		}
		if conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", itoa(port)), time.Second); err == nil {
			conn.Close()
			t.Errorf("port %d still accepts connections after Run returned", port)
		}
	}

	var caPEM, kubeconfig []byte
	var uid string
	t.Run("first start", func(t *testing.T) {
		run(t, func(t *testing.T, client *kubernetes.Clientset, opts *options.Options) {
			ctx := testCtx(t)
			if _, err := os.Stat(filepath.Join(dir, "etcd", "member")); err != nil {
				t.Errorf("no embedded etcd data in <data-dir>/etcd: %v", err)
			}
			for _, ns := range systemnamespaces.Names {
				if _, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
					t.Errorf("namespace %s: %v", ns, err)
				}
			}
			cm, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: "survivor"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			uid = string(cm.UID)
			if server, err := pki.ServerOf(opts.AdminKubeconfig()); err != nil || server != opts.ServerURL() {
				t.Errorf("admin kubeconfig names %q (%v), want %s", server, err, opts.ServerURL())
			}
			caPEM = readFile(t, filepath.Join(opts.PKIDir(), "ca.crt"))
			kubeconfig = readFile(t, opts.AdminKubeconfig())
		})
	})
	if uid == "" {
		return // the first start did not get far enough
	}
	t.Run("restart", func(t *testing.T) {
		run(t, func(t *testing.T, client *kubernetes.Clientset, opts *options.Options) {
			cm, err := client.CoreV1().ConfigMaps("default").Get(testCtx(t), "survivor", metav1.GetOptions{})
			if err != nil {
				t.Fatalf("the ConfigMap written before the restart: %v", err)
			}
			if string(cm.UID) != uid || cm.Data["k"] != "v" {
				t.Errorf("after restart uid %s data %v, want %s and k=v", cm.UID, cm.Data, uid)
			}
			if got := readFile(t, filepath.Join(opts.PKIDir(), "ca.crt")); !bytes.Equal(got, caPEM) {
				t.Error("the CA certificate changed across a restart")
			}
			if got := readFile(t, opts.AdminKubeconfig()); !bytes.Equal(got, kubeconfig) {
				t.Error("the admin kubeconfig was rewritten although the address is the same")
			}
		})
	})
}

// TestRunRejectsInvalidOptions: Run validates before touching anything.
func TestRunRejectsInvalidOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(o *options.Options)
	}{
		{"port", func(o *options.Options) { o.SecurePort = 70000 }},
		{"bind address", func(o *options.Options) { o.BindAddress = "localhost:1" }},
		{"service range", func(o *options.Options) { o.ServiceClusterIPRange = "10.0.0.0" }},
		{"node port range", func(o *options.Options) { o.ServiceNodePortRange = "1-" }},
		{"empty data dir", func(o *options.Options) { o.DataDir = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := options.NewOptions()
			o.DataDir = filepath.Join(t.TempDir(), "data")
			tc.mod(o)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := apiserver.Run(ctx, o, func(*restclient.Config) { t.Error("ready called") }); err == nil {
				t.Fatal("Run accepted invalid options")
			}
			if o.DataDir != "" {
				if _, err := os.Stat(o.DataDir); !os.IsNotExist(err) {
					t.Errorf("Run created %s for invalid options (stat: %v)", o.DataDir, err)
				}
			}
		})
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
