package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

const stsWebYAML = `
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: nginx, image: nginx}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      storageClassName: manual
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
`

const stsParallelYAML = `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: par}
spec:
  serviceName: par
  replicas: 2
  podManagementPolicy: Parallel
  ordinals: {start: 5}
  selector: {matchLabels: {app: par}}
  template:
    metadata: {labels: {app: par}}
    spec:
      containers:
      - {name: c, image: busybox}
`

// TestStatefulSet: with skiff server and three simulated nodes whose pods
// take 2s to start, through stock kubectl: a StatefulSet of 3 with a
// volumeClaimTemplate creates web-0, web-1, web-2 one after the other,
// each once the one before is Ready, with their identity (hostname,
// subdomain, pod-name/pod-index/controller-revision-hash labels) and
// claims data-web-<n>; rollout status returns; scaled to 1 it deletes
// web-2 then web-1 and keeps the claims (Retain); a new image rolls out
// from the highest ordinal down, a new ControllerRevision is current;
// a partition keeps the pods below it; a Parallel set with ordinals.start
// 5 creates par-5 and par-6 at once.
func TestStatefulSet(t *testing.T) {
	srv, err := startServer(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, srv)
	startAgent(t, srv, "--simulate", "3", "--simulate-start-delay", "2s")
	k := newKctl(t, firstKubectl(t), srv)
	admin := adminClient(t, srv)
	eventually(t, 30*time.Second, func() string {
		if out := k.ok(t, "get", "nodes", "--no-headers"); strings.Count(out, " Ready ") != 3 {
			return "nodes:\n" + out
		}
		return ""
	})
	waitServiceAccount(t, k)
	dumpOnFailure(t, k, "sts,pods,pvc,pv,controllerrevisions,events")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// No PV controller here: the claims are bound by hand, as they come.
	go bindClaims(ctx, t, admin, k.ns)
	log := watchPods(ctx, t, admin, k.ns, "app=web")

	k.okStdin(t, stsWebYAML, "apply", "-f", "-")
	k.ok(t, "rollout", "status", "sts/web", "--timeout=60s")
	waitSTS(t, k, "web", "3/3")

	// Ordered: each pod is created only once the one before is Ready.
	if got := log.events("ADDED"); !slices.Equal(got, []string{"web-0", "web-1", "web-2"}) {
		t.Errorf("pods created in the order %v, want web-0 web-1 web-2", got)
	}
	for i := 1; i < 3; i++ {
		prevReady, created := log.readyAt(fmt.Sprintf("web-%d", i-1)), log.addedAt(fmt.Sprintf("web-%d", i))
		if prevReady.IsZero() || created.Before(prevReady) {
			t.Errorf("web-%d created at %v, before web-%d was Ready (%v)", i, created, i-1, prevReady)
		}
	}
	rev := k.jsonpath(t, "{.status.updateRevision}", "sts", "web")
	assertEqual(t, "currentRevision", k.jsonpath(t, "{.status.currentRevision}", "sts", "web"), rev)
	if !strings.HasPrefix(rev, "web-") {
		t.Errorf("updateRevision %q, want web-<hash>", rev)
	}
	assertEqual(t, "status", k.jsonpath(t, "{.status.replicas}/{.status.readyReplicas}/{.status.currentReplicas}/{.status.updatedReplicas}/{.status.availableReplicas}/{.status.observedGeneration}/{.status.collisionCount}", "sts", "web"), "3/3/3/3/3/1/0")
	assertEqual(t, "web-1's identity",
		k.jsonpath(t, `{.spec.hostname}|{.spec.subdomain}|{.metadata.labels.statefulset\.kubernetes\.io/pod-name}|{.metadata.labels.apps\.kubernetes\.io/pod-index}|{.metadata.labels.controller-revision-hash}|{.spec.volumes[0].name}={.spec.volumes[0].persistentVolumeClaim.claimName}|{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].controller}/{.metadata.ownerReferences[0].blockOwnerDeletion}`, "pod", "web-1"),
		"web-1|web|web-1|1|"+rev+"|data=data-web-1|StatefulSet/web/true/true")
	assertEqual(t, "claims", k.jsonpath(t, `{range .items[*]}{.metadata.name}:{.metadata.labels.app}:{.metadata.ownerReferences} {end}`, "pvc"), "data-web-0:web: data-web-1:web: data-web-2:web:")
	assertEqual(t, "ControllerRevisions", k.jsonpath(t, `{range .items[*]}{.metadata.name}:{.revision}:{.metadata.ownerReferences[0].name} {end}`, "controllerrevisions", "-l", "app=web"), rev+":1:web")
	eventually(t, 10*time.Second, func() string {
		out := k.ok(t, "get", "events", "--field-selector", "involvedObject.kind=StatefulSet,involvedObject.name=web", "-o", `jsonpath={range .items[*]}{.source.component}|{.reason}|{.message}{"\n"}{end}`)
		for i := range 3 {
			for _, want := range []string{
				fmt.Sprintf("statefulset-controller|SuccessfulCreate|Create Claim data-web-%d Pod web-%d in StatefulSet web success", i, i),
				fmt.Sprintf("statefulset-controller|SuccessfulCreate|Create Pod web-%d in StatefulSet web successful", i),
			} {
				if !strings.Contains(out, want) {
					return "events of web, no " + want + ":\n" + out
				}
			}
		}
		return ""
	})

	// Scale down: from the highest ordinal, one at a time; claims stay.
	k.ok(t, "scale", "sts", "web", "--replicas=1")
	waitSTS(t, k, "web", "1/1")
	eventually(t, 20*time.Second, func() string {
		if got := log.events("DELETED"); !slices.Equal(got, []string{"web-2", "web-1"}) {
			return fmt.Sprintf("pods deleted: %v, want web-2 web-1", got)
		}
		return ""
	})
	assertEqual(t, "claims after scaling to 1", k.jsonpath(t, `{range .items[*]}{.metadata.name} {end}`, "pvc"), "data-web-0 data-web-1 data-web-2")

	// Rolling update: back to 3, then a new image replaces the pods from
	// web-2 down to web-0.
	k.ok(t, "scale", "sts", "web", "--replicas=3")
	k.ok(t, "rollout", "status", "sts/web", "--timeout=60s")
	log.reset()
	k.ok(t, "set", "image", "sts/web", "nginx=nginx:1.27")
	k.ok(t, "rollout", "status", "sts/web", "--timeout=90s")
	if got := log.events("DELETED"); !slices.Equal(got, []string{"web-2", "web-1", "web-0"}) {
		t.Errorf("rolling update deleted %v, want web-2 web-1 web-0", got)
	}
	rev2 := k.jsonpath(t, "{.status.updateRevision}", "sts", "web")
	if rev2 == rev {
		t.Errorf("updateRevision %s did not change with the template", rev2)
	}
	assertEqual(t, "revisions after the update", k.jsonpath(t, "{.status.currentRevision} {.status.updatedReplicas}", "sts", "web"), rev2+" 3")
	assertEqual(t, "pods' revisions", k.jsonpath(t, `{range .items[*]}{.metadata.labels.controller-revision-hash}:{.spec.containers[0].image} {end}`, "pods", "-l", "app=web"),
		strings.TrimSpace(strings.Repeat(rev2+":nginx:1.27 ", 3)))
	assertEqual(t, "ControllerRevisions", k.jsonpath(t, `{range .items[*]}{.metadata.name}:{.revision} {end}`, "controllerrevisions", "-l", "app=web", "--sort-by=.revision"), rev+":1 "+rev2+":2")
	out := k.ok(t, "rollout", "history", "sts/web")
	assertMatches(t, out, `(?m)^1\s`, `(?m)^2\s`)

	// A partition: only the pods at or above it are updated.
	k.ok(t, "patch", "sts", "web", "-p", `{"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}}}}`)
	k.ok(t, "set", "image", "sts/web", "nginx=nginx:1.28")
	eventually(t, 30*time.Second, func() string {
		got := k.jsonpath(t, "{.status.updatedReplicas}/{.status.currentReplicas}/{.status.readyReplicas}", "sts", "web")
		if got != "1/2/3" {
			return "updated/current/ready " + got + ", want 1/2/3"
		}
		return ""
	})
	assertEqual(t, "images with partition 2", k.jsonpath(t, `{range .items[*]}{.metadata.name}={.spec.containers[0].image} {end}`, "pods", "-l", "app=web"),
		"web-0=nginx:1.27 web-1=nginx:1.27 web-2=nginx:1.28")

	// Parallel, ordinals from 5: both pods at once.
	plog := watchPods(ctx, t, admin, k.ns, "app=par")
	k.okStdin(t, stsParallelYAML, "apply", "-f", "-")
	waitSTS(t, k, "par", "2/2")
	p5, p6 := plog.addedAt("par-5"), plog.addedAt("par-6")
	if r := plog.readyAt("par-5"); p6.IsZero() || !p6.Before(r) {
		t.Errorf("par-6 created at %v, not before par-5 was Ready (%v): not in parallel", p6, r)
	}
	_ = p5
}

// dumpOnFailure logs `kubectl get what -o wide` if the test fails.
func dumpOnFailure(t *testing.T, k *kctl, what string) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kubectl get %s:\n%s", what, k.run("get", what, "-o", "wide").combined())
		}
	})
}

// waitSTS waits for `kubectl get sts` to show READY.
func waitSTS(t *testing.T, k *kctl, name, ready string) {
	t.Helper()
	eventually(t, 60*time.Second, func() string {
		out := k.ok(t, "get", "sts", name)
		assertHeaders(t, out, "NAME READY AGE")
		if row := tableRow(out, name); len(row) < 2 || row[1] != ready {
			return fmt.Sprintf("want %s:\n%s", ready, out)
		}
		return ""
	})
}

// podLog records, from a watch, the order in which pods were added and
// deleted and when each was added and became Ready.
type podLog struct {
	mu      sync.Mutex
	order   map[string][]string
	added   map[string]time.Time
	ready   map[string]time.Time
	started time.Time
}

func watchPods(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, selector string) *podLog {
	t.Helper()
	l := &podLog{order: map[string][]string{}, added: map[string]time.Time{}, ready: map[string]time.Time{}}
	w, err := client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			now := time.Now()
			l.mu.Lock()
			switch ev.Type {
			case watch.Added:
				l.order["ADDED"] = append(l.order["ADDED"], p.Name)
				l.added[p.Name] = now
			case watch.Deleted:
				l.order["DELETED"] = append(l.order["DELETED"], p.Name)
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && l.ready[p.Name].IsZero() {
					l.ready[p.Name] = now
				}
			}
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *podLog) events(typ string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.order[typ])
}

func (l *podLog) addedAt(name string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.added[name]
}

func (l *podLog) readyAt(name string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ready[name]
}

func (l *podLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.order, l.added, l.ready = map[string][]string{}, map[string]time.Time{}, map[string]time.Time{}
}

// bindClaims binds each claim of class "manual" in ns to a
// PersistentVolume made for it, as a PV controller would, until ctx ends.
func bindClaims(ctx context.Context, t *testing.T, client kubernetes.Interface, ns string) {
	for ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		list, err := client.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			if ctx.Err() == nil {
				t.Logf("listing claims: %v", err)
			}
			continue
		}
		for i := range list.Items {
			if pvc := &list.Items[i]; pvc.Spec.VolumeName == "" && ptrDeref(pvc.Spec.StorageClassName) == "manual" {
				if err := bindClaim(ctx, client, pvc); err != nil && ctx.Err() == nil {
					t.Logf("binding %s: %v", pvc.Name, err)
				}
			}
		}
	}
}

func bindClaim(ctx context.Context, client kubernetes.Interface, pvc *corev1.PersistentVolumeClaim) error {
	pvName := "pv-" + pvc.Namespace + "-" + pvc.Name
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: pvName},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName:       "manual",
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + pvName}},
			ClaimRef:               &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID},
		},
	}
	if _, err := client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{"pv.kubernetes.io/bind-completed":"yes"}},"spec":{"volumeName":%q}}`, pvName)
	if _, err := client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Patch(ctx, pvc.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return err
	}
	status := `{"status":{"phase":"Bound","accessModes":["ReadWriteOnce"],"capacity":{"storage":"1Gi"}}}`
	_, err := client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Patch(ctx, pvc.Name, types.MergePatchType, []byte(status), metav1.PatchOptions{}, "status")
	return err
}

func ptrDeref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
