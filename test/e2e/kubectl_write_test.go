package e2e

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var _, serviceCIDR, _ = net.ParseCIDR("10.96.0.0/12")

func testApply(t *testing.T, k *kctl) {
	app := testdata(t, "app")
	out := k.ok(t, "apply", "-f", app)
	assertContains(t, out, "deployment.apps/web created", "service/web created", "configmap/web-config created")

	out = k.ok(t, "apply", "-f", app)
	assertContains(t, out, "deployment.apps/web unchanged", "service/web unchanged", "configmap/web-config unchanged")

	// What was applied is what is stored, with defaults filled in.
	assertEqual(t, "configmap data", k.jsonpath(t, "{.data.color},{.data.greeting}", "cm", "web-config"), "blue,hello")
	assertEqual(t, "service ports", k.jsonpath(t, `{range .spec.ports[*]}{.name}:{.port}/{.protocol}>{.targetPort} {end}`, "svc", "web"),
		"http:80/TCP>http metrics:9090/TCP>9090")
	assertEqual(t, "service type", k.jsonpath(t, "{.spec.type}", "svc", "web"), "ClusterIP")
	// The server runs with the default --service-cluster-ip-range.
	if ip := k.jsonpath(t, "{.spec.clusterIP}", "svc", "web"); !serviceCIDR.Contains(net.ParseIP(ip)) {
		t.Errorf("service web has cluster IP %q, want one from %s", ip, serviceCIDR)
	}
	assertEqual(t, "deployment replicas", k.jsonpath(t, "{.spec.replicas}", "deploy", "web"), "1")
	assertEqual(t, "defaulted deployment strategy", k.jsonpath(t, "{.spec.strategy.type}", "deploy", "web"), "RollingUpdate")
	if k.jsonpath(t, `{.metadata.annotations.kubectl\.kubernetes\.io/last-applied-configuration}`, "cm", "web-config") == "" {
		t.Errorf("configmap web-config has no last-applied-configuration annotation")
	}

	// A changed manifest is reported as configured.
	changed := configMapYAML("web-config", map[string]string{"app": "web"}, map[string]string{"color": "blue", "greeting": "hello", "extra": "1"})
	assertContains(t, k.okStdin(t, changed, "apply", "-f", "-"), "configmap/web-config configured")
	assertEqual(t, "applied extra key", k.jsonpath(t, "{.data.extra}", "cm", "web-config"), "1")
	assertContains(t, k.ok(t, "apply", "-f", app), "configmap/web-config configured")
	assertEqual(t, "pruned extra key", k.jsonpath(t, "{.data.extra}", "cm", "web-config"), "")
}

// objectVersions returns "kind/name rv=<resourceVersion> gen=<generation>"
// for every object in the manifests at path.
func objectVersions(t *testing.T, k *kctl, path string) string {
	t.Helper()
	return k.jsonpath(t, `{range .items[*]}{.kind}/{.metadata.name} rv={.metadata.resourceVersion} gen={.metadata.generation}{"\n"}{end}`, "-f", path)
}

func testServerSideApply(t *testing.T, k *kctl) {
	app := testdata(t, "app")
	applyApp(t, k)

	out := k.ok(t, "apply", "--server-side", "-f", app)
	assertContains(t, out, "deployment.apps/web serverside-applied", "service/web serverside-applied", "configmap/web-config serverside-applied")
	before := objectVersions(t, k, app)
	if strings.Count(before, "\n") != 2 || !strings.Contains(before, "Deployment/web rv=") {
		t.Fatalf("unexpected `get -f app` output:\n%s", before)
	}

	out = k.ok(t, "apply", "--server-side", "-f", app)
	assertContains(t, out, "deployment.apps/web serverside-applied", "service/web serverside-applied", "configmap/web-config serverside-applied")
	if after := objectVersions(t, k, app); after != before {
		t.Errorf("an identical second server-side apply changed the objects:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	managers := k.jsonpath(t, `{range .metadata.managedFields[*]}{.manager}/{.operation} {end}`, "cm", "web-config")
	assertContains(t, managers, "kubectl/Apply")

	// A server-side apply of a changed manifest updates the object.
	changed := configMapYAML("web-config", map[string]string{"app": "web"}, map[string]string{"color": "blue", "greeting": "hi"})
	assertContains(t, k.okStdin(t, changed, "apply", "--server-side", "-f", "-"), "configmap/web-config serverside-applied")
	assertEqual(t, "server-side applied greeting", k.jsonpath(t, "{.data.greeting}", "cm", "web-config"), "hi")
	k.ok(t, "apply", "--server-side", "-f", app)
	assertEqual(t, "server-side applied greeting", k.jsonpath(t, "{.data.greeting}", "cm", "web-config"), "hello")
}

func testServerSideApplyConflict(t *testing.T, k *kctl) {
	mine := configMapYAML("ssa-conflict", nil, map[string]string{"color": "blue"})
	theirs := configMapYAML("ssa-conflict", nil, map[string]string{"color": "red"})

	assertContains(t, k.okStdin(t, mine, "apply", "--server-side", "-f", "-"), "configmap/ssa-conflict serverside-applied")

	out := k.failStdin(t, theirs, "apply", "--server-side", "--field-manager=intruder", "-f", "-")
	assertContains(t, out, "conflict", `"kubectl"`, ".data.color")
	assertEqual(t, "color after the rejected apply", k.jsonpath(t, "{.data.color}", "cm", "ssa-conflict"), "blue")

	out = k.okStdin(t, theirs, "apply", "--server-side", "--field-manager=intruder", "--force-conflicts", "-f", "-")
	assertContains(t, out, "configmap/ssa-conflict serverside-applied")
	assertEqual(t, "color after the forced apply", k.jsonpath(t, "{.data.color}", "cm", "ssa-conflict"), "red")
	managers := k.jsonpath(t, `{range .metadata.managedFields[*]}{.manager}/{.operation} {end}`, "cm", "ssa-conflict")
	assertContains(t, managers, "intruder/Apply")

	// Now the original manager conflicts in turn.
	out = k.failStdin(t, mine, "apply", "--server-side", "-f", "-")
	assertContains(t, out, "conflict", `"intruder"`)
}

func testScale(t *testing.T, k *kctl) {
	assertContains(t, k.ok(t, "create", "deployment", "scale-me", "--image=nginx:1.27"), "deployment.apps/scale-me created")
	assertContains(t, k.ok(t, "scale", "deploy/scale-me", "--replicas=3"), "deployment.apps/scale-me scaled")
	assertEqual(t, ".spec.replicas", k.jsonpath(t, "{.spec.replicas}", "deploy", "scale-me"), "3")

	var scale struct {
		APIVersion, Kind string
		Spec             struct{ Replicas int }
	}
	raw := k.ok(t, "get", "--raw", "/apis/apps/v1/namespaces/"+k.ns+"/deployments/scale-me/scale")
	if err := json.Unmarshal([]byte(raw), &scale); err != nil {
		t.Fatalf("scale subresource: %v\n%s", err, raw)
	}
	assertEqual(t, "scale kind", scale.Kind, "Scale")
	assertEqual(t, "scale apiVersion", scale.APIVersion, "autoscaling/v1")
	assertEqual(t, "scale spec.replicas", scale.Spec.Replicas, 3)

	// --current-replicas is a precondition checked against the scale subresource.
	out := k.fail(t, "scale", "deploy/scale-me", "--current-replicas=2", "--replicas=5")
	assertContains(t, out, "Expected replicas to be 2, was 3")
	assertEqual(t, ".spec.replicas after failed precondition", k.jsonpath(t, "{.spec.replicas}", "deploy", "scale-me"), "3")
	k.ok(t, "scale", "deploy/scale-me", "--current-replicas=3", "--replicas=0")
	assertEqual(t, ".spec.replicas", k.jsonpath(t, "{.spec.replicas}", "deploy", "scale-me"), "0")
}

func testLabelAndAnnotate(t *testing.T, k *kctl) {
	k.ok(t, "create", "configmap", "labelled", "--from-literal=a=b")

	assertContains(t, k.ok(t, "label", "cm", "labelled", "tier=backend"), "configmap/labelled labeled")
	assertEqual(t, "label tier", k.jsonpath(t, "{.metadata.labels.tier}", "cm", "labelled"), "backend")
	assertEqual(t, "selected by label", k.ok(t, "get", "cm", "-l", "tier=backend", "-o", "name"), "configmap/labelled")
	assertEqual(t, "selected by set-based selector", k.ok(t, "get", "cm", "-l", "tier in (backend,frontend)", "-o", "name"), "configmap/labelled")
	assertEqual(t, "selected by negated label", k.ok(t, "get", "cm", "-l", "tier!=backend,tier", "-o", "name"), "")

	assertContains(t, k.fail(t, "label", "cm", "labelled", "tier=frontend"), "--overwrite is false")
	assertContains(t, k.ok(t, "label", "cm", "labelled", "tier=frontend", "--overwrite"), "configmap/labelled labeled")
	assertEqual(t, "label tier", k.jsonpath(t, "{.metadata.labels.tier}", "cm", "labelled"), "frontend")
	assertContains(t, k.ok(t, "label", "cm", "labelled", "tier-"), "configmap/labelled unlabeled")
	assertEqual(t, "removed label", k.jsonpath(t, "{.metadata.labels.tier}", "cm", "labelled"), "")

	// kubectl 1.27 says "annotate", later ones "annotated".
	assertMatches(t, k.ok(t, "annotate", "cm", "labelled", "note=hello world"), `configmap/labelled annotated?\b`)
	assertEqual(t, "annotation", k.jsonpath(t, "{.metadata.annotations.note}", "cm", "labelled"), "hello world")
	k.ok(t, "annotate", "cm", "labelled", "note=bye", "--overwrite")
	assertEqual(t, "annotation", k.jsonpath(t, "{.metadata.annotations.note}", "cm", "labelled"), "bye")
	assertMatches(t, k.ok(t, "annotate", "cm", "labelled", "note-"), `configmap/labelled annotated?\b`)
	assertEqual(t, "removed annotation", k.jsonpath(t, "{.metadata.annotations.note}", "cm", "labelled"), "")
}

func testPatch(t *testing.T, k *kctl) {
	k.ok(t, "create", "deployment", "patch-me", "--image=nginx:1.27", "--port=80")
	gen := func() int {
		n, err := strconv.Atoi(k.jsonpath(t, "{.metadata.generation}", "deploy", "patch-me"))
		if err != nil {
			t.Fatalf("generation: %v", err)
		}
		return n
	}
	gen0 := gen()

	// JSON patch (RFC 6902).
	out := k.ok(t, "patch", "deploy", "patch-me", "--type=json", "-p", `[{"op":"add","path":"/metadata/labels/patched","value":"json"}]`)
	assertContains(t, out, "deployment.apps/patch-me patched")
	assertEqual(t, "label from json patch", k.jsonpath(t, "{.metadata.labels.patched}", "deploy", "patch-me"), "json")
	// A failing "test" operation rejects the whole patch.
	k.fail(t, "patch", "deploy", "patch-me", "--type=json", "-p",
		`[{"op":"test","path":"/metadata/labels/patched","value":"nope"},{"op":"add","path":"/metadata/labels/other","value":"x"}]`)
	assertEqual(t, "labels after a failed json patch", k.jsonpath(t, "{.metadata.labels.patched},{.metadata.labels.other}", "deploy", "patch-me"), "json,")

	// JSON merge patch (RFC 7386).
	out = k.ok(t, "patch", "deploy", "patch-me", "--type=merge", "-p", `{"metadata":{"annotations":{"merged":"yes"}}}`)
	assertContains(t, out, "deployment.apps/patch-me patched")
	assertEqual(t, "annotation from merge patch", k.jsonpath(t, "{.metadata.annotations.merged}", "deploy", "patch-me"), "yes")
	if g := gen(); g != gen0 {
		t.Errorf("metadata-only patches changed generation from %d to %d", gen0, g)
	}

	// Strategic merge patch (the default): the container list is merged by
	// name, so the container keeps its port.
	out = k.ok(t, "patch", "deploy", "patch-me", "-p", `{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.28"}]}}}}`)
	assertContains(t, out, "deployment.apps/patch-me patched")
	assertEqual(t, "containers after strategic patch",
		k.jsonpath(t, `{range .spec.template.spec.containers[*]}{.name}={.image}:{.ports[0].containerPort} {end}`, "deploy", "patch-me"),
		"nginx=nginx:1.28:80")
	if g := gen(); g != gen0+1 {
		t.Errorf("a spec patch changed generation from %d to %d, want %d", gen0, g, gen0+1)
	}

	// The same patch again changes nothing.
	rv := k.jsonpath(t, "{.metadata.resourceVersion}", "deploy", "patch-me")
	out = k.ok(t, "patch", "deploy", "patch-me", "-p", `{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.28"}]}}}}`)
	assertContains(t, out, "deployment.apps/patch-me patched (no change)")
	assertEqual(t, "resourceVersion after a no-op patch", k.jsonpath(t, "{.metadata.resourceVersion}", "deploy", "patch-me"), rv)

	// A patch that makes the object invalid is rejected.
	out = k.fail(t, "patch", "deploy", "patch-me", "--type=merge", "-p", `{"spec":{"replicas":-1}}`)
	assertContains(t, out, "spec.replicas")
}

func testEdit(t *testing.T, k *kctl) {
	k.ok(t, "create", "configmap", "edit-me", "--from-literal=color=blue")
	editor := filepath.Join(t.TempDir(), "editor.sh")
	script := "#!/bin/sh\nexec sed -i -e 's/color: blue/color: green/' \"$1\"\n"
	if err := os.WriteFile(editor, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	out := k.okWith(t, procOpts{env: []string{"KUBE_EDITOR=" + editor}}, "edit", "configmap/edit-me")
	assertContains(t, out, "configmap/edit-me edited")
	assertEqual(t, "color after edit", k.jsonpath(t, "{.data.color}", "cm", "edit-me"), "green")

	// EDITOR works too, and saving an unchanged file changes nothing.
	r := k.runWith(procOpts{env: []string{"EDITOR=true"}}, "edit", "cm", "edit-me")
	if r.err != nil {
		t.Fatalf("edit without changes failed:\n%s", r)
	}
	assertContains(t, r.combined(), "Edit cancelled, no changes made.")
}

func testDelete(t *testing.T, k *kctl) {
	k.ok(t, "create", "configmap", "del-me", "--from-literal=a=b")
	assertContains(t, k.ok(t, "delete", "configmap", "del-me"), `configmap "del-me" deleted`)
	assertContains(t, k.fail(t, "get", "configmap", "del-me"), "NotFound", `configmaps "del-me" not found`)

	k.ok(t, "create", "deployment", "del-deploy", "--image=nginx:1.27")
	assertContains(t, k.ok(t, "delete", "deployment", "del-deploy"), `deployment.apps "del-deploy" deleted`)
	assertContains(t, k.fail(t, "get", "deploy", "del-deploy"), `deployments.apps "del-deploy" not found`)

	k.ok(t, "create", "configmap", "del-l1")
	k.ok(t, "create", "configmap", "del-l2")
	k.ok(t, "create", "configmap", "del-keep")
	k.ok(t, "label", "configmap", "del-l1", "del-l2", "group=doomed")
	out := k.ok(t, "delete", "configmap", "-l", "group=doomed")
	assertContains(t, out, `configmap "del-l1" deleted`, `configmap "del-l2" deleted`)
	assertEqual(t, "remaining doomed configmaps", k.ok(t, "get", "cm", "-l", "group=doomed", "-o", "name"), "")
	assertEqual(t, "kept configmap", k.ok(t, "get", "cm", "del-keep", "-o", "name"), "configmap/del-keep")

	assertContains(t, k.fail(t, "delete", "configmap", "never-existed"), "NotFound")
	assertEqual(t, "delete --ignore-not-found", k.ok(t, "delete", "configmap", "never-existed", "--ignore-not-found"), "")

	// Delete by manifest, with a precondition-free grace period.
	k.ok(t, "apply", "-f", testdata(t, "pod.yaml"))
	assertContains(t, k.ok(t, "delete", "-f", testdata(t, "pod.yaml"), "--grace-period=0", "--force"), `pod "web-pod"`)
	assertEqual(t, "pod after delete", k.ok(t, "get", "pod", "web-pod", "-o", "name", "--ignore-not-found"), "")
}

func testWatch(t *testing.T, k *kctl) {
	labels := map[string]string{"e2e-watch": "yes"}
	k.okStdin(t, configMapYAML("watch-sentinel", labels, nil), "create", "-f", "-")

	w := k.start(t, "get", "cm", "-w", "--output-watch-events", "-l", "e2e-watch=yes")
	event := func(typ, name string) func([]string) bool {
		return func(f []string) bool { return len(f) >= 2 && f[0] == typ && f[1] == name }
	}
	// The initial list is printed as ADDED events; once the sentinel shows
	// up, the watch is established.
	w.waitLine(t, "ADDED watch-sentinel", event("ADDED", "watch-sentinel"))

	k.okStdin(t, configMapYAML("watched", labels, map[string]string{"k": "v1"}), "create", "-f", "-")
	w.waitLine(t, "ADDED watched", event("ADDED", "watched"))

	k.ok(t, "patch", "cm", "watched", "--type=merge", "-p", `{"data":{"k":"v2","k2":"x"}}`)
	w.waitLine(t, "MODIFIED watched", event("MODIFIED", "watched"))

	k.ok(t, "delete", "cm", "watched")
	w.waitLine(t, "DELETED watched", event("DELETED", "watched"))

	// Objects outside the selector are not reported.
	k.ok(t, "create", "cm", "unwatched")
	k.okStdin(t, configMapYAML("watched-2", labels, nil), "create", "-f", "-")
	w.waitLine(t, "ADDED watched-2", event("ADDED", "watched-2"))
	for _, line := range w.seen {
		if strings.Contains(line, "unwatched") {
			t.Errorf("watch with selector e2e-watch=yes reported %q", line)
		}
	}
}

func testDryRun(t *testing.T, k *kctl) {
	out := k.ok(t, "create", "configmap", "dry-server", "--from-literal=a=b", "--dry-run=server")
	assertContains(t, out, "configmap/dry-server created (server dry run)")
	assertContains(t, k.fail(t, "get", "cm", "dry-server"), "NotFound")

	out = k.ok(t, "create", "configmap", "dry-server", "--from-literal=a=b", "--dry-run=server", "-o", "json")
	var obj struct {
		Metadata struct{ Name, Namespace, UID string }
		Data     map[string]string
	}
	if err := json.Unmarshal([]byte(out), &obj); err != nil {
		t.Fatalf("server dry run -o json: %v\n%s", err, out)
	}
	assertEqual(t, "dry-run name", obj.Metadata.Name, "dry-server")
	assertEqual(t, "dry-run namespace", obj.Metadata.Namespace, k.ns)
	assertEqual(t, "dry-run data", obj.Data["a"], "b")
	assertContains(t, k.fail(t, "get", "cm", "dry-server"), "NotFound")

	out = k.ok(t, "create", "configmap", "dry-client", "--from-literal=a=b", "--dry-run=client")
	assertContains(t, out, "configmap/dry-client created (dry run)")
	out = k.ok(t, "create", "configmap", "dry-client", "--from-literal=a=b", "--dry-run=client", "-o", "yaml")
	assertContains(t, out, "name: dry-client", "a: b")
	assertContains(t, k.fail(t, "get", "cm", "dry-client"), "NotFound")

	out = k.okStdin(t, configMapYAML("dry-apply", nil, map[string]string{"a": "b"}), "apply", "--dry-run=server", "-f", "-")
	assertContains(t, out, "configmap/dry-apply created (server dry run)")
	assertContains(t, k.fail(t, "get", "cm", "dry-apply"), "NotFound")

	// Server dry runs of updates and deletes leave the object alone.
	k.ok(t, "create", "configmap", "dry-keep", "--from-literal=a=b")
	rv := k.jsonpath(t, "{.metadata.resourceVersion}", "cm", "dry-keep")
	assertContains(t, k.ok(t, "label", "cm", "dry-keep", "x=y", "--dry-run=server"), "configmap/dry-keep labeled (server dry run)")
	// kubectl >= 1.33 says `deleted from <ns> namespace`.
	assertMatches(t, k.ok(t, "delete", "cm", "dry-keep", "--dry-run=server"), `configmap "dry-keep" deleted( from \S+ namespace)? \(server dry run\)`)
	assertEqual(t, "dry-keep after dry runs",
		k.jsonpath(t, "{.metadata.name} {.metadata.labels.x} {.metadata.resourceVersion}", "cm", "dry-keep"), "dry-keep  "+rv)
}
