package harness

import (
	"context"
	"os"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
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

func TestStartUpstream(t *testing.T) {
	if bin, ok := UpstreamBinary("kube-apiserver"); !ok {
		t.Skipf("%s not built (hack/upstream.sh kube-apiserver)", bin)
	}
	s, err := StartUpstream(context.Background(), Options{})
	checkServer(t, s, err)
}
