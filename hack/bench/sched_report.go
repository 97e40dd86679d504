package main

import (
	"fmt"
	"io"
)

// schedMarkdown writes the summary table of the scheduler scenarios (one
// line a scenario), then every row and the notes.
func schedMarkdown(out io.Writer, r *results, scenarios []schedScenario) {
	get := func(workload, metric string) (*float64, *float64, *float64, bool) {
		w, ok := r.index[[2]string{workload, metric}]
		if !ok {
			return nil, nil, nil, false
		}
		return w.Skiff, w.Upstream, w.Ratio, true
	}
	fmt.Fprintln(out, "| scenario | skiff pods/s | upstream pods/s | ratio skiff/upstream | skiff p50 / p99 (ms) | upstream p50 / p99 (ms) |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|")
	for _, s := range scenarios {
		sk, up, ratio, ok := get(s.name, "pods/s (first create → last bound)")
		if !ok {
			continue
		}
		sk50, up50, _, _ := get(s.name, "latency p50 (create → bound seen)")
		sk99, up99, _, _ := get(s.name, "latency p99 (create → bound seen)")
		fmt.Fprintf(out, "| %s | %s | %s | %s | %s / %s | %s / %s |\n", s.name, fmtValue(sk), fmtValue(up), fmtRatio(ratio),
			fmtValue(sk50), fmtValue(sk99), fmtValue(up50), fmtValue(up99))
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "All rows (skiff and upstream are the schedulers; the API server is skiff's for both):")
	fmt.Fprintln(out)
	r.markdown(out)
}

func fmtRatio(v *float64) string {
	if v == nil {
		return ""
	}
	return fmt.Sprintf("%.2f", *v)
}
