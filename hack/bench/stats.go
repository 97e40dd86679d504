package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// budget bounds one measurement: ops operations in total (split evenly over
// the clients) when ops > 0, else as many as fit in d.
type budget struct {
	ops int
	d   time.Duration
}

func (b budget) String() string {
	if b.ops > 0 {
		return fmt.Sprintf("%d ops", b.ops)
	}
	return b.d.String()
}

// maxErrorsPerClient stops a client that keeps failing, so that a broken
// server does not turn a timed run into a busy loop of errors.
const maxErrorsPerClient = 50

// opStats summarises one measurement: n clients repeating one operation.
type opStats struct {
	Clients      int           `json:"clients"`
	Ops          int           `json:"ops"` // successful operations
	Errors       int           `json:"errors"`
	Elapsed      time.Duration `json:"elapsed_ns"`
	P50          time.Duration `json:"p50_ns"`
	P99          time.Duration `json:"p99_ns"`
	ErrorSamples []string      `json:"error_samples,omitempty"`
}

// throughput is successful operations per second of wall time.
func (s opStats) throughput() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Ops) / s.Elapsed.Seconds()
}

func (s opStats) String() string {
	str := fmt.Sprintf("%d ops in %s: %.0f ops/s, p50 %s, p99 %s", s.Ops, s.Elapsed.Round(time.Millisecond),
		s.throughput(), fmtDur(s.P50), fmtDur(s.P99))
	if s.Errors > 0 {
		str += fmt.Sprintf(", %d ERRORS (first: %s)", s.Errors, s.ErrorSamples[0])
	}
	return str
}

// clientOp is one operation of client c (0..n-1), its i-th. done reports
// that the client has no more work (nothing is recorded for that call).
type clientOp func(ctx context.Context, c, i int) (done bool, err error)

// runClients runs n concurrent clients, each calling op in a loop until the
// budget is spent, and returns the latencies of the successful calls.
func runClients(ctx context.Context, n int, b budget, op clientOp) opStats {
	type clientResult struct {
		lat     []time.Duration
		errs    int
		samples []string
	}
	results := make([]clientResult, n)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(b.d)
	for c := range n {
		wg.Go(func() {
			r := &results[c]
			quota := -1 // unlimited: bounded by the deadline
			if b.ops > 0 {
				quota = b.ops / n
				if c < b.ops%n {
					quota++
				}
			}
			for i := 0; quota < 0 || i < quota; i++ {
				if ctx.Err() != nil || (quota < 0 && !time.Now().Before(deadline)) {
					return
				}
				t0 := time.Now()
				done, err := op(ctx, c, i)
				d := time.Since(t0)
				switch {
				case done:
					return
				case err != nil:
					r.errs++
					if len(r.samples) < 3 {
						r.samples = append(r.samples, err.Error())
					}
					if r.errs >= maxErrorsPerClient {
						return
					}
				default:
					r.lat = append(r.lat, d)
				}
			}
		})
	}
	wg.Wait()
	s := opStats{Clients: n, Elapsed: time.Since(start)}
	var all []time.Duration
	for _, r := range results {
		all = append(all, r.lat...)
		s.Errors += r.errs
		for _, m := range r.samples {
			if len(s.ErrorSamples) < 5 && !slices.Contains(s.ErrorSamples, m) {
				s.ErrorSamples = append(s.ErrorSamples, m)
			}
		}
	}
	slices.Sort(all)
	s.Ops = len(all)
	s.P50, s.P99 = percentile(all, 50), percentile(all, 99)
	return s
}

// percentile returns the nearest-rank p-th percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// median returns the median of xs (the mean of the middle two for an even
// count), 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fmtDur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	default:
		return d.Round(10 * time.Microsecond).String()
	}
}
