package component

import (
	"context"
	"errors"
	"testing"
	"time"

	restclient "k8s.io/client-go/rest"
)

// fakeAPIServer is ready after a moment, then serves until ctx ends.
type fakeAPIServer struct {
	host   string
	failed error
}

func (f fakeAPIServer) Run(ctx context.Context, ready func(*restclient.Config)) error {
	if f.failed != nil {
		return f.failed
	}
	ready(&restclient.Config{Host: f.host})
	<-ctx.Done()
	return nil
}

type recordingComponent struct {
	name string
	got  chan *restclient.Config
	err  error
}

func (r recordingComponent) Name() string { return r.name }

func (r recordingComponent) Run(_ context.Context, loopback *restclient.Config) error {
	r.got <- loopback
	return r.err
}

// TestRunStartsComponentsWithLoopback: each component runs with its own copy
// of the API server's loopback config; one failing leaves the server (and the
// others) running; ready is called.
func TestRunStartsComponentsWithLoopback(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	a := recordingComponent{name: "a", got: make(chan *restclient.Config, 1), err: errors.New("broken")}
	b := recordingComponent{name: "b", got: make(chan *restclient.Config, 1)}
	readyCalled := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, fakeAPIServer{host: "https://127.0.0.1:1"}, func() { close(readyCalled) }, a, b)
	}()
	var configs []*restclient.Config
	for _, c := range []recordingComponent{a, b} {
		select {
		case cfg := <-c.got:
			if cfg.Host != "https://127.0.0.1:1" {
				t.Errorf("component %s got host %q", c.name, cfg.Host)
			}
			configs = append(configs, cfg)
		case <-time.After(5 * time.Second):
			t.Fatalf("component %s did not start", c.name)
		}
	}
	if configs[0] == configs[1] {
		t.Error("components share one loopback config; each must get a copy")
	}
	<-readyCalled
	select {
	case err := <-done:
		t.Fatalf("Run returned %v while ctx was live (a failed component must not stop the server)", err)
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after ctx ended: %v", err)
	}
}

// TestRunReturnsAPIServerFailure: a server that fails to start is the
// result, and no component runs.
func TestRunReturnsAPIServerFailure(t *testing.T) {
	want := errors.New("no etcd")
	c := recordingComponent{name: "c", got: make(chan *restclient.Config, 1)}
	if err := Run(context.Background(), fakeAPIServer{failed: want}, nil, c); !errors.Is(err, want) {
		t.Fatalf("Run = %v, want %v", err, want)
	}
	select {
	case <-c.got:
		t.Fatal("a component ran although the API server never became ready")
	default:
	}
}
