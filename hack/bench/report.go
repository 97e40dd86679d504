package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// row is one line of the report: a metric of a workload on both servers.
type row struct {
	Workload string   `json:"workload"`
	Metric   string   `json:"metric"`
	Unit     string   `json:"unit"`
	Skiff    *float64 `json:"skiff"`
	Upstream *float64 `json:"upstream"`
	Ratio    *float64 `json:"ratio"` // skiff/upstream
	// Failed says, per server, why the row's measurement failed (e.g.
	// watches the server closed); such a value is no result.
	Failed map[string]string `json:"failed,omitempty"`
}

// detail is the raw outcome of one client-driven measurement.
type detail struct {
	Server      string  `json:"server"`
	Workload    string  `json:"workload"`
	Measurement string  `json:"measurement"`
	Budget      string  `json:"budget"`
	Stats       opStats `json:"stats"`
}

// run is one server process started for a workload (or for a start-up
// sample).
type run struct {
	Server       string    `json:"server"`
	Workload     string    `json:"workload"`
	Started      time.Time `json:"started"`
	ReadySeconds float64   `json:"ready_seconds"`
	WallSeconds  float64   `json:"wall_seconds"`
	Load1Before  float64   `json:"load1_before"`
	Load1After   float64   `json:"load1_after"`
	CPU          cpuUse    `json:"cpu"`
	LogPath      string    `json:"log_path,omitempty"`
	Error        string    `json:"error,omitempty"`
}

// results collects the report; rows keep the order of their first value.
type results struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Host     hostInfo  `json:"host"`
	Config   any       `json:"config"`
	Rows     []*row    `json:"rows"`
	Details  []detail  `json:"details"`
	Runs     []run     `json:"runs"`
	Notes    []string  `json:"notes,omitempty"`

	index map[[2]string]*row
}

type hostInfo struct {
	CPUs            int    `json:"cpus"`
	GoVersion       string `json:"go_version"`
	SkiffRevision   string `json:"skiff_revision"`
	UpstreamVersion string `json:"upstream_version"`
	UpstreamBinary  string `json:"upstream_binary,omitempty"`
}

// set records value v of metric for server.
func (r *results) set(server, workload, metric, unit string, v float64) {
	if r.index == nil {
		r.index = map[[2]string]*row{}
	}
	key := [2]string{workload, metric}
	w := r.index[key]
	if w == nil {
		w = &row{Workload: workload, Metric: metric, Unit: unit}
		r.index[key] = w
		r.Rows = append(r.Rows, w)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	if server == "skiff" {
		w.Skiff = &v
	} else {
		w.Upstream = &v
	}
}

// fail marks metric of server failed, with the reason, and notes it.
func (r *results) fail(server, workload, metric, unit, reason string) {
	r.set(server, workload, metric, unit, math.NaN())
	w := r.index[[2]string{workload, metric}]
	if w.Failed == nil {
		w.Failed = map[string]string{}
	}
	w.Failed[server] = reason
	if server == "skiff" {
		w.Skiff = nil
	} else {
		w.Upstream = nil
	}
	r.note("%s: %s: %s FAILED: %s", server, workload, metric, reason)
}

// note records something odd, for the report and stderr.
func (r *results) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.Notes = append(r.Notes, msg)
	logf("NOTE: %s", msg)
}

// recorder writes one server's values.
type recorder struct {
	res      *results
	server   string
	workload string
}

func (rec recorder) set(metric, unit string, v float64) {
	rec.res.set(rec.server, rec.workload, metric, unit, v)
}

func (rec recorder) fail(metric, unit, reason string) {
	rec.res.fail(rec.server, rec.workload, metric, unit, reason)
}

// stats records throughput and latency percentiles of a measurement named
// what ("create", ...) under the metric prefix, plus its errors if any.
func (rec recorder) stats(what string, b budget, s opStats) {
	rec.res.Details = append(rec.res.Details, detail{Server: rec.server, Workload: rec.workload, Measurement: what, Budget: b.String(), Stats: s})
	rec.set(what, "ops/s", s.throughput())
	rec.set(what+" p50", "ms", ms(s.P50))
	rec.set(what+" p99", "ms", ms(s.P99))
	if s.Errors > 0 {
		rec.set(what+" errors", "count", float64(s.Errors))
		rec.res.note("%s: %s: %s: %d errors, e.g. %s", rec.server, rec.workload, what, s.Errors, strings.Join(s.ErrorSamples, " | "))
	}
}

// finish computes ratios; error counts missing for a server that ran are 0.
func (r *results) finish(servers []string) {
	zero := 0.0
	for _, w := range r.Rows {
		if w.Unit == "count" {
			for _, s := range servers {
				if s == "skiff" && w.Skiff == nil {
					w.Skiff = &zero
				} else if s == "upstream" && w.Upstream == nil {
					w.Upstream = &zero
				}
			}
		}
		if w.Skiff != nil && w.Upstream != nil && *w.Upstream != 0 {
			ratio := *w.Skiff / *w.Upstream
			w.Ratio = &ratio
		}
	}
}

// markdown writes the table and the notes.
func (r *results) markdown(out io.Writer) {
	fmt.Fprintln(out, "| workload | metric | skiff | upstream | ratio skiff/upstream |")
	fmt.Fprintln(out, "|---|---|---:|---:|---:|")
	for _, w := range r.Rows {
		ratio := ""
		if w.Ratio != nil {
			ratio = fmt.Sprintf("%.2f", *w.Ratio)
		}
		skiff, upstream := fmtValue(w.Skiff), fmtValue(w.Upstream)
		if reason, ok := w.Failed["skiff"]; ok {
			skiff = "FAIL: " + reason
		}
		if reason, ok := w.Failed["upstream"]; ok {
			upstream = "FAIL: " + reason
		}
		fmt.Fprintf(out, "| %s | %s (%s) | %s | %s | %s |\n", w.Workload, w.Metric, w.Unit, skiff, upstream, ratio)
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Ratio > 1: skiff is higher (better for ops/s; worse for ms, s, MiB).")
	if len(r.Notes) > 0 {
		fmt.Fprintln(out)
		fmt.Fprintln(out, "Notes:")
		for _, n := range r.Notes {
			fmt.Fprintf(out, "- %s\n", n)
		}
	}
}

func fmtValue(v *float64) string {
	switch {
	case v == nil:
		return ""
	case *v == math.Trunc(*v) || math.Abs(*v) >= 100:
		return fmt.Sprintf("%.0f", *v)
	case math.Abs(*v) >= 10:
		return fmt.Sprintf("%.1f", *v)
	case math.Abs(*v) >= 1:
		return fmt.Sprintf("%.2f", *v)
	default:
		return fmt.Sprintf("%.3f", *v)
	}
}

// writeJSON writes the results to path, creating its directory.
func (r *results) writeJSON(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
