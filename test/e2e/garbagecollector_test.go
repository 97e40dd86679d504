package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// gcOwnerChain is a Deployment owning a ReplicaSet owning a ConfigMap, all
// made by hand (replicas 0, the Deployment paused: no controller but the
// garbage collector acts on them). The ConfigMap's extra YAML (e.g.
// finalizers) is cmExtra.
func gcOwnerChain(t *testing.T, k *kctl, cmExtra string) {
	t.Helper()
	k.okStdin(t, `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 0
  paused: true
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx}]}
`, "apply", "-f", "-")
	uid := k.jsonpath(t, "{.metadata.uid}", "deployment", "web")
	k.okStdin(t, fmt.Sprintf(`apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web-1
  labels: {app: web}
  ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, uid: %s, controller: true, blockOwnerDeletion: true}]
spec:
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx}]}
`, uid), "apply", "-f", "-")
	rsUID := k.jsonpath(t, "{.metadata.uid}", "replicaset", "web-1")
	k.okStdin(t, fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-1, uid: %s, blockOwnerDeletion: true}]
%s`, rsUID, cmExtra), "apply", "-f", "-")
}

// absent: `kubectl get` of each of what finds nothing.
func absent(k *kctl, what ...string) string {
	for _, w := range what {
		r := k.run("get", w, "--ignore-not-found", "-o", "name")
		if r.err != nil || strings.TrimSpace(r.stdout) != "" {
			return fmt.Sprintf("%s still there: %s", w, r.combined())
		}
	}
	return ""
}

// TestGarbageCollector: kubectl delete --cascade=background, foreground
// and orphan on an owner with dependents, and a custom resource owning a
// ConfigMap, against skiff server's garbage collector.
func TestGarbageCollector(t *testing.T) {
	paths := findKubectls()
	if len(paths) == 0 {
		t.Skip("no kubectl found")
	}
	srv := sharedServer(t)
	bin := resolveKubectl(t, paths[len(paths)-1])

	t.Run("background", func(t *testing.T) {
		k := newKctl(t, bin, srv)
		gcOwnerChain(t, k, "")
		assertContains(t, k.ok(t, "delete", "deployment", "web", "--cascade=background"), `deployment.apps "web" deleted`)
		eventually(t, 30*time.Second, func() string { return absent(k, "deployment/web", "replicaset/web-1", "configmap/web-config") })
	})

	t.Run("foreground", func(t *testing.T) {
		k := newKctl(t, bin, srv)
		gcOwnerChain(t, k, "  finalizers: [example.com/hold]\n")
		k.ok(t, "delete", "deployment", "web", "--cascade=foreground", "--wait=false")
		// The ConfigMap holds the ReplicaSet (deleted in the foreground, as
		// it has dependents), which holds the Deployment.
		eventually(t, 30*time.Second, func() string {
			cm := k.run("get", "configmap", "web-config", "-o", "jsonpath={.metadata.deletionTimestamp}")
			if cm.err != nil || cm.stdout == "" {
				return "configmap not being deleted: " + cm.combined()
			}
			for _, o := range []string{"deployment/web", "replicaset/web-1"} {
				r := k.run("get", o, "-o", "jsonpath={.metadata.deletionTimestamp} {.metadata.finalizers}")
				if r.err != nil || !strings.Contains(r.stdout, "foregroundDeletion") || strings.HasPrefix(r.stdout, " ") {
					return fmt.Sprintf("%s: %s", o, r.combined())
				}
			}
			return ""
		})
		k.ok(t, "patch", "configmap", "web-config", "--type=merge", "-p", `{"metadata":{"finalizers":null}}`)
		k.ok(t, "wait", "--for=delete", "deployment/web", "--timeout=30s")
		if msg := absent(k, "replicaset/web-1", "configmap/web-config"); msg != "" {
			t.Error("the Deployment went before its dependents: " + msg)
		}
	})

	t.Run("orphan", func(t *testing.T) {
		k := newKctl(t, bin, srv)
		gcOwnerChain(t, k, "")
		k.ok(t, "delete", "deployment", "web", "--cascade=orphan")
		eventually(t, 30*time.Second, func() string { return absent(k, "deployment/web") })
		if refs := k.jsonpath(t, "{.metadata.ownerReferences}", "replicaset", "web-1"); refs != "" {
			t.Errorf("orphaned ReplicaSet's ownerReferences: %s", refs)
		}
		if kind := k.jsonpath(t, "{.metadata.ownerReferences[0].kind}", "configmap", "web-config"); kind != "ReplicaSet" {
			t.Errorf("ConfigMap's owner is %q, want the ReplicaSet still", kind)
		}
		// Orphans stay: their owner reference is gone, not dangling.
		time.Sleep(2 * time.Second)
		if msg := absent(k, "replicaset/web-1"); msg == "" {
			t.Error("the orphaned ReplicaSet was deleted")
		}
	})

	t.Run("custom-resource", func(t *testing.T) {
		k := newKctl(t, bin, srv)
		const group = "gc.e2e.example.com"
		k.okStdin(t, `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: sprockets.`+group+`}
spec:
  group: `+group+`
  names: {kind: Sprocket, listKind: SprocketList, plural: sprockets, singular: sprocket}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`, "apply", "-f", "-")
		t.Cleanup(func() { k.run("delete", "crd", "sprockets."+group, "--wait=false") })
		k.ok(t, "wait", "--for=condition=Established", "crd/sprockets."+group, "--timeout=30s")
		eventually(t, 30*time.Second, func() string {
			if r := k.runWith(procOpts{stdin: "apiVersion: " + group + "/v1\nkind: Sprocket\nmetadata: {name: s}\n"}, "apply", "-f", "-"); r.err != nil {
				return r.combined()
			}
			return ""
		})
		uid := k.jsonpath(t, "{.metadata.uid}", "sprocket", "s")
		k.okStdin(t, fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: sprocket-config
  ownerReferences: [{apiVersion: %s/v1, kind: Sprocket, name: s, uid: %s}]
`, group, uid), "apply", "-f", "-")
		started := time.Now()
		k.ok(t, "delete", "sprocket", "s")
		eventually(t, 45*time.Second, func() string { return absent(k, "configmap/sprocket-config") })
		t.Logf("the CR's ConfigMap went %s after the CR", time.Since(started).Round(100*time.Millisecond))
	})
}
