package harness

import (
	"context"
	"testing"

	"k8s.io/client-go/rest"
)

// StartSkiffTest starts skiff (StartSkiff) for a test, which fails if it
// does not start, and stops it when the test ends. Skipped with -short.
func StartSkiffTest(t testing.TB, opts Options) *Server {
	t.Helper()
	return startTest(t, "skiff", func(ctx context.Context) (*Server, error) { return StartSkiff(ctx, opts) })
}

// StartUpstreamTest is StartSkiffTest for upstream's kube-apiserver
// (StartUpstream); skipped too when hack/upstream.sh has not built it.
func StartUpstreamTest(t testing.TB, opts Options) *Server {
	t.Helper()
	if bin, ok := UpstreamBinary("kube-apiserver"); !ok {
		t.Skipf("%s not built (hack/upstream.sh kube-apiserver)", bin)
	}
	return startTest(t, "kube-apiserver", func(ctx context.Context) (*Server, error) { return StartUpstream(ctx, opts) })
}

func startTest(t testing.TB, name string, start func(context.Context) (*Server, error)) *Server {
	t.Helper()
	if testing.Short() {
		t.Skipf("runs %s", name)
	}
	// The start bounds its own wait (startTimeout).
	s, err := start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stopping %s: %v", name, err)
		}
	})
	return s
}

// AdminConfig is the server's admin client config; the test fails without.
func (s *Server) AdminConfig(t testing.TB) *rest.Config {
	t.Helper()
	cfg, err := s.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
