package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// kubectlTests run, in this order, once per kubectl version, each version in
// its own namespace of one shared server. A test needing the sample app
// (testdata/app) or pod applies it first: apply is idempotent.
var kubectlTests = []struct {
	name string
	fn   func(*testing.T, *kctl)
}{
	{"Namespaces", testNamespaces},
	{"Version", testVersion},
	{"Apply", testApply},
	{"ServerSideApply", testServerSideApply},
	{"ServerSideApplyConflict", testServerSideApplyConflict},
	{"WideHeaders", testWideHeaders},
	{"PodWideHeaders", testPodWideHeaders},
	{"OutputFormats", testOutputFormats},
	{"Describe", testDescribe},
	{"Scale", testScale},
	{"LabelAndAnnotate", testLabelAndAnnotate},
	{"Patch", testPatch},
	{"Edit", testEdit},
	{"Delete", testDelete},
	{"Explain", testExplain},
	{"APIResources", testAPIResources},
	{"Watch", testWatch},
	{"DryRun", testDryRun},
	{"BadInput", testBadInput},
	{"RuntimeClassAdmission", testRuntimeClassAdmission},
	{"RawEndpoints", testRawEndpoints},
	{"ShortNamesAndAll", testShortNamesAndAll},
	{"UserWithoutRBAC", testUserWithoutRBAC},
}

// TestKubectl drives every kubectl found (see findKubectls) against one
// skiff server; subtests are named by kubectl version.
func TestKubectl(t *testing.T) {
	forEachKubectl(t, func(t *testing.T, k *kctl) {
		t.Logf("kubectl %s (%s) in namespace %s", k.bin.version, k.bin.path, k.ns)
		for _, tc := range kubectlTests {
			t.Run(tc.name, func(t *testing.T) { tc.fn(t, k) })
		}
	})
}

// applyApp applies the sample app: Deployment, Service and ConfigMap "web".
func applyApp(t *testing.T, k *kctl) {
	t.Helper()
	k.ok(t, "apply", "-f", testdata(t, "app"))
}

func applyPod(t *testing.T, k *kctl) {
	t.Helper()
	k.ok(t, "apply", "-f", testdata(t, "pod.yaml"))
}

func testNamespaces(t *testing.T, k *kctl) {
	out := k.ok(t, "get", "ns")
	assertHeaders(t, out, "NAME STATUS AGE")
	for _, ns := range []string{"default", "kube-system", "kube-public", "kube-node-lease", k.ns} {
		row := tableRow(out, ns)
		if row == nil {
			t.Errorf("namespace %s not listed:\n%s", ns, out)
		} else if row[1] != "Active" {
			t.Errorf("namespace %s has status %q, want Active", ns, row[1])
		}
	}

	names := strings.Fields(k.ok(t, "get", "namespaces", "-o", "name"))
	for _, want := range []string{"namespace/default", "namespace/kube-system", "namespace/kube-public", "namespace/kube-node-lease"} {
		if !contains(names, want) {
			t.Errorf("`get namespaces -o name` lacks %s: %q", want, names)
		}
	}
	assertEqual(t, "phase of default", k.jsonpath(t, "{.status.phase}", "ns", "default"), "Active")
}

func testVersion(t *testing.T, k *kctl) {
	var v struct {
		ClientVersion *struct{ GitVersion string } `json:"clientVersion"`
		ServerVersion *struct {
			GitVersion string
			Major      string
			Minor      string
		} `json:"serverVersion"`
	}
	out := k.ok(t, "version", "-o", "json")
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("kubectl version -o json: %v\n%s", err, out)
	}
	if v.ClientVersion == nil || v.ServerVersion == nil {
		t.Fatalf("clientVersion or serverVersion missing:\n%s", out)
	}
	assertEqual(t, "clientVersion.gitVersion", v.ClientVersion.GitVersion, k.bin.version)
	if !strings.HasPrefix(v.ServerVersion.GitVersion, "v1.37") {
		t.Errorf("serverVersion.gitVersion = %q, want v1.37.*", v.ServerVersion.GitVersion)
	}
	// kubectl before 1.28 prints version.Info{... GitVersion:"v1.37..."}.
	assertMatches(t, k.ok(t, "version"), `Server Version: (v1\.37|version\.Info\{.*GitVersion:"v1\.37)`)
}

func testWideHeaders(t *testing.T, k *kctl) {
	applyApp(t, k)
	out := k.ok(t, "get", "deploy,svc,cm", "-o", "wide")
	assertHeaders(t, out,
		"NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS IMAGES SELECTOR",
		"NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE SELECTOR",
		"NAME DATA AGE",
	)
	if row := tableRow(out, "deployment.apps/web"); row == nil {
		t.Errorf("no row for deployment.apps/web:\n%s", out)
	} else {
		// No controllers run, so nothing is ready: READY is 0/<replicas>.
		assertContains(t, strings.Join(row, " "), "0/1", " web nginx:1.27 app=web")
	}
	if row := tableRow(out, "service/web"); row == nil {
		t.Errorf("no row for service/web:\n%s", out)
	} else {
		assertContains(t, strings.Join(row, " "), "ClusterIP", "80/TCP,9090/TCP", "app=web")
	}
	if row := tableRow(out, "configmap/web-config"); row == nil {
		t.Errorf("no row for configmap/web-config:\n%s", out)
	} else {
		assertEqual(t, "DATA of web-config", row[1], "2")
	}
}

func testPodWideHeaders(t *testing.T, k *kctl) {
	applyPod(t, k)
	out := k.ok(t, "get", "pods", "-o", "wide")
	assertHeaders(t, out, "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES")
	if row := tableRow(out, "web-pod"); row == nil {
		t.Errorf("no row for web-pod:\n%s", out)
	} else {
		// Unscheduled: 0/1 containers ready, phase Pending, no IP, no node.
		assertEqual(t, "READY of web-pod", row[1], "0/1")
		assertEqual(t, "STATUS of web-pod", row[2], "Pending")
	}
}

func testOutputFormats(t *testing.T, k *kctl) {
	applyApp(t, k)

	var cm struct {
		APIVersion string
		Kind       string
		Metadata   struct{ Name, Namespace, UID, ResourceVersion string }
		Data       map[string]string
	}
	k.getJSON(t, &cm, "cm", "web-config")
	assertEqual(t, "json apiVersion", cm.APIVersion, "v1")
	assertEqual(t, "json kind", cm.Kind, "ConfigMap")
	assertEqual(t, "json metadata.name", cm.Metadata.Name, "web-config")
	assertEqual(t, "json metadata.namespace", cm.Metadata.Namespace, k.ns)
	assertEqual(t, "json data.color", cm.Data["color"], "blue")
	if cm.Metadata.UID == "" || cm.Metadata.ResourceVersion == "" {
		t.Errorf("uid or resourceVersion not set: %+v", cm.Metadata)
	}

	yaml := k.ok(t, "get", "cm", "web-config", "-o", "yaml")
	assertContains(t, yaml, "apiVersion: v1", "kind: ConfigMap", "  name: web-config", "  namespace: "+k.ns, "  color: blue")

	assertEqual(t, "-o name", k.ok(t, "get", "cm", "web-config", "-o", "name"), "configmap/web-config")
	assertEqual(t, "-o name (deployment)", k.ok(t, "get", "deployment", "web", "-o", "name"), "deployment.apps/web")

	assertEqual(t, "jsonpath .data.color", k.jsonpath(t, "{.data.color}", "cm", "web-config"), "blue")
	assertEqual(t, "jsonpath image", k.jsonpath(t, "{.spec.template.spec.containers[0].image}", "deploy", "web"), "nginx:1.27")
	names := strings.Fields(k.jsonpath(t, "{.items[*].metadata.name}", "cm"))
	if !contains(names, "web-config") {
		t.Errorf("jsonpath over the list lacks web-config: %q", names)
	}

	out := k.ok(t, "get", "cm", "web-config", "-o", "custom-columns=NAME:.metadata.name,COLOR:.data.color,NS:.metadata.namespace")
	lines := strings.Split(out, "\n")
	if len(lines) != 2 {
		t.Fatalf("custom-columns: want a header and one row:\n%s", out)
	}
	assertEqual(t, "custom-columns header", normalize(lines[0]), "NAME COLOR NS")
	assertEqual(t, "custom-columns row", normalize(lines[1]), "web-config blue "+k.ns)

	assertEqual(t, "go-template",
		k.ok(t, "get", "cm", "web-config", "-o", `go-template={{.metadata.name}}={{index .data "color"}}`),
		"web-config=blue")
	assertEqual(t, "go-template over a list",
		k.ok(t, "get", "svc", "-o", `go-template={{range .items}}{{.metadata.name}}:{{len .spec.ports}} {{end}}`),
		"web:2")

	wide := k.ok(t, "get", "cm", "-o", "wide")
	assertHeaders(t, wide, "NAME DATA AGE")
}

func testDescribe(t *testing.T, k *kctl) {
	applyApp(t, k)
	out := k.ok(t, "describe", "configmap", "web-config")
	assertMatches(t, out,
		`(?m)^Name:\s+web-config$`,
		`(?m)^Namespace:\s+`+k.ns+`$`,
		`(?m)^Labels:\s+app=web$`,
		`(?m)^Data$`,
		`(?m)^color:$`,
		`(?m)^blue$`,
	)

	out = k.ok(t, "describe", "deployment", "web")
	assertMatches(t, out,
		`(?m)^Name:\s+web$`,
		`(?m)^Namespace:\s+`+k.ns+`$`,
		`(?m)^Selector:\s+app=web$`,
		`(?m)^Replicas:\s+1 desired`,
		`(?m)^StrategyType:\s+RollingUpdate$`,
		`(?m)^Pod Template:$`,
		`(?m)^\s+Image:\s+nginx:1.27$`,
		`(?m)^\s+Port:\s+80/TCP`,
	)

	// describe by file and by label selector also work.
	assertMatches(t, k.ok(t, "describe", "-f", testdata(t, "app/service.yaml")),
		`(?m)^Name:\s+web$`, `(?m)^Type:\s+ClusterIP$`, `(?m)^Port:\s+http\s+80/TCP$`)
	assertMatches(t, k.ok(t, "describe", "cm", "-l", "app=web"), `(?m)^Name:\s+web-config$`)
}

func testExplain(t *testing.T, k *kctl) {
	out := k.ok(t, "explain", "deployment.spec.strategy")
	assertContains(t, out, "RollingUpdate")
	if !strings.Contains(out, "DESCRIPTION") && !strings.Contains(out, "FIELDS") {
		t.Errorf("explain deployment.spec.strategy has neither DESCRIPTION nor FIELDS:\n%s", out)
	}
	assertContains(t, out, "rollingUpdate", "type")

	out = k.ok(t, "explain", "pods")
	assertMatches(t, out, `(?m)^KIND:\s+Pod$`, `(?m)^VERSION:\s+v1$`)
	assertContains(t, out, "spec", "status")

	out = k.fail(t, "explain", "deployment.spec.bogus")
	assertContains(t, out, `"bogus"`)
}

func testAPIResources(t *testing.T, k *kctl) {
	out := k.ok(t, "api-resources")
	assertHeaders(t, out, "NAME SHORTNAMES APIVERSION NAMESPACED KIND")
	// Rows are NAME [SHORTNAMES] APIVERSION NAMESPACED KIND.
	short := map[string]string{}
	for _, line := range strings.Split(out, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) == 5 {
			if _, seen := short[f[0]]; !seen {
				short[f[0]] = f[1]
			}
		} else if len(f) == 4 {
			if _, seen := short[f[0]]; !seen {
				short[f[0]] = ""
			}
		}
	}
	for name, want := range map[string]string{
		"pods": "po", "services": "svc", "deployments": "deploy", "configmaps": "cm",
		"namespaces": "ns", "replicasets": "rs", "statefulsets": "sts", "daemonsets": "ds",
		"cronjobs": "cj", "serviceaccounts": "sa", "persistentvolumeclaims": "pvc",
		"persistentvolumes": "pv", "nodes": "no", "events": "ev", "endpoints": "ep",
		"replicationcontrollers": "rc", "limitranges": "limits", "resourcequotas": "quota",
		"secrets": "", "jobs": "", "leases": "", "endpointslices": "", "controllerrevisions": "", "podtemplates": "",
	} {
		got, ok := short[name]
		if !ok {
			t.Errorf("api-resources lacks %s", name)
		} else if got != want {
			t.Errorf("short names of %s = %q, want %q", name, got, want)
		}
	}

	apps := strings.Fields(k.ok(t, "api-resources", "--api-group=apps", "-o", "name"))
	for _, want := range []string{"deployments.apps", "replicasets.apps", "statefulsets.apps", "daemonsets.apps", "controllerrevisions.apps"} {
		if !contains(apps, want) {
			t.Errorf("api-resources --api-group=apps lacks %s: %q", want, apps)
		}
	}
	cluster := strings.Fields(k.ok(t, "api-resources", "--namespaced=false", "-o", "name"))
	for _, want := range []string{"namespaces", "nodes", "persistentvolumes"} {
		if !contains(cluster, want) {
			t.Errorf("api-resources --namespaced=false lacks %s: %q", want, cluster)
		}
	}
	if contains(cluster, "pods") {
		t.Errorf("api-resources --namespaced=false lists pods")
	}

	versions := strings.Fields(k.ok(t, "api-versions"))
	for _, want := range []string{"v1", "apps/v1", "batch/v1", "coordination.k8s.io/v1", "discovery.k8s.io/v1", "events.k8s.io/v1"} {
		if !contains(versions, want) {
			t.Errorf("api-versions lacks %s: %q", want, versions)
		}
	}
}

func testShortNamesAndAll(t *testing.T, k *kctl) {
	applyApp(t, k)
	applyPod(t, k)
	out := k.ok(t, "get", "po,svc,deploy")
	assertHeaders(t, out,
		"NAME READY STATUS RESTARTS AGE",
		"NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE",
		"NAME READY UP-TO-DATE AVAILABLE AGE",
	)
	for _, name := range []string{"pod/web-pod", "service/web", "deployment.apps/web"} {
		if tableRow(out, name) == nil {
			t.Errorf("`get po,svc,deploy` lacks %s:\n%s", name, out)
		}
	}

	out = k.ok(t, "get", "all")
	for _, name := range []string{"pod/web-pod", "service/web", "deployment.apps/web"} {
		if tableRow(out, name) == nil {
			t.Errorf("`get all` lacks %s:\n%s", name, out)
		}
	}
	if tableRow(out, "configmap/web-config") != nil {
		t.Errorf("`get all` lists configmaps, which are not in category all:\n%s", out)
	}

	names := strings.Fields(k.ok(t, "get", "all", "-o", "name"))
	for _, want := range []string{"pod/web-pod", "service/web", "deployment.apps/web"} {
		if !contains(names, want) {
			t.Errorf("`get all -o name` lacks %s: %q", want, names)
		}
	}
}

func testUserWithoutRBAC(t *testing.T, k *kctl) {
	alice := userKubeconfig(t, k.srv, "alice")
	out := k.fail(t, "--kubeconfig", alice, "get", "pods", "-n", k.ns)
	assertContains(t, out, "Forbidden", `User "alice" cannot list resource "pods"`)

	// The same mechanism with the masters group is authorized.
	bob := userKubeconfig(t, k.srv, "bob", "system:masters")
	assertEqual(t, "pods seen by bob (system:masters)",
		k.ok(t, "--kubeconfig", bob, "get", "pod", "web-pod", "-n", k.ns, "-o", "name", "--ignore-not-found"),
		k.ok(t, "get", "pod", "web-pod", "-o", "name", "--ignore-not-found"))
	k.ok(t, "--kubeconfig", bob, "get", "ns", "default")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
