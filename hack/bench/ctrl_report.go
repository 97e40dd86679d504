package main

import (
	"fmt"
	"io"
)

// ctrlMarkdown writes the summary table of the controller manager
// scenarios (one line a scenario), then every row and the notes.
func ctrlMarkdown(out io.Writer, r *results, rounds []ctrlRound) {
	get := func(workload, metric string) (*float64, *float64, *float64) {
		if w, ok := r.index[[2]string{workload, metric}]; ok {
			return w.Skiff, w.Upstream, w.Ratio
		}
		return nil, nil, nil
	}
	fmt.Fprintln(out, "| scenario | skiff s | upstream s | ratio skiff/upstream | CPU s skiff / upstream | peak RSS MiB skiff / upstream |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|")
	for _, rd := range rounds {
		for _, s := range rd.scenarios {
			sk, up, ratio := get(s.name, elapsedMetric)
			if sk == nil && up == nil {
				continue
			}
			skCPU, upCPU, _ := get(s.name, "controller manager CPU")
			skRSS, upRSS, _ := get(s.name, "controller manager peak RSS")
			fmt.Fprintf(out, "| %s | %s | %s | %s | %s / %s | %s / %s |\n", s.name, fmtValue(sk), fmtValue(up), fmtRatio(ratio),
				fmtValue(skCPU), fmtValue(upCPU), fmtValue(skRSS), fmtValue(upRSS))
		}
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "CPU and peak RSS are the controller manager's during the scenario. All rows (skiff and upstream are the controller managers; the API server, scheduler and agent are skiff's for both):")
	fmt.Fprintln(out)
	r.markdown(out)
}
