package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestCRD drives CustomResourceDefinitions with every kubectl found: one
// subtest per version, one after the other (each defines widgets in a group
// of its own and deletes the CRD at the end, so that `kubectl get widgets`
// is never ambiguous).
func TestCRD(t *testing.T) {
	paths := findKubectls()
	if len(paths) == 0 {
		t.Skip("no kubectl found: pass -kubectl=PATH or KUBECTL=PATH, install the Google Cloud SDK kubectls, or run hack/build-kubectl.sh")
	}
	srv := sharedServer(t)
	for _, p := range paths {
		bin := resolveKubectl(t, p)
		t.Run(bin.version, func(t *testing.T) {
			k := newKctl(t, bin, srv)
			testCRD(t, k)
		})
	}
}

// crdYAML is a namespaced Widget CRD in group: a structural schema with a
// required field, an enum, bounds, defaults and an object keeping unknown
// fields; status and scale subresources; printer columns.
func crdYAML(group string) string {
	return `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.` + group + `
spec:
  group: ` + group + `
  names: {kind: Widget, listKind: WidgetList, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    additionalPrinterColumns:
    - {name: Size, type: string, jsonPath: .spec.size}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Ready, type: integer, jsonPath: .status.readyReplicas}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas, labelSelectorPath: .status.selector}
    schema:
      openAPIV3Schema:
        type: object
        description: A Widget is a test resource of skiff.
        properties:
          spec:
            type: object
            description: WidgetSpec describes the widget wanted.
            required: [size]
            properties:
              size: {type: string, description: Size of the widget., enum: [small, medium, large]}
              replicas: {type: integer, minimum: 0, maximum: 10, default: 1}
              color: {type: string, default: blue}
              extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status:
            type: object
            properties:
              replicas: {type: integer}
              readyReplicas: {type: integer}
              selector: {type: string}
`
}

func widgetYAML(group, name, spec string) string {
	return fmt.Sprintf("apiVersion: %s/v1\nkind: Widget\nmetadata:\n  name: %s\nspec: %s\n", group, name, spec)
}

// okSoon is okStdin, retried for up to 30s while kubectl does not know the
// new resource yet (discovery follows the CRD's establishment).
func (k *kctl) okSoon(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := k.runWith(procOpts{stdin: stdin}, args...)
		if r.err == nil {
			assertNoCrash(t, r)
			return strings.TrimSpace(r.stdout)
		}
		out := r.combined()
		unknown := strings.Contains(out, "no matches for kind") || strings.Contains(out, "doesn't have a resource type") ||
			strings.Contains(out, "could not find the requested resource")
		if !unknown || time.Now().After(deadline) {
			t.Fatalf("kubectl failed:\n%s", r)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func testCRD(t *testing.T, k *kctl) {
	group := k.ns + ".e2e.skiff.test"
	crd := "widgets." + group
	t.Cleanup(func() {
		if r := k.run("delete", "crd", crd, "--ignore-not-found", "--timeout=60s"); r.err != nil {
			t.Errorf("deleting the CRD:\n%s", r)
		}
	})

	assertContains(t, k.okStdin(t, crdYAML(group), "apply", "-f", "-"), "customresourcedefinition.apiextensions.k8s.io/"+crd+" created")
	k.ok(t, "wait", "--for=condition=Established", "--timeout=60s", "crd/"+crd)
	assertContains(t, k.ok(t, "get", "crd", crd), crd)

	// Create; defaults applied; printer columns.
	assertContains(t, k.okSoon(t, widgetYAML(group, "w1", `{size: small, extra: {free: [1, x]}}`), "apply", "-f", "-"),
		"widget."+group+"/w1 created")
	assertEqual(t, "defaulted spec", k.jsonpath(t, "{.spec.color} {.spec.replicas} {.spec.extra.free[1]}", "widget", "w1"), "blue 1 x")
	out := k.ok(t, "get", "widgets")
	assertHeaders(t, out, "NAME SIZE REPLICAS READY AGE")
	if row := tableRow(out, "w1"); len(row) < 3 || row[1] != "small" || row[2] != "1" {
		t.Errorf("row of w1 %q in:\n%s", row, out)
	}

	// Schema validation: 422 naming the fields.
	out = k.failStdin(t, widgetYAML(group, "bad", `{size: huge, replicas: 20}`), "apply", "-f", "-")
	assertContains(t, out, `The Widget "bad" is invalid`, "spec.replicas: Invalid value: 20", `spec.size: Unsupported value: "huge"`)
	out = k.failStdin(t, widgetYAML(group, "bad", `{replicas: 2}`), "create", "-f", "-")
	assertContains(t, out, `The Widget "bad" is invalid`, "spec.size: Required value")

	// Unknown fields: refused by strict validation, pruned otherwise.
	out = k.failStdin(t, widgetYAML(group, "w2", `{size: large, bogus: 1}`), "create", "--validate=strict", "-f", "-")
	assertContains(t, out, `unknown field "spec.bogus"`)
	k.okStdin(t, widgetYAML(group, "w2", `{size: large, bogus: 1}`), "create", "--validate=false", "-f", "-")
	assertEqual(t, "pruned spec", k.jsonpath(t, "{.spec}", "widget", "w2"), `{"color":"blue","replicas":1,"size":"large"}`)

	// Status subresource, then the Ready column; the main resource keeps
	// its generation.
	k.ok(t, "patch", "widget", "w1", "--subresource=status", "--type=merge", "-p", `{"status":{"replicas":1,"readyReplicas":1,"selector":"app=w1"}}`)
	if row := tableRow(k.ok(t, "get", "widgets"), "w1"); len(row) < 4 || row[3] != "1" {
		t.Errorf("row of w1 after the status update: %q", row)
	}
	assertEqual(t, "generation after a status update", k.jsonpath(t, "{.metadata.generation}", "widget", "w1"), "1")

	// Scale subresource.
	assertContains(t, k.ok(t, "scale", "widget", "w1", "--replicas=3"), "widget."+group+"/w1 scaled")
	assertEqual(t, "spec.replicas after scale", k.jsonpath(t, "{.spec.replicas}", "widget", "w1"), "3")
	assertContains(t, k.fail(t, "scale", "widget", "w1", "--replicas=11"), "spec.replicas")

	// Server-side apply, twice: the second is a no-op.
	ssa := widgetYAML(group, "w3", `{size: medium}`)
	assertContains(t, k.okStdin(t, ssa, "apply", "--server-side", "-f", "-"), "widget."+group+"/w3 serverside-applied")
	rv := k.jsonpath(t, "{.metadata.resourceVersion}", "widget", "w3")
	assertContains(t, k.okStdin(t, ssa, "apply", "--server-side", "-f", "-"), "widget."+group+"/w3 serverside-applied")
	assertEqual(t, "resourceVersion after the same apply", k.jsonpath(t, "{.metadata.resourceVersion}", "widget", "w3"), rv)
	assertContains(t, k.jsonpath(t, "{.metadata.managedFields[*].manager}", "widget", "w3"), "kubectl")

	// kubectl explain reads the schema from the OpenAPI.
	out = k.ok(t, "explain", "widgets.spec", "--api-version="+group+"/v1")
	assertContains(t, out, "WidgetSpec describes the widget wanted.", "Size of the widget.")
	assertContains(t, k.ok(t, "explain", "widgets", "--api-version="+group+"/v1"), "A Widget is a test resource of skiff.")
	assertContains(t, k.ok(t, "explain", "customresourcedefinitions.spec.versions"), "served")

	// api-resources lists the new resource.
	assertMatches(t, k.ok(t, "api-resources", "--api-group="+group), `(?m)^widgets\s+`+strings.ReplaceAll(group, ".", `\.`)+`/v1\s+true\s+Widget`)

	// Watch: ADDED, MODIFIED, DELETED.
	w := k.start(t, "get", "widgets", "-w", "--output-watch-events")
	event := func(typ, name string) func([]string) bool {
		return func(f []string) bool { return len(f) >= 2 && f[0] == typ && f[1] == name }
	}
	w.waitLine(t, "ADDED w1", event("ADDED", "w1"))
	k.okStdin(t, widgetYAML(group, "w4", `{size: small}`), "create", "-f", "-")
	w.waitLine(t, "ADDED w4", event("ADDED", "w4"))
	k.ok(t, "patch", "widget", "w4", "--type=merge", "-p", `{"spec":{"size":"large"}}`)
	w.waitLine(t, "MODIFIED w4", event("MODIFIED", "w4"))
	k.ok(t, "delete", "widget", "w4")
	w.waitLine(t, "DELETED w4", event("DELETED", "w4"))

	// Deleting a namespace deletes its custom resources (skiff's namespace
	// controller finds them through discovery).
	doomed := k.ns + "-doomed"
	k.ok(t, "create", "namespace", doomed)
	k.okStdin(t, widgetYAML(group, "in-doomed", `{size: small}`), "create", "-n", doomed, "-f", "-")
	k.ok(t, "delete", "namespace", doomed, "--timeout=60s")
	assertEqual(t, "namespace after delete", k.ok(t, "get", "namespace", doomed, "-o", "name", "--ignore-not-found"), "")
	assertEqual(t, "widgets of the deleted namespace", k.ok(t, "get", "widgets", "-A", "-o", "name", "--field-selector=metadata.namespace="+doomed), "")

	// Deleting the CRD deletes its custom resources: defined again, it has none.
	assertContains(t, k.ok(t, "delete", "crd", crd, "--timeout=60s"), crd)
	assertEqual(t, "CRD after delete", k.ok(t, "get", "crd", crd, "-o", "name", "--ignore-not-found"), "")
	k.okStdin(t, crdYAML(group), "apply", "-f", "-")
	k.ok(t, "wait", "--for=condition=Established", "--timeout=60s", "crd/"+crd)
	assertEqual(t, "widgets after the CRD was deleted and defined again", k.okSoon(t, "", "get", "widgets", "-A", "-o", "name"), "")
}
