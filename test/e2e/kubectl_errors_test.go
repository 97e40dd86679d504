package e2e

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// testBadInput: bad requests get 4xx answers with useful messages, never a
// 500 or a crash (fail() checks that for every call).
func testBadInput(t *testing.T, k *kctl) {
	t.Run("MalformedJSON", func(t *testing.T) {
		malformed := testdata(t, "bad/malformed.json")
		data, err := os.ReadFile(malformed)
		if err != nil {
			t.Fatal(err)
		}
		out := k.failStdin(t, string(data), "create", "-f", "-")
		if !strings.Contains(out, "error parsing") && !strings.Contains(out, "BadRequest") {
			t.Errorf("malformed JSON on stdin: want a parse error, got:\n%s", out)
		}
		// The same bytes sent straight to the server.
		out = k.fail(t, "create", "--raw", "/api/v1/namespaces/"+k.ns+"/configmaps", "-f", malformed)
		assertContains(t, out, "BadRequest")
		assertContains(t, k.fail(t, "get", "cm", "broken-json"), "NotFound")
	})

	t.Run("MalformedYAML", func(t *testing.T) {
		malformed := testdata(t, "bad/malformed.yaml")
		data, err := os.ReadFile(malformed)
		if err != nil {
			t.Fatal(err)
		}
		out := k.failStdin(t, string(data), "create", "-f", "-")
		assertContains(t, out, "error parsing")
		out = k.fail(t, "create", "--raw", "/api/v1/namespaces/"+k.ns+"/configmaps", "-f", malformed)
		assertContains(t, out, "BadRequest")
	})

	t.Run("UnknownField", func(t *testing.T) {
		manifest := testdata(t, "bad/unknown-field.yaml")
		out := k.fail(t, "create", "--validate=strict", "-f", manifest)
		assertContains(t, out, `unknown field "spec.bogus"`)
		assertContains(t, k.fail(t, "get", "deploy", "bogus-deploy"), "NotFound")

		// With --validate=warn the server drops the field and warns.
		r := k.run("create", "--validate=warn", "-f", manifest)
		if r.err != nil {
			t.Fatalf("create --validate=warn failed:\n%s", r)
		}
		assertContains(t, r.stdout, "deployment.apps/bogus-deploy created")
		assertContains(t, r.stderr, "Warning:", `unknown field "spec.bogus"`)
		if strings.Contains(k.ok(t, "get", "deploy", "bogus-deploy", "-o", "json"), "bogus\":") {
			t.Errorf("the unknown field was stored")
		}
		k.ok(t, "delete", "-f", manifest)
	})

	t.Run("InvalidName", func(t *testing.T) {
		out := k.fail(t, "create", "-f", testdata(t, "bad/invalid-name.yaml"))
		assertContains(t, out, `The ConfigMap "Bad_Name" is invalid`, `metadata.name: Invalid value: "Bad_Name"`)
		out = k.fail(t, "create", "configmap", "Bad_Name", "--from-literal=a=b")
		assertContains(t, out, `metadata.name: Invalid value: "Bad_Name"`)
	})

	t.Run("AlreadyExistsAndConflict", func(t *testing.T) {
		dup := configMapYAML("dup", nil, map[string]string{"a": "b"})
		k.okStdin(t, dup, "create", "-f", "-")
		assertContains(t, k.failStdin(t, dup, "create", "-f", "-"), "(AlreadyExists)", `configmaps "dup" already exists`)
		// `create configmap` wraps the same error.
		assertContains(t, k.fail(t, "create", "configmap", "dup"), `configmaps "dup" already exists`)

		stale := k.ok(t, "get", "configmap", "dup", "-o", "json")
		k.ok(t, "label", "configmap", "dup", "bumped=yes")
		out := k.failStdin(t, stale, "replace", "-f", "-")
		assertContains(t, out, "Conflict", "the object has been modified")
		assertEqual(t, "label after the conflicting replace", k.jsonpath(t, "{.metadata.labels.bumped}", "cm", "dup"), "yes")
	})

	t.Run("MissingNamespace", func(t *testing.T) {
		out := k.fail(t, "create", "configmap", "orphan", "-n", "no-such-namespace")
		assertContains(t, out, `namespaces "no-such-namespace" not found`)
	})

	t.Run("UnsupportedFieldSelector", func(t *testing.T) {
		out := k.fail(t, "get", "cm", "--field-selector=data.color=blue")
		// Kubernetes 1.37's wording; older servers said "field label not supported".
		assertContains(t, out, "BadRequest", `"data.color" is not a known field selector`)
		// Supported field selectors work.
		k.ok(t, "create", "configmap", "by-field")
		assertEqual(t, "field selector metadata.name",
			k.ok(t, "get", "cm", "--field-selector=metadata.name=by-field", "-o", "name"), "configmap/by-field")
	})

	t.Run("NotFoundPaths", func(t *testing.T) {
		assertContains(t, k.fail(t, "get", "--raw", "/api/v1/namespaces/"+k.ns+"/configmaps/does-not-exist"), "NotFound")
		assertContains(t, k.fail(t, "get", "--raw", "/apis/nope.example.com/v1"), "NotFound")
		assertContains(t, k.fail(t, "get", "widgets"), `the server doesn't have a resource type "widgets"`)
	})
}

func testRawEndpoints(t *testing.T, k *kctl) {
	for _, path := range []string{"/healthz", "/livez", "/readyz"} {
		assertEqual(t, path, k.ok(t, "get", "--raw", path), "ok")
	}
	assertContains(t, k.ok(t, "get", "--raw", "/readyz?verbose"), "readyz check passed")

	var version struct{ GitVersion, Major, Minor, GoVersion, Platform string }
	out := k.ok(t, "get", "--raw", "/version")
	if err := json.Unmarshal([]byte(out), &version); err != nil {
		t.Fatalf("/version: %v\n%s", err, out)
	}
	if !strings.HasPrefix(version.GitVersion, "v1.37") {
		t.Errorf("/version gitVersion = %q, want v1.37.*", version.GitVersion)
	}

	metrics := k.ok(t, "get", "--raw", "/metrics")
	assertContains(t, metrics, "# HELP", "# TYPE", "apiserver_request_total")

	var v2 struct {
		Swagger     string
		Paths       map[string]json.RawMessage
		Definitions map[string]json.RawMessage
	}
	out = k.ok(t, "get", "--raw", "/openapi/v2")
	if err := json.Unmarshal([]byte(out), &v2); err != nil {
		t.Fatalf("/openapi/v2: %v\n%.2000s", err, out)
	}
	assertEqual(t, "/openapi/v2 swagger", v2.Swagger, "2.0")
	for _, def := range []string{"io.k8s.api.apps.v1.Deployment", "io.k8s.api.core.v1.ConfigMap", "io.k8s.api.batch.v1.CronJob"} {
		if _, ok := v2.Definitions[def]; !ok {
			t.Errorf("/openapi/v2 lacks definition %s", def)
		}
	}
	if _, ok := v2.Paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]; !ok {
		t.Errorf("/openapi/v2 lacks the deployments/scale path")
	}

	var v3 struct {
		Paths map[string]struct {
			ServerRelativeURL string `json:"serverRelativeURL"`
		}
	}
	out = k.ok(t, "get", "--raw", "/openapi/v3")
	if err := json.Unmarshal([]byte(out), &v3); err != nil {
		t.Fatalf("/openapi/v3: %v\n%s", err, out)
	}
	for _, gv := range []string{"api/v1", "apis/apps/v1", "apis/batch/v1", "apis/coordination.k8s.io/v1", "apis/discovery.k8s.io/v1", "apis/events.k8s.io/v1"} {
		if _, ok := v3.Paths[gv]; !ok {
			t.Errorf("/openapi/v3 lacks %s; it has %d paths", gv, len(v3.Paths))
		}
	}
	var apps struct {
		OpenAPI    string
		Components struct{ Schemas map[string]json.RawMessage }
	}
	out = k.ok(t, "get", "--raw", "/openapi/v3/apis/apps/v1")
	if err := json.Unmarshal([]byte(out), &apps); err != nil {
		t.Fatalf("/openapi/v3/apis/apps/v1: %v\n%.2000s", err, out)
	}
	if !strings.HasPrefix(apps.OpenAPI, "3.") {
		t.Errorf("/openapi/v3/apis/apps/v1 openapi = %q, want 3.*", apps.OpenAPI)
	}
	if _, ok := apps.Components.Schemas["io.k8s.api.apps.v1.Deployment"]; !ok {
		t.Errorf("/openapi/v3/apis/apps/v1 lacks schema io.k8s.api.apps.v1.Deployment")
	}
}
