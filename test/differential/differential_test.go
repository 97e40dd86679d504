package differential

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/test/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}

// TestDifferential sends every corpus case to skiff and to upstream
// kube-apiserver and compares the answers; see doc.go.
func TestDifferential(t *testing.T) {
	if bin, ok := harness.UpstreamBinary("kube-apiserver"); !ok {
		t.Skipf("upstream kube-apiserver not built (%s missing); run hack/differential.sh, or hack/upstream.sh kube-apiserver first", bin)
	}
	known, err := loadKnown("KNOWN.md")
	if err != nil {
		t.Fatal(err)
	}
	up, sk := startServers(t)

	resources, served, err := discover(up)
	if err != nil {
		t.Fatalf("upstream discovery: %v", err)
	}
	_, skiffServes, err := discover(sk)
	if err != nil {
		t.Fatalf("skiff discovery: %v", err)
	}
	cases, err := loadCorpus("testdata", func(typ string) bool { return served[typ] != nil && served[typ].HasStatus })
	if err != nil {
		t.Fatal(err)
	}

	r := &run{up: up, sk: sk, resources: resources, known: known, stats: map[string]*typeStats{}}
	byType := map[string][]*Case{}
	for _, c := range cases {
		byType[c.Type] = append(byType[c.Type], c)
	}
	for _, typ := range sortedTypes(byType) {
		t.Run(typ, func(t *testing.T) { r.runGroup(t, typ, byType[typ]) })
	}

	r.printSummary(skiffServes, byType)
	for _, e := range known {
		// Only entries of cases that ran can be stale (go test -run).
		ran := slices.Contains(r.ranCases, e.CaseOp[:strings.LastIndex(e.CaseOp, "/")])
		if ran && !e.used {
			t.Logf("KNOWN.md:%d matched nothing (fixed? remove it): %s %s", e.Line, e.CaseOp, e.Path)
		}
	}
	// Whatever upstream does, skiff never answers a request with a 5xx,
	// drops it, or panics.
	if len(r.serverErrors) > 0 {
		t.Errorf("skiff answered %d requests with 5xx or not at all:\n  %s", len(r.serverErrors), strings.Join(r.serverErrors, "\n  "))
	}
	if panics := grep(sk.server.LogPath, regexp.MustCompile(`(?i)panic`)); len(panics) > 0 {
		t.Errorf("skiff log mentions panics:\n  %s", strings.Join(panics, "\n  "))
	}
	select {
	case <-sk.server.Exited():
		t.Errorf("skiff exited during the run; log tail:\n%s", sk.server.LogTail(40))
	default:
	}
	for env, lines := range map[string][]string{"DIFF_REPORT": r.report, "DIFF_TRACE": r.trace} {
		if file := os.Getenv(env); file != "" {
			if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
				t.Error(err)
			}
		}
	}
}

// target is one server under test.
type target struct {
	name   string
	server *harness.Server
	client *http.Client
}

func startServers(t *testing.T) (up, sk *target) {
	dir, err := os.MkdirTemp("", "differential-")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	var upServer, skServer *harness.Server
	var upErr, skErr error
	wg.Go(func() {
		upServer, upErr = harness.StartUpstream(ctx, harness.Options{Dir: filepath.Join(dir, "upstream")})
	})
	// The API server alone, as upstream's: skiff server's controllers
	// would act on the corpus's objects (node IPAM sets spec.podCIDRs, the
	// node lifecycle controller taints Nodes) where upstream kube-apiserver
	// alone (no kube-controller-manager) never does.
	wg.Go(func() {
		skServer, skErr = harness.StartSkiff(ctx, harness.Options{Dir: filepath.Join(dir, "skiff"), Command: "apiserver"})
	})
	wg.Wait()
	t.Cleanup(func() {
		for _, s := range []*harness.Server{upServer, skServer} {
			if s != nil {
				if err := s.Stop(); err != nil {
					t.Logf("%s stopped with %v", s.Name, err)
				}
			}
		}
		if t.Failed() {
			t.Logf("server directories and logs kept in %s", dir)
		} else {
			os.RemoveAll(dir)
		}
	})
	if upErr != nil || skErr != nil {
		t.Fatalf("starting servers: upstream: %v; skiff: %v", upErr, skErr)
	}
	t.Logf("upstream ready in %s, skiff ready in %s", upServer.ReadyAt.Sub(upServer.StartedAt).Round(time.Millisecond),
		skServer.ReadyAt.Sub(skServer.StartedAt).Round(time.Millisecond))
	return newTarget(t, upServer), newTarget(t, skServer)
}

func newTarget(t *testing.T, s *harness.Server) *target {
	cfg, err := s.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	client.Timeout = 30 * time.Second
	return &target{name: s.Name, server: s, client: client}
}

// do sends one request. A transport error comes back as code 0.
func (tg *target) do(method, urlPath, contentType string, body []byte) Response {
	req, err := http.NewRequest(method, tg.server.URL+urlPath, bytes.NewReader(body))
	if err != nil {
		return Response{Body: []byte(err.Error())}
	}
	req.Header.Set("Accept", "application/json")
	// The user agent names the field manager of writes: the same for both.
	req.Header.Set("User-Agent", "differential")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := tg.client.Do(req)
	if err != nil {
		return Response{Body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{Body: []byte(err.Error())}
	}
	var warnings []string
	for _, w := range resp.Header.Values("Warning") {
		// 299 - "text": the text is what matters.
		warnings = append(warnings, strings.TrimSuffix(strings.TrimPrefix(w, `299 - "`), `"`))
	}
	sort.Strings(warnings)
	return Response{Code: resp.StatusCode, Body: data, Warnings: warnings}
}

// resource says where a kind is served.
type resource struct {
	Type         string // "services", "deployments.apps"
	GroupVersion string
	Plural       string
	Namespaced   bool
	HasStatus    bool
}

func (r *resource) collection(ns string) string {
	p := "/apis/" + r.GroupVersion
	if r.GroupVersion == "v1" {
		p = "/api/v1"
	}
	if r.Namespaced {
		p += "/namespaces/" + ns
	}
	return p + "/" + r.Plural
}

func (r *resource) item(ns, name string) string { return r.collection(ns) + "/" + name }

// discover maps "apiVersion/Kind" and type names to the resources a server
// serves.
func discover(tg *target) (byKind, byType map[string]*resource, err error) {
	cfg, err := tg.server.RESTConfig()
	if err != nil {
		return nil, nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	_, lists, err := dc.ServerGroupsAndResources()
	if err != nil && len(lists) == 0 {
		return nil, nil, err
	}
	byKind, byType = map[string]*resource{}, map[string]*resource{}
	for _, list := range lists {
		group, _, _ := strings.Cut(list.GroupVersion, "/")
		if !strings.Contains(list.GroupVersion, "/") {
			group = ""
		}
		for _, ar := range list.APIResources {
			if strings.Contains(ar.Name, "/") {
				continue
			}
			typ := ar.Name
			if group != "" {
				typ += "." + group
			}
			r := &resource{Type: typ, GroupVersion: list.GroupVersion, Plural: ar.Name, Namespaced: ar.Namespaced,
				HasStatus: slices.ContainsFunc(list.APIResources, func(sub metav1.APIResource) bool { return sub.Name == ar.Name+"/status" })}
			byKind[list.GroupVersion+"/"+ar.Kind] = r
			if _, ok := byType[typ]; !ok {
				byType[typ] = r
			}
		}
	}
	return byKind, byType, nil
}

// run is the state of one TestDifferential.
type run struct {
	up, sk       *target
	resources    map[string]*resource // by "apiVersion/Kind", from upstream
	known        []*knownEntry
	stats        map[string]*typeStats
	serverErrors []string
	report       []string // every difference, in KNOWN.md form (DIFF_REPORT)
	trace        []string // every op with both status codes (DIFF_TRACE)
	ranCases     []string
}

type typeStats struct {
	cases, ops, differing, known, unknown, paths int
}

func (r *run) runGroup(t *testing.T, typ string, cases []*Case) {
	ns := namespaceFor(typ)
	for _, tg := range []*target{r.up, r.sk} {
		nsBody := fmt.Sprintf(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":%q}}`, ns)
		if resp := tg.do("POST", "/api/v1/namespaces", "application/json", []byte(nsBody)); resp.Code != 201 && resp.Code != 409 {
			t.Fatalf("%s: creating namespace %s: %d %s", tg.name, ns, resp.Code, resp.Body)
		}
		// As kube-controller-manager would: pods need their service account
		// in upstream (ServiceAccount admission).
		saBody := `{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default"}}`
		if resp := tg.do("POST", "/api/v1/namespaces/"+ns+"/serviceaccounts", "application/json", []byte(saBody)); resp.Code != 201 && resp.Code != 409 {
			t.Fatalf("%s: creating service account default in %s: %d %s", tg.name, ns, resp.Code, resp.Body)
		}
	}
	t.Cleanup(func() {
		for _, tg := range []*target{r.up, r.sk} {
			tg.do("DELETE", "/api/v1/namespaces/"+ns, "", nil)
		}
	})
	st := &typeStats{}
	r.stats[typ] = st
	for _, c := range cases {
		st.cases++
		t.Run(strings.TrimPrefix(c.Name, typ+"/"), func(t *testing.T) { r.runCase(t, c, ns, st) })
	}
}

func (r *run) runCase(t *testing.T, c *Case, ns string, st *typeStats) {
	apiVersion, _ := c.Object["apiVersion"].(string)
	kind, _ := c.Object["kind"].(string)
	res := r.resources[apiVersion+"/"+kind]
	if res == nil {
		t.Fatalf("corpus: upstream does not serve %s %s", apiVersion, kind)
	}
	if res.Type != c.Type {
		t.Fatalf("corpus: a %s belongs in testdata/%s, not testdata/%s", kind, res.Type, c.Type)
	}
	obj := c.Object
	if res.Namespaced {
		obj = mergePatch(obj, map[string]any{"metadata": map[string]any{"namespace": ns}}).(map[string]any)
	}
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	if name == "" {
		// A generateName case: only dryrun and create make sense (an empty
		// name would address the whole collection).
		for _, op := range c.Ops {
			if op.Kind != "dryrun" && op.Kind != "create" && op.Kind != "deletecollection" {
				t.Fatalf("corpus: %s without metadata.name: only dryrun and create are possible, not %s", c.Name, op.ID)
			}
		}
	}
	r.ranCases = append(r.ranCases, c.Name)
	defer func() {
		// Leave no object behind for the next case (whatever the ops did).
		for _, tg := range []*target{r.up, r.sk} {
			if name != "" {
				tg.do("DELETE", res.item(ns, name), "", nil)
			}
		}
	}()

	for _, op := range c.Ops {
		st.ops++
		upResp := r.exec(op, r.up, res, ns, name, obj)
		skResp := r.exec(op, r.sk, res, ns, name, obj)
		caseOp := c.Name + "/" + op.ID
		if skResp.Code == 0 || skResp.Code >= 500 {
			r.serverErrors = append(r.serverErrors, fmt.Sprintf("%s: %s", caseOp, describe(skResp)))
		}
		if op.Kind == "create" {
			if upOK := upResp.Code >= 200 && upResp.Code < 300; upOK == c.Invalid {
				t.Errorf("corpus: %s: expected a%s create, upstream answered %s", caseOp,
					map[bool]string{true: "n invalid", false: " valid"}[c.Invalid], describe(upResp))
			}
		}

		diffs := compare(upResp, skResp)
		r.trace = append(r.trace, fmt.Sprintf("%s: upstream %s; skiff %s; %d diffs", caseOp, describe(upResp), describe(skResp), len(diffs)))
		if len(diffs) == 0 {
			continue
		}
		st.differing++
		st.paths += len(diffs)
		var unknown []string
		for _, d := range diffs {
			r.report = append(r.report, fmt.Sprintf("%s %s — %s", caseOp, d.Path, d))
			if e := matchKnown(r.known, caseOp, d.Path); e != nil {
				t.Logf("%s: known (KNOWN.md:%d, %s): %s", caseOp, e.Line, e.Reason, d)
			} else {
				unknown = append(unknown, d.String())
			}
		}
		if len(unknown) == 0 {
			st.known++
			continue
		}
		st.unknown++
		t.Errorf("%s: skiff differs from upstream (%d not in KNOWN.md):\n  %s", caseOp, len(unknown), strings.Join(unknown, "\n  "))
	}
}

// exec sends op to one server.
func (r *run) exec(op Op, tg *target, res *resource, ns, name string, obj map[string]any) Response {
	item := res.item(ns, name)
	switch op.Kind {
	case "dryrun":
		return tg.do("POST", res.collection(ns)+"?dryRun=All", "application/json", mustJSON(obj))
	case "create":
		return tg.do("POST", res.collection(ns), "application/json", mustJSON(obj))
	case "get":
		return tg.do("GET", item, "", nil)
	case "update", "status":
		// Read-modify-write, as clients do: the change applies to what this
		// server holds (the case object when it holds nothing), and a
		// conflict with a controller's write (skiff server runs some) is
		// retried, as client-go's RetryOnConflict does.
		dest := item
		if op.Kind == "status" {
			dest += "/status"
		}
		var resp Response
		for attempt := 0; attempt < 5; attempt++ {
			var current any = obj
			if got := tg.do("GET", item, "", nil); got.Code == 200 {
				current = decode(got.Body)
			}
			if resp = tg.do("PUT", dest, "application/json", mustJSON(mergePatch(current, op.Arg))); resp.Code != http.StatusConflict {
				break
			}
		}
		return resp
	case "patch-json":
		return tg.do("PATCH", item, "application/json-patch+json", mustJSON(op.Arg))
	case "patch-merge":
		return tg.do("PATCH", item, "application/merge-patch+json", mustJSON(op.Arg))
	case "patch-strategic":
		return tg.do("PATCH", item, "application/strategic-merge-patch+json", mustJSON(op.Arg))
	case "apply":
		meta := map[string]any{"name": name}
		if res.Namespaced {
			meta["namespace"] = ns
		}
		body := mergePatch(map[string]any{"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": meta}, op.Arg)
		return tg.do("PATCH", item+"?fieldManager=diff-apply", "application/apply-patch+yaml", mustJSON(body))
	case "delete":
		var body []byte
		if policy, _ := op.Arg.(string); policy != "" {
			body = mustJSON(map[string]any{"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": policy})
		}
		return tg.do("DELETE", item, "application/json", body)
	case "deletecollection":
		selector, _ := op.Arg.(string)
		return tg.do("DELETE", res.collection(ns)+"?labelSelector="+url.QueryEscape(selector), "", nil)
	case "scale":
		// Read-modify-write of the Scale: the argument is spec.replicas.
		var current any = map[string]any{"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": map[string]any{"name": name, "namespace": ns}}
		if got := tg.do("GET", item+"/scale", "", nil); got.Code == 200 {
			current = decode(got.Body)
		}
		return tg.do("PUT", item+"/scale", "application/json", mustJSON(mergePatch(current, map[string]any{"spec": map[string]any{"replicas": op.Arg}})))
	case "binding":
		// The argument is the node.
		return tg.do("POST", item+"/binding", "application/json", mustJSON(map[string]any{"apiVersion": "v1", "kind": "Binding",
			"metadata": map[string]any{"name": name}, "target": map[string]any{"kind": "Node", "name": op.Arg}}))
	case "eviction":
		body := map[string]any{"apiVersion": "policy/v1", "kind": "Eviction", "metadata": map[string]any{"name": name, "namespace": ns}}
		if opts, ok := op.Arg.(map[string]any); ok {
			body["deleteOptions"] = opts
		}
		return tg.do("POST", item+"/eviction", "application/json", mustJSON(body))
	}
	panic("unknown op " + op.Kind)
}

// mergePatch applies a JSON merge patch (RFC 7386) to a copy of target.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		if patch == nil {
			return target
		}
		return patch
	}
	out := map[string]any{}
	if t, ok := target.(map[string]any); ok {
		for k, v := range t {
			out[k] = v
		}
	}
	for k, v := range p {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = mergePatch(out[k], v)
		}
	}
	return out
}

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}

func sortedTypes[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// printSummary prints the per-type table, with a row for each type skiff
// serves that the corpus does not cover.
func (r *run) printSummary(skiffServes map[string]*resource, corpus map[string][]*Case) {
	var b strings.Builder
	b.WriteString("\ndifferential summary (ops: requests sent to both servers; differing = known + unknown)\n\n")
	b.WriteString("| type | cases | ops | differing ops | known | unknown | diff paths |\n|---|---|---|---|---|---|---|\n")
	var total typeStats
	for _, typ := range sortedTypes(r.stats) {
		s := r.stats[typ]
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d |\n", typ, s.cases, s.ops, s.differing, s.known, s.unknown, s.paths)
		total.cases += s.cases
		total.ops += s.ops
		total.differing += s.differing
		total.known += s.known
		total.unknown += s.unknown
		total.paths += s.paths
	}
	fmt.Fprintf(&b, "| **total** | %d | %d | %d | %d | %d | %d |\n", total.cases, total.ops, total.differing, total.known, total.unknown, total.paths)
	var uncovered []string
	for _, typ := range sortedTypes(skiffServes) {
		if corpus[typ] == nil {
			uncovered = append(uncovered, typ)
		}
	}
	if len(uncovered) > 0 {
		fmt.Fprintf(&b, "\nskiff serves types without cases: %s\n", strings.Join(uncovered, ", "))
	}
	var debts []string
	for _, e := range r.known {
		if e.Debt() && e.used {
			debts = append(debts, fmt.Sprintf("KNOWN.md:%d %s %s", e.Line, e.CaseOp, e.Path))
		}
	}
	fmt.Fprintf(&b, "\n%d KNOWN.md entries matched, %d of them debts (missing features):\n  %s\n", r.knownUsed(), len(debts), strings.Join(debts, "\n  "))
	fmt.Println(b.String())
}

func (r *run) knownUsed() int {
	n := 0
	for _, e := range r.known {
		if e.used {
			n++
		}
	}
	return n
}

func grep(file string, re *regexp.Regexp) []string {
	data, _ := os.ReadFile(file)
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if re.MatchString(line) {
			out = append(out, truncate(line, 300))
		}
	}
	return out
}
