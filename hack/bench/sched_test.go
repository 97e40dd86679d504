package main

import (
	"math"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	created := map[string]time.Time{"a": at(0), "b": at(10), "c": at(20), "d": at(30)}
	bound := map[string]time.Time{
		"a": at(50),  // 50ms
		"b": at(5),   // seen before its create call started: 0
		"c": at(120), // 100ms, the last bind
		"x": at(500), // not one of ours
	}
	o := summarize(created, bound)
	if o.stats.Ops != 3 || o.unbound != 1 {
		t.Fatalf("ops %d unbound %d, want 3 and 1", o.stats.Ops, o.unbound)
	}
	if o.stats.Elapsed != 120*time.Millisecond {
		t.Errorf("elapsed %s, want 120ms (first create → last bind of ours)", o.stats.Elapsed)
	}
	if o.stats.P50 != 50*time.Millisecond || o.stats.P99 != 100*time.Millisecond {
		t.Errorf("p50 %s p99 %s, want 50ms and 100ms", o.stats.P50, o.stats.P99)
	}
	if o.firstBind != 5*time.Millisecond {
		t.Errorf("first bind %s after the first create, want 5ms", o.firstBind)
	}
	if got := summarize(created, nil); got.stats.Ops != 0 || got.stats.Elapsed != 0 || got.unbound != 4 {
		t.Errorf("nothing bound: %+v", got)
	}
}

const metricsText = `# HELP scheduler_schedule_attempts_total [STABLE] Number of attempts
# TYPE scheduler_schedule_attempts_total counter
scheduler_schedule_attempts_total{profile="default-scheduler",result="error"} 0
scheduler_schedule_attempts_total{profile="default-scheduler",result="scheduled"} 12
scheduler_schedule_attempts_total{profile="default-scheduler",result="unschedulable"} 3
scheduler_preemption_attempts_total 2
scheduler_pod_scheduling_sli_duration_seconds_bucket{attempts="1",le="0.01"} 2
scheduler_pod_scheduling_sli_duration_seconds_bucket{attempts="1",le="0.02"} 6
scheduler_pod_scheduling_sli_duration_seconds_bucket{attempts="1",le="+Inf"} 8
scheduler_pod_scheduling_sli_duration_seconds_bucket{attempts="2",le="0.01"} 0
scheduler_pod_scheduling_sli_duration_seconds_bucket{attempts="2",le="0.02"} 2
scheduler_pod_scheduling_sli_duration_seconds_bucket{attempts="2",le="+Inf"} 2
scheduler_pod_scheduling_sli_duration_seconds_sum{attempts="1"} 0.5
odd_metric{msg="a \"quoted\", {braced} value"} 7 1700000000000
broken{le="1" 3
`

func TestParseMetrics(t *testing.T) {
	m := parseMetrics(metricsText)
	if got := m.sum("scheduler_schedule_attempts_total", nil); got != 15 {
		t.Errorf("attempts %v, want 15", got)
	}
	if got := m.sum("scheduler_schedule_attempts_total", map[string]string{"result": "scheduled"}); got != 12 {
		t.Errorf("scheduled %v, want 12", got)
	}
	if got := m.sum("scheduler_preemption_attempts_total", nil); got != 2 {
		t.Errorf("preemption attempts %v, want 2", got)
	}
	if got := m.sum("odd_metric", map[string]string{"msg": `a "quoted", {braced} value`}); got != 7 {
		t.Errorf("odd_metric %v, want 7 (escaped label, timestamp)", got)
	}
	if got := m.sum("broken", nil); got != 0 {
		t.Errorf("a malformed line counts %v", got)
	}
	h := m.histogram("scheduler_pod_scheduling_sli_duration_seconds")
	want := []bucket{{0.01, 2}, {0.02, 8}, {math.Inf(1), 10}}
	if len(h) != len(want) {
		t.Fatalf("histogram %v, want %v", h, want)
	}
	for i := range want {
		if h[i] != want[i] {
			t.Fatalf("histogram %v, want %v", h, want)
		}
	}
}

func TestHistogramQuantile(t *testing.T) {
	before := []bucket{{0.01, 1}, {0.02, 1}, {0.04, 1}, {math.Inf(1), 1}}
	after := []bucket{{0.01, 3}, {0.02, 9}, {0.04, 11}, {math.Inf(1), 12}}
	d := histogramDelta(before, after) // 2, 8, 10, 11 cumulative
	for _, c := range []struct{ q, want float64 }{
		{0.1, 0.0055},  // rank 1.1 of 2 in (0, 0.01]
		{0.5, 0.01583}, // rank 5.5: 3.5 of 6 in (0.01, 0.02]
		{0.9, 0.039},   // rank 9.9: 1.9 of 2 in (0.02, 0.04]
		{0.99, 0.04},   // rank 10.89: in +Inf, the highest finite bound
	} {
		if got := histogramQuantile(c.q, d); math.Abs(got-c.want) > 1e-4 {
			t.Errorf("q%v = %v, want %v", c.q, got, c.want)
		}
	}
	if got := histogramQuantile(0.5, histogramDelta(after, after)); !math.IsNaN(got) {
		t.Errorf("no observations: %v, want NaN", got)
	}
}
