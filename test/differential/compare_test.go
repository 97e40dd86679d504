package differential

// Comparing two responses: normalising what a server chooses by itself,
// then listing the JSON paths whose values differ.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// Response is what one server answered.
type Response struct {
	Code int    // HTTP status; 0 when no response came
	Body []byte // or the transport error
	// Warnings are the Warning headers' texts (RFC 7234 299 warnings, as
	// the apiserver sends for deprecated fields and the like), sorted.
	Warnings []string
}

// Diff is one JSON path whose values differ.
type Diff struct {
	Path            string
	Upstream, Skiff string // shown values, "<missing>" when absent
}

func (d Diff) String() string {
	return fmt.Sprintf("%s: upstream %s, skiff %s", d.Path, d.Upstream, d.Skiff)
}

const missing = "<missing>"

// compare lists how skiff's response differs from upstream's. Successes are
// compared as normalised JSON; errors by status code, reason and the set of
// details.causes[].field (message texts are free to differ).
func compare(up, sk Response) []Diff {
	diffs := compareBody(up, sk)
	if !slices.Equal(up.Warnings, sk.Warnings) {
		diffs = append(diffs, Diff{"warnings", fmt.Sprintf("%q", up.Warnings), fmt.Sprintf("%q", sk.Warnings)})
	}
	return diffs
}

// compareBody compares the status codes and bodies.
func compareBody(up, sk Response) []Diff {
	upOK, skOK := up.Code >= 200 && up.Code < 300, sk.Code >= 200 && sk.Code < 300
	switch {
	case upOK && skOK:
		var diffs []Diff
		if up.Code != sk.Code {
			diffs = append(diffs, Diff{"code", fmt.Sprint(up.Code), fmt.Sprint(sk.Code)})
		}
		u, s := normalize(decode(up.Body)), normalize(decode(sk.Body))
		if uk, sk := kindOf(u), kindOf(s); uk != sk {
			// Another kind of answer (an object or a Status): its fields
			// would only repeat that.
			return append(diffs, Diff{"kind", quote(uk), quote(sk)})
		}
		return append(diffs, diffJSON(u, s)...)
	case up.Code != sk.Code:
		return []Diff{{"code", describe(up), describe(sk)}}
	}
	// Both failed with the same code.
	var diffs []Diff
	upStatus, skStatus := statusOf(up), statusOf(sk)
	if upStatus.Reason != skStatus.Reason {
		diffs = append(diffs, Diff{"reason", quote(upStatus.Reason), quote(skStatus.Reason)})
	}
	if u, s := upStatus.causeFields(), skStatus.causeFields(); !slices.Equal(u, s) {
		diffs = append(diffs, Diff{"causes", fmt.Sprint(u), fmt.Sprint(s)})
	}
	return diffs
}

// status is the part of a metav1.Status error that is compared.
type status struct {
	Kind    string `json:"kind"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	Details struct {
		Causes []struct {
			Field string `json:"field"`
		} `json:"causes"`
	} `json:"details"`
}

func statusOf(r Response) status {
	var s status
	if json.Unmarshal(r.Body, &s) != nil || s.Kind != "Status" {
		return status{Message: string(r.Body)}
	}
	return s
}

// causeFields is the sorted set of details.causes[].field.
func (s status) causeFields() []string {
	var fields []string
	for _, c := range s.Details.Causes {
		if !slices.Contains(fields, c.Field) {
			fields = append(fields, c.Field)
		}
	}
	sort.Strings(fields)
	return fields
}

func kindOf(v any) string {
	m, _ := v.(map[string]any)
	k, _ := m["kind"].(string)
	return k
}

// describe summarises a response for a status-code difference:
// `422 Invalid [spec.ports[0].port] "Service \"x\" is invalid: ..."`.
func describe(r Response) string {
	if r.Code >= 200 && r.Code < 300 {
		return fmt.Sprint(r.Code)
	}
	s := statusOf(r)
	out := fmt.Sprint(r.Code)
	if s.Reason != "" {
		out += " " + s.Reason
	}
	if f := s.causeFields(); len(f) > 0 {
		out += " " + fmt.Sprint(f)
	}
	return out + " " + quote(truncate(s.Message, 160))
}

func decode(body []byte) any {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "<not JSON: " + truncate(string(body), 100) + ">"
	}
	return v
}

var (
	generatedSuffix = regexp.MustCompile(`^(kube-api-access-)[a-z0-9]{5}$`)
	uuid            = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// normalize replaces what each server chooses by itself with placeholders:
// uids (also where copied, as in a Job's controller-uid label), resourceVersions, every RFC 3339 time (creationTimestamp,
// managedFields[].time, conditions, ...), generateName suffixes, and a
// Service's allocated cluster IPs and node ports.
func normalize(v any) any {
	n := normalizer{}
	if m, ok := v.(map[string]any); ok {
		meta, _ := m["metadata"].(map[string]any)
		gen, _ := meta["generateName"].(string)
		if name, _ := meta["name"].(string); gen != "" && strings.HasPrefix(name, gen) {
			// The generated name, wherever it is repeated (a namespace's
			// kubernetes.io/metadata.name label).
			n.name, n.generated = name, gen+"<suffix>"
		}
	}
	return n.value(v)
}

type normalizer struct{ name, generated string }

func (n normalizer) value(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, val := range v {
			out[k] = n.field(k, val)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, val := range v {
			out[i] = n.value(val)
		}
		return out
	case string:
		if _, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return "<time>"
		}
		if uuid.MatchString(v) {
			return "<uid>"
		}
		if n.name != "" && v == n.name {
			return n.generated
		}
		return generatedSuffix.ReplaceAllString(v, "$1<suffix>")
	}
	return v
}

func (n normalizer) field(key string, v any) any {
	switch key {
	case "uid":
		return placeholder(v, "<uid>")
	case "resourceVersion":
		return placeholder(v, "<resourceVersion>")
	case "clusterIP":
		return ipPlaceholder(v)
	case "clusterIPs":
		if ips, ok := v.([]any); ok {
			out := make([]any, len(ips))
			for i, ip := range ips {
				out[i] = ipPlaceholder(ip)
			}
			return out
		}
	case "nodePort", "healthCheckNodePort":
		if n, ok := v.(json.Number); ok && n != "0" {
			return "<port>"
		}
	}
	return n.value(v)
}

func placeholder(v any, p string) any {
	if s, ok := v.(string); ok && s != "" {
		return p
	}
	return v
}

func ipPlaceholder(v any) any {
	if s, ok := v.(string); ok && net.ParseIP(s) != nil {
		return "<ip>"
	}
	return v
}

// diffJSON lists the paths where two decoded JSON values differ.
func diffJSON(up, sk any) []Diff {
	var diffs []Diff
	walkDiff("", up, sk, true, true, &diffs)
	return diffs
}

func walkDiff(path string, up, sk any, upOK, skOK bool, diffs *[]Diff) {
	if !upOK || !skOK {
		*diffs = append(*diffs, Diff{orRoot(path), show(up, upOK), show(sk, skOK)})
		return
	}
	switch u := up.(type) {
	case map[string]any:
		if s, ok := sk.(map[string]any); ok {
			keys := map[string]bool{}
			for k := range u {
				keys[k] = true
			}
			for k := range s {
				keys[k] = true
			}
			for _, k := range sortedKeys(keys) {
				uv, uok := u[k]
				sv, sok := s[k]
				walkDiff(joinKey(path, k), uv, sv, uok, sok, diffs)
			}
			return
		}
	case []any:
		if s, ok := sk.([]any); ok {
			for i := 0; i < max(len(u), len(s)); i++ {
				var uv, sv any
				if i < len(u) {
					uv = u[i]
				}
				if i < len(s) {
					sv = s[i]
				}
				walkDiff(fmt.Sprintf("%s[%d]", path, i), uv, sv, i < len(u), i < len(s), diffs)
			}
			return
		}
	}
	if a, b := show(up, true), show(sk, true); a != b {
		*diffs = append(*diffs, Diff{orRoot(path), a, b})
	}
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// joinKey appends a map key to a path: spec.type, metadata.labels["app.kubernetes.io/name"].
func joinKey(path, key string) string {
	if !plainKey.MatchString(key) {
		return fmt.Sprintf("%s[%q]", path, key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "."
	}
	return path
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// show renders a value compactly for a diff line.
func show(v any, present bool) string {
	if !present {
		return missing
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	return truncate(strings.TrimSuffix(b.String(), "\n"), 120)
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
