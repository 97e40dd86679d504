package apiserver

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

type fakeEtcd struct {
	failed chan error
	closed atomic.Int32
}

func (f *fakeEtcd) Failed() <-chan error { return f.failed }
func (f *fakeEtcd) Close()               { f.closed.Add(1) }

// TestRunWithEmbeddedEtcdFailure: etcd failing ends the run with its error
// within the bound, even when the server's graceful shutdown hangs (it
// needs etcd); a normal end closes etcd once and returns serve's result.
func TestRunWithEmbeddedEtcdFailure(t *testing.T) {
	etcd := &fakeEtcd{failed: make(chan error, 1)}
	broken := errors.New("embedded etcd stopped serving: accept: invalid argument")
	shutdownStarted := make(chan struct{})
	hang := make(chan struct{})
	defer close(hang)
	done := make(chan error, 1)
	go func() {
		done <- runWithEmbeddedEtcd(context.Background(), etcd, func(ctx context.Context) error {
			<-ctx.Done()
			close(shutdownStarted)
			<-hang // a graceful shutdown waiting for etcd
			return nil
		})
	}()
	start := time.Now()
	etcd.failed <- broken
	select {
	case err := <-done:
		if !errors.Is(err, broken) {
			t.Errorf("returned %v, want %v", err, broken)
		}
		if took := time.Since(start); took > 2*etcdGiveUp+time.Second {
			t.Errorf("returned after %s", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10s after etcd failed")
	}
	select {
	case <-shutdownStarted:
	default:
		t.Error("the server was not told to shut down")
	}
	if n := etcd.closed.Load(); n != 1 {
		t.Errorf("etcd closed %d times, want once", n)
	}

	etcd = &fakeEtcd{failed: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	served := errors.New("serve's result")
	go func() {
		done <- runWithEmbeddedEtcd(ctx, etcd, func(ctx context.Context) error {
			<-ctx.Done()
			return served
		})
	}()
	cancel()
	if err := <-done; !errors.Is(err, served) {
		t.Errorf("after cancellation: %v, want serve's result", err)
	}
	if n := etcd.closed.Load(); n != 1 {
		t.Errorf("etcd closed %d times after cancellation, want once", n)
	}
}
