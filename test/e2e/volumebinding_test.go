package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

const vbDynamicYAML = `
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  storageClassName: local-path
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: app}
spec:
  containers:
  - {name: c, image: busybox, volumeMounts: [{name: d, mountPath: /data}]}
  volumes:
  - {name: d, persistentVolumeClaim: {claimName: data}}
`

// vbStaticYAML: %NS% the namespace, %HOST% the hostname label of the node
// the PV is on.
const vbStaticYAML = `
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: %NS%-local}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: %NS%-disk}
spec:
  capacity: {storage: 2Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: %NS%-local
  persistentVolumeReclaimPolicy: Retain
  local: {path: /mnt/disk}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [%HOST%]}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: static}
spec:
  storageClassName: %NS%-local
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: pinned}
spec:
  containers:
  - {name: c, image: busybox, volumeMounts: [{name: d, mountPath: /data}]}
  volumes:
  - {name: d, persistentVolumeClaim: {claimName: static}}
`

const vbStatefulSetYAML = `
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{port: 5432}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - {name: c, image: busybox}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      storageClassName: local-path
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
`

// bindingLog records, from watches, the resourceVersion (etcd's
// revision, ordered across resources) at which each claim was first fully
// bound (volumeName and pv.kubernetes.io/bind-completed: what the
// scheduler waits for; the Bound phase follows in a status update) and
// each pod first had a node, and the node a pod was nominated to before.
type bindingLog struct {
	mu        sync.Mutex
	bound     map[string]uint64
	nodeOf    map[string]uint64
	nominated map[string]string
}

func watchBindings(ctx context.Context, t *testing.T, client kubernetes.Interface, ns string) *bindingLog {
	t.Helper()
	l := &bindingLog{bound: map[string]uint64{}, nodeOf: map[string]uint64{}, nominated: map[string]string{}}
	pods, err := client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := client.CoreV1().PersistentVolumeClaims(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	record := func(w watch.Interface) {
		for ev := range w.ResultChan() {
			m, err := meta.Accessor(ev.Object)
			if err != nil {
				continue
			}
			rv, _ := strconv.ParseUint(m.GetResourceVersion(), 10, 64)
			l.mu.Lock()
			switch o := ev.Object.(type) {
			case *corev1.Pod:
				if _, ok := l.nodeOf[o.Name]; !ok && o.Spec.NodeName != "" {
					l.nodeOf[o.Name] = rv
				}
				if _, ok := l.nominated[o.Name]; !ok && o.Status.NominatedNodeName != "" && o.Spec.NodeName == "" {
					l.nominated[o.Name] = o.Status.NominatedNodeName
				}
			case *corev1.PersistentVolumeClaim:
				if _, ok := l.bound[o.Name]; !ok && o.Spec.VolumeName != "" && metav1.HasAnnotation(o.ObjectMeta, "pv.kubernetes.io/bind-completed") {
					l.bound[o.Name] = rv
				}
			}
			l.mu.Unlock()
		}
	}
	go record(pods)
	go record(claims)
	go func() { <-ctx.Done(); pods.Stop(); claims.Stop() }()
	return l
}

// check: the claim was bound before the pod got its node, and the pod
// was nominated to node while it waited.
func (l *bindingLog) check(t *testing.T, claim, pod, node string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	bound, scheduled := l.bound[claim], l.nodeOf[pod]
	if bound == 0 || scheduled == 0 || bound > scheduled {
		t.Errorf("claim %s bound at resourceVersion %d, pod %s given its node at %d: want the claim first", claim, bound, pod, scheduled)
	}
	if got := l.nominated[pod]; got != node {
		t.Errorf("pod %s nominated to %q while its volumes were bound, want %q", pod, got, node)
	}
}

func waitPodRunning(t *testing.T, k *kctl, pod string) {
	t.Helper()
	eventually(t, 30*time.Second, func() string {
		if phase := k.jsonpath(t, "{.status.phase}", "pod", pod); phase != "Running" {
			return "pod " + pod + " is " + phase
		}
		return ""
	})
}

// pvNode is the hostname a PV's required node affinity names.
const pvNode = `{.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].key}={.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values[0]}`

// TestVolumeBinding: skiff server and two simulated nodes, stock kubectl.
// The scheduler's VolumeBinding plugin binds the volumes of WaitForFirstConsumer
// claims before the pod: a claim of local-path gets
// volume.kubernetes.io/selected-node=<the pod's node>, the local-path
// provisioner makes a PV with node affinity to it, the claim is Bound,
// and only then is the pod bound (its nominatedNodeName naming the node
// meanwhile) and Running. A static PV on one node of a class without
// provisioner: the pod lands on that node and the claim binds to that PV
// (its claimRef written by the scheduler, the binding completed by the PV
// controller). A StatefulSet with a local-path volumeClaimTemplate: both
// pods Running on their claims' nodes, the claims Bound.
func TestVolumeBinding(t *testing.T) {
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := watchBindings(ctx, t, adminClient(t, srv), k.ns)
	hostname := func(node string) string {
		return k.jsonpath(t, `{.metadata.labels.kubernetes\.io/hostname}`, "node", node)
	}

	t.Run("dynamic provisioning", func(t *testing.T) {
		k.okStdin(t, vbDynamicYAML, "apply", "-f", "-")
		node := waitNode(t, k, "app", 30*time.Second)
		assertEqual(t, "selected node of data", k.jsonpath(t, `{.metadata.annotations.volume\.kubernetes\.io/selected-node}`, "pvc", "data"), node)
		assertEqual(t, "claim data", k.jsonpath(t, "{.status.phase}", "pvc", "data"), "Bound")
		volume := k.jsonpath(t, "{.spec.volumeName}", "pvc", "data")
		assertEqual(t, "PV of data", k.jsonpath(t, `{.spec.claimRef.name}|{.metadata.annotations.pv\.kubernetes\.io/provisioned-by}|`+pvNode, "pv", volume),
			"data|skiff.dev/local-path|kubernetes.io/hostname="+hostname(node))
		log.check(t, "data", "app", node)
		waitPodRunning(t, k, "app")
		assertEqual(t, "nominatedNodeName after binding", k.jsonpath(t, "{.status.nominatedNodeName}", "pod", "app"), "")
	})

	t.Run("static PV with node affinity", func(t *testing.T) {
		// The PV is on the node app is not on, so the choice is the PV's.
		other := "sim-0"
		if k.jsonpath(t, "{.spec.nodeName}", "pod", "app") == other {
			other = "sim-1"
		}
		yaml := strings.NewReplacer("%NS%", k.ns, "%HOST%", hostname(other)).Replace(vbStaticYAML)
		k.okStdin(t, yaml, "apply", "-f", "-")
		t.Cleanup(func() { k.run("delete", "pv", k.ns+"-disk", "--wait=false"); k.run("delete", "sc", k.ns+"-local") })
		assertEqual(t, "node of pinned", waitNode(t, k, "pinned", 30*time.Second), other)
		assertEqual(t, "claim static", k.jsonpath(t, "{.status.phase}|{.spec.volumeName}", "pvc", "static"), "Bound|"+k.ns+"-disk")
		assertEqual(t, "PV", k.jsonpath(t, `{.status.phase}|{.spec.claimRef.namespace}/{.spec.claimRef.name}|{.metadata.annotations.pv\.kubernetes\.io/bound-by-controller}`, "pv", k.ns+"-disk"),
			"Bound|"+k.ns+"/static|yes")
		assertEqual(t, "selected node of static", k.jsonpath(t, `{.metadata.annotations.volume\.kubernetes\.io/selected-node}`, "pvc", "static"), "")
		log.check(t, "static", "pinned", other)
		waitPodRunning(t, k, "pinned")
	})

	t.Run("StatefulSet", func(t *testing.T) {
		k.okStdin(t, vbStatefulSetYAML, "apply", "-f", "-")
		waitSTS(t, k, "db", "2/2")
		for i := range 2 {
			pod, claim := fmt.Sprintf("db-%d", i), fmt.Sprintf("data-db-%d", i)
			waitPodRunning(t, k, pod)
			node := k.jsonpath(t, "{.spec.nodeName}", "pod", pod)
			assertEqual(t, "claim "+claim, k.jsonpath(t, `{.status.phase}|{.metadata.annotations.volume\.kubernetes\.io/selected-node}`, "pvc", claim), "Bound|"+node)
			assertEqual(t, "PV of "+claim, k.jsonpath(t, pvNode, "pv", k.jsonpath(t, "{.spec.volumeName}", "pvc", claim)), "kubernetes.io/hostname="+hostname(node))
			log.check(t, claim, pod, node)
		}
	})
}
