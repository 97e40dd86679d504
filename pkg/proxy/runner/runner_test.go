package runner

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type counter struct {
	mu    sync.Mutex
	times []time.Time
	err   error
}

func (c *counter) run() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.times = append(c.times, time.Now())
	return c.err
}

func (c *counter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.times)
}

func waitFor(t *testing.T, c *counter, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for c.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d runs after %s, want %d", c.count(), within, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunnerFoldsRequestsWithinMinInterval(t *testing.T) {
	c := &counter{}
	r := New("test", c.run, 300*time.Millisecond, time.Hour, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Loop(ctx)
	r.Run()
	waitFor(t, c, 1, time.Second)
	start := time.Now()
	for range 10 {
		r.Run()
	}
	waitFor(t, c, 2, time.Second)
	if gap := c.times[1].Sub(c.times[0]); gap < 300*time.Millisecond {
		t.Errorf("second run %s after the first, want >= minInterval 300ms", gap)
	}
	time.Sleep(400 * time.Millisecond)
	if n := c.count(); n != 2 {
		t.Errorf("%d runs for 11 requests within %s, want 2 (folded)", n, time.Since(start))
	}
}

func TestRunnerRunsAtMaxIntervalAndRetries(t *testing.T) {
	c := &counter{}
	r := New("test", c.run, 10*time.Millisecond, time.Hour, 100*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Loop(ctx)
	waitFor(t, c, 3, 2*time.Second)

	failing := &counter{err: errors.New("boom")}
	r2 := New("retry", failing.run, 10*time.Millisecond, 50*time.Millisecond, time.Hour)
	go r2.Loop(ctx)
	r2.Run()
	waitFor(t, failing, 3, 2*time.Second)
}

func TestRunnerStopsWithContext(t *testing.T) {
	c := &counter{}
	r := New("test", c.run, time.Millisecond, time.Hour, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Loop(ctx); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Loop did not return after its context ended")
	}
}
