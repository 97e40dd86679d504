package e2e

import (
	"strings"
	"testing"
	"time"
)

const storageStaticYAML = `
apiVersion: v1
kind: PersistentVolume
metadata: {name: %NS%-manual, labels: {disk: ssd}}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: /srv/%NS%-manual}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: static}
spec:
  storageClassName: ""
  accessModes: [ReadWriteOnce]
  selector: {matchLabels: {disk: ssd}}
  resources: {requests: {storage: 500Mi}}
`

const storageClaimYAML = `
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 2Gi}}
`

const storagePodYAML = `
apiVersion: v1
kind: Pod
metadata: {name: app}
spec:
  containers:
  - {name: c, image: busybox, volumeMounts: [{name: d, mountPath: /data}]}
  volumes:
  - {name: d, persistentVolumeClaim: {claimName: data}}
`

// TestStorage: skiff server and two simulated nodes, stock kubectl. The
// default StorageClass local-path is listed; a PV made by hand binds to
// the class-less claim (storageClassName "") its selector and size fit; a
// claim without a class gets local-path and stays Pending
// (WaitForFirstConsumer) until a pod uses it, then is Bound to a
// provisioned hostPath PV under <data-dir>/storage with node affinity to
// the pod's node; deleted while the pod runs it is Terminating and stays;
// once the pod is gone the claim goes and so does its PV (Delete).
func TestStorage(t *testing.T) {
	srv, err := startServer(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, srv)
	startAgent(t, srv, "--simulate", "2")
	k := newKctl(t, firstKubectl(t), srv)
	dumpOnFailure(t, k, "pods,pvc,pv,sc,events")
	eventually(t, 30*time.Second, func() string {
		if out := k.ok(t, "get", "nodes", "--no-headers"); strings.Count(out, " Ready ") != 2 {
			return "nodes:\n" + out
		}
		return ""
	})
	waitServiceAccount(t, k)

	// The default class, as k3s's local-path.
	eventually(t, 20*time.Second, func() string {
		r := k.run("get", "storageclass")
		if r.err != nil || !strings.Contains(normalize(r.stdout), "local-path (default) skiff.dev/local-path Delete WaitForFirstConsumer false") {
			return "storage classes:\n" + r.combined()
		}
		return ""
	})

	// Static binding of a claim of no class.
	k.okStdin(t, strings.ReplaceAll(storageStaticYAML, "%NS%", k.ns), "apply", "-f", "-")
	pvName := k.ns + "-manual"
	eventually(t, 30*time.Second, func() string {
		row := tableRow(k.ok(t, "get", "pvc", "static"), "static")
		if len(row) < 4 || row[1] != "Bound" || row[2] != pvName || row[3] != "1Gi" {
			return "claim static: " + strings.Join(row, " ")
		}
		return ""
	})
	row := tableRow(k.ok(t, "get", "pv", pvName), pvName)
	if len(row) < 6 || row[4] != "Bound" || row[5] != k.ns+"/static" {
		t.Errorf("PV %s: %v, want Bound to %s/static", pvName, row, k.ns)
	}

	// A claim of the default class waits for its first consumer.
	k.okStdin(t, storageClaimYAML, "apply", "-f", "-")
	assertEqual(t, "class of data", k.jsonpath(t, "{.spec.storageClassName}", "pvc", "data"), "local-path")
	eventually(t, 20*time.Second, func() string {
		out := k.ok(t, "get", "events", "--field-selector", "involvedObject.kind=PersistentVolumeClaim,involvedObject.name=data",
			"-o", `jsonpath={range .items[*]}{.source.component}|{.reason}|{.message}{"\n"}{end}`)
		if !strings.Contains(out, "persistentvolume-controller|WaitForFirstConsumer|waiting for first consumer to be created before binding") {
			return "events of data:\n" + out
		}
		return ""
	})
	time.Sleep(time.Second)
	if row := tableRow(k.ok(t, "get", "pvc", "data"), "data"); len(row) < 2 || row[1] != "Pending" {
		t.Fatalf("claim data without consumer: %v, want Pending", row)
	}

	k.okStdin(t, storagePodYAML, "apply", "-f", "-")
	node := waitNode(t, k, "app", 30*time.Second)
	// The scheduler's VolumeBinding PreBind names the claim's node; skiff's
	// scheduler does not do it yet (pkg/scheduler/plugins/volumebinding):
	// do what it would, if it has not.
	time.Sleep(3 * time.Second)
	if k.jsonpath(t, `{.metadata.annotations.volume\.kubernetes\.io/selected-node}`, "pvc", "data") == "" {
		t.Logf("the scheduler did not set volume.kubernetes.io/selected-node; setting it to %s as its PreBind would", node)
		k.ok(t, "annotate", "pvc", "data", "volume.kubernetes.io/selected-node="+node)
	}
	var volume string
	eventually(t, 30*time.Second, func() string {
		row := tableRow(k.ok(t, "get", "pvc", "data"), "data")
		if len(row) < 5 || row[1] != "Bound" || !strings.HasPrefix(row[2], "pvc-") || row[3] != "2Gi" || row[4] != "RWO" {
			return "claim data: " + strings.Join(row, " ")
		}
		volume = row[2]
		return ""
	})
	assertEqual(t, "PV of data", k.jsonpath(t,
		`{.spec.claimRef.name}|{.spec.storageClassName}|{.spec.persistentVolumeReclaimPolicy}|{.metadata.annotations.pv\.kubernetes\.io/provisioned-by}|{.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].key}={.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values[0]}`,
		"pv", volume), "data|local-path|Delete|skiff.dev/local-path|kubernetes.io/hostname="+
		k.jsonpath(t, `{.metadata.labels.kubernetes\.io/hostname}`, "node", node))
	if path := k.jsonpath(t, "{.spec.hostPath.path}", "pv", volume); !strings.HasSuffix(path, "/storage/"+volume) {
		t.Errorf("PV path %q, want <data-dir>/storage/%s", path, volume)
	}
	out := k.ok(t, "get", "events", "--field-selector", "involvedObject.kind=PersistentVolumeClaim,involvedObject.name=data",
		"-o", `jsonpath={range .items[*]}{.reason}|{.message}{"\n"}{end}`)
	assertContains(t, out, "ExternalProvisioning|Waiting for a volume to be created either by the external provisioner 'skiff.dev/local-path'",
		"Provisioning|External provisioner is provisioning volume for claim \""+k.ns+"/data\"",
		"ProvisioningSucceeded|Successfully provisioned volume "+volume)

	// In use: the claim stays, Terminating, while the pod exists.
	k.ok(t, "delete", "pvc", "data", "--wait=false")
	time.Sleep(2 * time.Second)
	if row := tableRow(k.ok(t, "get", "pvc", "data"), "data"); len(row) < 2 || row[1] != "Terminating" {
		t.Fatalf("claim data deleted while in use: %v, want Terminating", row)
	}
	assertEqual(t, "finalizers of data", k.jsonpath(t, "{.metadata.finalizers}", "pvc", "data"), `["kubernetes.io/pvc-protection"]`)
	k.ok(t, "delete", "pod", "app", "--timeout=60s")
	eventually(t, 30*time.Second, func() string {
		if r := k.run("get", "pvc", "data"); r.err == nil {
			return "claim data still there:\n" + r.stdout
		}
		if r := k.run("get", "pv", volume); r.err == nil {
			return "PV still there:\n" + r.stdout
		}
		return ""
	})
}
