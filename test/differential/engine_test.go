package differential

// Tests of the engine itself; they need no server and run everywhere.

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestCorpusLoads(t *testing.T) {
	cases, err := loadCorpus("testdata", func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("empty corpus")
	}
	for _, c := range cases {
		if c.Object["apiVersion"] == nil || c.Object["kind"] == nil {
			t.Errorf("%s: object without apiVersion or kind", c.Name)
		}
		if strings.Contains(string(mustJSON(c.Object)), "${") {
			t.Errorf("%s: unreplaced ${...}", c.Name)
		}
	}
}

func TestLoadCase(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pods", "x.yaml")
	os.MkdirAll(filepath.Dir(file), 0o755)
	os.WriteFile(file, []byte(`
object: {apiVersion: v1, kind: Pod, metadata: {name: x, namespace: "${NAMESPACE}"}}
update: {spec: {a: 1}}
ops: [create, update, {update: {b: 2}}, get, get]
`), 0o644)
	c, err := loadCase(file, func(string) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, op := range c.Ops {
		ids = append(ids, op.ID)
	}
	if want := []string{"create", "update", "update#2", "get", "get#2"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("op ids %v, want %v", ids, want)
	}
	if got := mustJSON(c.Ops[1].Arg); string(got) != `{"spec":{"a":1}}` {
		t.Errorf("update arg %s", got)
	}
	if c.Name != "pods/x" || c.Object["metadata"].(map[string]any)["namespace"] != "diff-pods" {
		t.Errorf("case %s, object %v", c.Name, c.Object)
	}
}

func TestCompare(t *testing.T) {
	up := Response{Code: 201, Body: []byte(`{"metadata":{"name":"web-abcde","generateName":"web-","uid":"u1",
		"creationTimestamp":"2024-01-01T00:00:00Z","labels":{"app.kubernetes.io/name":"a","controller-uid":"0b9e5d3c-1111-2222-3333-444455556666"}},
		"spec":{"type":"ClusterIP","clusterIP":"10.96.0.10","clusterIPs":["10.96.0.10"],"ports":[{"port":80,"nodePort":30001}]}}`)}
	sk := Response{Code: 201, Body: []byte(`{"metadata":{"name":"web-xyz12","generateName":"web-","uid":"u2",
		"creationTimestamp":"2025-02-02T10:00:00Z","labels":{"app.kubernetes.io/name":"b","controller-uid":"11111111-1111-2222-3333-444455556666"}},
		"spec":{"clusterIP":"10.96.0.99","clusterIPs":["10.96.0.99"],"ports":[{"port":80,"nodePort":31000},{"port":81}]}}`)}
	var got []string
	for _, d := range compare(up, sk) {
		got = append(got, d.String())
	}
	want := []string{
		`metadata.labels["app.kubernetes.io/name"]: upstream "a", skiff "b"`,
		`spec.ports[1]: upstream <missing>, skiff {"port":81}`,
		`spec.type: upstream "ClusterIP", skiff <missing>`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("diffs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	gen := `{"kind":"Namespace","metadata":{"name":"ns-k2x9q","generateName":"ns-","labels":{"kubernetes.io/metadata.name":"ns-k2x9q"}}}`
	if d := compare(Response{Code: 201, Body: []byte(gen)}, Response{Code: 201, Body: []byte(strings.ReplaceAll(gen, "k2x9q", "abcde"))}); len(d) != 0 {
		t.Errorf("generated names: %v", d)
	}
	if d := compare(Response{Code: 200, Body: []byte(`{"kind":"Pod","spec":{}}`)}, Response{Code: 200, Body: []byte(`{"kind":"Status","status":"Success"}`)}); len(d) != 1 || d[0].Path != "kind" {
		t.Errorf("object vs Status: %v", d)
	}

	invalid := Response{Code: 422, Body: []byte(`{"kind":"Status","reason":"Invalid","message":"a","details":{"causes":[{"field":"spec.b"},{"field":"spec.a"}]}}`)}
	invalid2 := Response{Code: 422, Body: []byte(`{"kind":"Status","reason":"Invalid","message":"b","details":{"causes":[{"field":"spec.a"},{"field":"spec.b"},{"field":"spec.a"}]}}`)}
	if d := compare(invalid, invalid2); len(d) != 0 {
		t.Errorf("same error, other message and cause order: %v", d)
	}
	if d := compare(invalid, Response{Code: 201, Body: []byte(`{}`)}); len(d) != 1 || d[0].Path != "code" {
		t.Errorf("422 vs 201: %v", d)
	}
}

func TestKnown(t *testing.T) {
	file := filepath.Join(t.TempDir(), "KNOWN.md")
	os.WriteFile(file, []byte("# Known\n\nprose — ignored\nservices/basic/create spec.type — not defaulted\n- pods/a/create spec.template — DEBT: x\nnodes/a/get metadata -- y\n"), 0o644)
	known, err := loadKnown(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(known) != 3 || known[0].Debt() || !known[1].Debt() {
		t.Errorf("entries %+v", known)
	}
	for _, wild := range []string{"pods/*/create spec — x\n", "pods/a/create * — x\n", "pods/a/create spec.* — x\n"} {
		os.WriteFile(file, []byte(wild), 0o644)
		if _, err := loadKnown(file); err == nil {
			t.Errorf("a wildcard entry was accepted: %s", wild)
		}
	}
	for _, tc := range []struct {
		caseOp, path string
		want         bool
	}{
		{"services/basic/create", "spec.type", true},
		{"services/basic/create", "spec.typeX", false},
		{"services/basic/update", "spec.type", false},
		{"pods/a/create", "spec.template.spec.x", true},
		{"pods/a/create", "spec.template[0]", true},
		{"pods/b/create", "spec.template", false},
		{"nodes/a/get", "metadata.labels", true},
		{"nodes/a/get", "spec", false},
	} {
		if got := matchKnown(known, tc.caseOp, tc.path) != nil; got != tc.want {
			t.Errorf("%s %s: known %v, want %v", tc.caseOp, tc.path, got, tc.want)
		}
	}
}
