package main

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50}, {99, 99}, {100, 100}, {1, 1}, {0, 1}} {
		if got := percentile(d, c.p); got != c.want {
			t.Errorf("percentile(1..100, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentile(d[:1], 99); got != 1 {
		t.Errorf("percentile of one = %v", got)
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile of none = %v", got)
	}
}

func TestMedian(t *testing.T) {
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median odd = %v", got)
	}
	if got := median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("median even = %v", got)
	}
}

func TestRunClientsOps(t *testing.T) {
	calls := make([]int, 3)
	s := runClients(context.Background(), 3, budget{ops: 10}, func(_ context.Context, c, i int) (bool, error) {
		calls[c]++
		if c == 2 && i == 0 {
			return false, errors.New("boom")
		}
		return false, nil
	})
	if calls[0] != 4 || calls[1] != 3 || calls[2] != 3 {
		t.Errorf("calls per client = %v, want [4 3 3]", calls)
	}
	if s.Ops != 9 || s.Errors != 1 || len(s.ErrorSamples) != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestRunClientsDone(t *testing.T) {
	s := runClients(context.Background(), 2, budget{d: time.Minute}, func(_ context.Context, c, i int) (bool, error) {
		return i >= 5, nil
	})
	if s.Ops != 10 || s.Elapsed > time.Second {
		t.Errorf("stats = %+v", s)
	}
}
