package main

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
)

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// metrics is a scrape of /metrics.
type metrics []sample

// parseMetrics reads the Prometheus text exposition format (the lines a
// component-base /metrics serves; comments and malformed lines are
// skipped).
func parseMetrics(text string) metrics {
	var out metrics
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		s := sample{labels: map[string]string{}}
		rest := line
		if i := strings.IndexAny(line, "{ "); i < 0 {
			continue
		} else if line[i] == '{' {
			s.name = line[:i]
			end, ok := parseLabels(line[i+1:], s.labels)
			if !ok {
				continue
			}
			rest = line[i+1+end:]
		} else {
			s.name, rest = line[:i], line[i:]
		}
		f := strings.Fields(rest) // value [timestamp]
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		s.value = v
		out = append(out, s)
	}
	return out
}

// parseLabels reads `k="v",...}` into labels and returns the index just
// past the closing brace.
func parseLabels(s string, labels map[string]string) (int, bool) {
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == ',') {
			i++
		}
		if i < len(s) && s[i] == '}' {
			return i + 1, true
		}
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 || i+eq+1 >= len(s) || s[i+eq+1] != '"' {
			return 0, false
		}
		key := strings.TrimSpace(s[i : i+eq])
		i += eq + 2
		var val strings.Builder
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(s[i])
				}
				continue
			}
			val.WriteByte(s[i])
		}
		if i >= len(s) {
			return 0, false
		}
		i++ // the closing quote
		labels[key] = val.String()
	}
}

// sum adds the values of name whose labels include match.
func (m metrics) sum(name string, match map[string]string) float64 {
	total := 0.0
outer:
	for _, s := range m {
		if s.name != name {
			continue
		}
		for k, v := range match {
			if s.labels[k] != v {
				continue outer
			}
		}
		total += s.value
	}
	return total
}

// bucket is a histogram's cumulative count up to le.
type bucket struct {
	le    float64
	count float64
}

// histogram is name's buckets (name without _bucket), summed over all
// other labels, ordered by le.
func (m metrics) histogram(name string) []bucket {
	byLE := map[float64]float64{}
	for _, s := range m {
		if s.name != name+"_bucket" {
			continue
		}
		le, err := strconv.ParseFloat(s.labels["le"], 64) // "+Inf" parses
		if err != nil {
			continue
		}
		byLE[le] += s.value
	}
	var out []bucket
	for le, c := range byLE {
		out = append(out, bucket{le, c})
	}
	slices.SortFunc(out, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
	return out
}

// histogramDelta is after − before, bucket by bucket (the counts a run
// added to a scheduler's histogram).
func histogramDelta(before, after []bucket) []bucket {
	prev := map[float64]float64{}
	for _, b := range before {
		prev[b.le] = b.count
	}
	out := make([]bucket, len(after))
	for i, b := range after {
		out[i] = bucket{b.le, b.count - prev[b.le]}
	}
	return out
}

// histogramQuantile estimates the q-quantile (0..1) of cumulative buckets
// as Prometheus' histogram_quantile does: linear within the bucket that
// holds it, the highest finite bound if that is the +Inf bucket. NaN
// without observations.
func histogramQuantile(q float64, buckets []bucket) float64 {
	if len(buckets) == 0 {
		return math.NaN()
	}
	total := buckets[len(buckets)-1].count
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for i, b := range buckets {
		if b.count >= rank {
			if math.IsInf(b.le, 1) {
				if i == 0 {
					return math.NaN()
				}
				return buckets[i-1].le
			}
			if b.count == below {
				return b.le
			}
			return lower + (b.le-lower)*(rank-below)/(b.count-below)
		}
		lower, below = b.le, b.count
	}
	return lower
}
