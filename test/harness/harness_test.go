package harness

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Cleanup()
	if code != 0 {
		os.Exit(code)
	}
}

// checkServer lists namespaces through the server's RESTConfig, reads its
// RSS and stops it.
func checkServer(t *testing.T, s *Server, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		start := time.Now()
		if err := s.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		t.Logf("%s stopped in %s", s.Name, time.Since(start).Round(time.Millisecond))
	}()
	t.Logf("%s: pid %d, %s, ready after %s", s.Name, s.PID, s.URL, s.ReadyAt.Sub(s.StartedAt))
	cfg, err := s.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Namespaces().Get(context.Background(), "default", metav1.GetOptions{}); err != nil {
		t.Errorf("get namespace default: %v", err)
	}
	rss, err := s.RSS()
	if err != nil || rss < 1<<20 {
		t.Errorf("RSS = %d, %v", rss, err)
	}
}

func TestStartSkiff(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs skiff")
	}
	s, err := StartSkiff(context.Background(), Options{})
	checkServer(t, s, err)
}

// TestSkiffKillAndRestart kills a skiff server and starts it again on the
// same Dir and port, where its data and CA are still there.
func TestSkiffKillAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs skiff")
	}
	ctx := context.Background()
	dir := t.TempDir()
	s, err := StartSkiff(ctx, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop() // in case the test ends before the kill
	client := clientset(t, s)
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kept"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.ExitErr(); err != nil {
		t.Errorf("ExitErr of a running server = %v", err)
	}
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := s.ExitErr(); err == nil {
		t.Error("ExitErr after SIGKILL = nil")
	}

	again, err := StartSkiff(ctx, Options{Dir: s.Dir, Port: s.Port})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := again.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	if again.Port != s.Port || again.URL != s.URL {
		t.Errorf("restarted on %s (port %d), want %s (port %d)", again.URL, again.Port, s.URL, s.Port)
	}
	if _, err := clientset(t, again).CoreV1().Namespaces().Get(ctx, "kept", metav1.GetOptions{}); err != nil {
		t.Errorf("namespace created before the kill: %v", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("Kill removed the Dir: %v", err)
	}

	kubeconfig, err := again.UserKubeconfig(ctx, "alice", "team")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	// alice is authenticated, but RBAC grants her nothing.
	_, err = kubernetes.NewForConfigOrDie(cfg).CoreV1().Namespaces().Get(ctx, "kept", metav1.GetOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("get namespace as alice: %v, want Forbidden", err)
	}
}

func clientset(t *testing.T, s *Server) *kubernetes.Clientset {
	t.Helper()
	cfg, err := s.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(cfg)
}

func TestStartUpstream(t *testing.T) {
	if bin, ok := UpstreamBinary("kube-apiserver"); !ok {
		t.Skipf("%s not built (hack/upstream.sh kube-apiserver)", bin)
	}
	s, err := StartUpstream(context.Background(), Options{})
	checkServer(t, s, err)
}
