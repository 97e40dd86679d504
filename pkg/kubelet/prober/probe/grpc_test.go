package probe

import (
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func serveGRPC(t *testing.T, withHealth bool) (int, *health.Server) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	var h *health.Server
	if withHealth {
		h = health.NewServer()
		healthpb.RegisterHealthServer(srv, h)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return l.Addr().(*net.TCPAddr).Port, h
}

func TestGRPC(t *testing.T) {
	port, h := serveGRPC(t, true)
	h.SetServingStatus("db", healthpb.HealthCheckResponse_NOT_SERVING)
	h.SetServingStatus("web", healthpb.HealthCheckResponse_SERVING)
	for _, tc := range []struct {
		service string
		want    Result
		out     string
	}{
		{"", Success, "service healthy"},
		{"web", Success, "service healthy"},
		{"db", Failure, `service unhealthy (responded with "NOT_SERVING")`},
		{"missing", Failure, "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service"},
	} {
		res, out, err := GRPC("127.0.0.1", tc.service, port, time.Second)
		if res != tc.want || out != tc.out || err != nil {
			t.Errorf("service %q: %s %q %v, want %s %q", tc.service, res, out, err, tc.want, tc.out)
		}
	}
}

func TestGRPCWithoutHealthService(t *testing.T) {
	port, _ := serveGRPC(t, false)
	res, out, _ := GRPC("127.0.0.1", "", port, time.Second)
	if res != Failure || !strings.HasPrefix(out, "error: this server does not implement the grpc health protocol (grpc.health.v1.Health)") {
		t.Errorf("no health service: %s %q", res, out)
	}
}

func TestGRPCNoServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	begin := time.Now()
	res, out, _ := GRPC("127.0.0.1", "", port, 300*time.Millisecond)
	if res != Failure || !strings.HasPrefix(out, "timeout: failed to connect service") {
		t.Errorf("no server: %s %q", res, out)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("300ms timeout took %v", d)
	}
}
