package replicaset_test

// Against a real skiff API server, the controllers as skiff runs them
// (each as its ServiceAccount, so the replicaset-controller and
// replication-controller roles are exercised too). No nodes: the test
// moves pods along itself.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/controllers"
	"github.com/skiff-dev/skiff/test/integration"
)

func setup(t *testing.T, names ...string) (kubernetes.Interface, string) {
	t.Helper()
	cfg := integration.StartAPIServer(t, integration.ServerOptions{})
	// Pods need the namespace's default ServiceAccount.
	integration.RunControllers(t, cfg, controllers.Options{Controllers: append(names, "serviceaccount-controller"), UseServiceAccountCredentials: true})
	c := kubernetes.NewForConfigOrDie(cfg)
	ns := "rs-test"
	if _, err := c.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return c, ns
}

func template(app string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app, "tier": "web"}, Annotations: map[string]string{"note": "from-template"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
	}
}

func newRS(name string, replicas int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: template(name)},
	}
}

// activePods are the pods selected by app=name that are not being deleted.
func activePods(t *testing.T, c kubernetes.Interface, ns, app string) []corev1.Pod {
	t.Helper()
	l, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: labels.Set{"app": app}.String()})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

func waitPods(t *testing.T, c kubernetes.Interface, ns, app string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	integration.Eventually(t, 20*time.Second, func() string {
		if pods = activePods(t, c, ns, app); len(pods) != n {
			return fmt.Sprintf("%d pods of %s, want %d", len(pods), app, n)
		}
		return ""
	})
	return pods
}

func rsStatus(t *testing.T, c kubernetes.Interface, ns, name string) appsv1.ReplicaSetStatus {
	t.Helper()
	rs, err := c.AppsV1().ReplicaSets(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return rs.Status
}

// makeReady binds the pod to node and reports it Running and Ready since
// readySince.
func makeReady(t *testing.T, c kubernetes.Interface, p *corev1.Pod, node string, readySince time.Time) {
	t.Helper()
	ctx := context.Background()
	if err := c.CoreV1().Pods(p.Namespace).Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: p.Name},
		Target: corev1.ObjectReference{Kind: "Node", Name: node}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cur, err := c.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Status.Phase = corev1.PodRunning
	cur.Status.Conditions = append(cur.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue,
		LastTransitionTime: metav1.NewTime(readySince)})
	if _, err := c.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func scale(t *testing.T, c kubernetes.Interface, ns, name string, n int32) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, n)
	if _, err := c.AppsV1().ReplicaSets(ns).Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

func eventMessages(t *testing.T, c kubernetes.Interface, ns, kind, name, reason string) []string {
	t.Helper()
	l, err := c.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range l.Items {
		if e.InvolvedObject.Kind == kind && e.InvolvedObject.Name == name && e.Reason == reason {
			out = append(out, e.Source.Component+": "+e.Message)
		}
	}
	slices.Sort(out)
	return out
}

// TestReplicaSet: pods from the template (name, labels, annotations,
// ownerReference), status, events; scale up and down deleting the pods
// upstream would; a relabelled pod released and replaced; an orphan
// adopted.
func TestReplicaSet(t *testing.T) {
	c, ns := setup(t, "replicaset-controller")
	ctx := context.Background()
	rs, err := c.AppsV1().ReplicaSets(ns).Create(ctx, newRS("web", 3), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods := waitPods(t, c, ns, "web", 3)
	for _, p := range pods {
		if !strings.HasPrefix(p.Name, "web-") || len(p.Name) != len("web-")+5 || p.GenerateName != "web-" {
			t.Errorf("pod name %q (generateName %q), want web-<5 chars>", p.Name, p.GenerateName)
		}
		if p.Labels["tier"] != "web" || p.Annotations["note"] != "from-template" {
			t.Errorf("pod %s: labels %v annotations %v", p.Name, p.Labels, p.Annotations)
		}
		want := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: rs.UID, Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}
		if len(p.OwnerReferences) != 1 || !equalRef(p.OwnerReferences[0], want) {
			t.Errorf("pod %s ownerReferences %+v", p.Name, p.OwnerReferences)
		}
	}
	integration.Eventually(t, 10*time.Second, func() string {
		s := rsStatus(t, c, ns, "web")
		if s.Replicas != 3 || s.FullyLabeledReplicas != 3 || s.ReadyReplicas != 0 || s.ObservedGeneration != 1 || ptr.Deref(s.TerminatingReplicas, -1) != 0 {
			return fmt.Sprintf("status %+v", s)
		}
		return ""
	})
	integration.Eventually(t, 10*time.Second, func() string {
		var want []string
		for _, p := range pods {
			want = append(want, "replicaset-controller: Created pod: "+p.Name)
		}
		slices.Sort(want)
		if got := eventMessages(t, c, ns, "ReplicaSet", "web", "SuccessfulCreate"); !slices.Equal(got, want) {
			return fmt.Sprintf("SuccessfulCreate events %q, want %q", got, want)
		}
		return ""
	})

	// Ready pods: the oldest ready longest; scale to 5 and back to 2 deletes
	// the two new (unscheduled) ones and the one ready the shortest.
	now := time.Now()
	makeReady(t, c, &pods[0], "node-a", now.Add(-time.Hour))
	makeReady(t, c, &pods[1], "node-b", now.Add(-2*time.Hour))
	makeReady(t, c, &pods[2], "node-c", now.Add(-10*time.Second))
	integration.Eventually(t, 10*time.Second, func() string {
		if s := rsStatus(t, c, ns, "web"); s.ReadyReplicas != 3 || s.AvailableReplicas != 3 {
			return fmt.Sprintf("status %+v", s)
		}
		return ""
	})
	scale(t, c, ns, "web", 5)
	waitPods(t, c, ns, "web", 5)
	scale(t, c, ns, "web", 2)
	left := waitPods(t, c, ns, "web", 2)
	got := []string{left[0].Name, left[1].Name}
	slices.Sort(got)
	want := []string{pods[0].Name, pods[1].Name}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("after scaling to 2: %v left, want the two ready longest %v", got, want)
	}
	integration.Eventually(t, 10*time.Second, func() string {
		if m := eventMessages(t, c, ns, "ReplicaSet", "web", "SuccessfulDelete"); len(m) != 3 || !slices.Contains(m, "replicaset-controller: Deleted pod: "+pods[2].Name) {
			return fmt.Sprintf("SuccessfulDelete events %q", m)
		}
		return ""
	})

	// A pod relabelled away is released and replaced.
	if _, err := c.CoreV1().Pods(ns).Patch(ctx, pods[0].Name, types.MergePatchType, []byte(`{"metadata":{"labels":{"app":"debug"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	integration.Eventually(t, 10*time.Second, func() string {
		p, err := c.CoreV1().Pods(ns).Get(ctx, pods[0].Name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if len(p.OwnerReferences) != 0 {
			return fmt.Sprintf("relabelled pod still owned: %+v", p.OwnerReferences)
		}
		return ""
	})
	waitPods(t, c, ns, "web", 2)

	// An orphan matching the selector is adopted.
	orphan := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "stray", Labels: map[string]string{"app": "orphan"}}, Spec: template("orphan").Spec}
	if _, err := c.CoreV1().Pods(ns).Create(ctx, orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	adopter, err := c.AppsV1().ReplicaSets(ns).Create(ctx, newRS("orphan", 2), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitPods(t, c, ns, "orphan", 2)
	integration.Eventually(t, 10*time.Second, func() string {
		p, err := c.CoreV1().Pods(ns).Get(ctx, "stray", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if ref := metav1.GetControllerOf(p); ref == nil || ref.UID != adopter.UID || !ptr.Deref(ref.BlockOwnerDeletion, false) {
			return fmt.Sprintf("orphan's ownerReferences %+v", p.OwnerReferences)
		}
		return ""
	})
	integration.Eventually(t, 10*time.Second, func() string {
		if s := rsStatus(t, c, ns, "orphan"); s.Replicas != 2 || s.FullyLabeledReplicas != 1 {
			return fmt.Sprintf("status %+v (the orphan lacks the tier label)", s)
		}
		return ""
	})
}

func equalRef(a, b metav1.OwnerReference) bool {
	return a.APIVersion == b.APIVersion && a.Kind == b.Kind && a.Name == b.Name && a.UID == b.UID &&
		ptr.Deref(a.Controller, false) == ptr.Deref(b.Controller, false) && ptr.Deref(a.BlockOwnerDeletion, false) == ptr.Deref(b.BlockOwnerDeletion, false)
}

// TestBurstAndQuota: a burst of 60 creates exactly 60 pods in slow-start
// batches; a quota of fewer pods gives FailedCreate events and the
// ReplicaFailure condition, which goes once the quota allows.
func TestBurstAndQuota(t *testing.T) {
	c, ns := setup(t, "replicaset-controller", "resourcequota-controller")
	ctx := context.Background()
	if _, err := c.AppsV1().ReplicaSets(ns).Create(ctx, newRS("burst", 60), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPods(t, c, ns, "burst", 60)
	time.Sleep(time.Second)
	if n := len(activePods(t, c, ns, "burst")); n != 60 {
		t.Fatalf("%d pods, want 60", n)
	}
	if err := c.AppsV1().ReplicaSets(ns).Delete(ctx, "burst", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}

	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "few"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("2")}}}
	if _, err := c.CoreV1().ResourceQuotas(ns).Create(ctx, q, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	integration.Eventually(t, 10*time.Second, func() string {
		q, err := c.CoreV1().ResourceQuotas(ns).Get(ctx, "few", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if u, ok := q.Status.Used[corev1.ResourcePods]; !ok || u.Value() != 0 {
			return fmt.Sprintf("quota used %v", q.Status.Used)
		}
		return ""
	})
	if _, err := c.AppsV1().ReplicaSets(ns).Create(ctx, newRS("quota", 4), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var cond appsv1.ReplicaSetCondition
	integration.Eventually(t, 20*time.Second, func() string {
		s := rsStatus(t, c, ns, "quota")
		for _, x := range s.Conditions {
			if x.Type == appsv1.ReplicaSetReplicaFailure {
				cond = x
				return ""
			}
		}
		return fmt.Sprintf("no ReplicaFailure: %+v", s)
	})
	if cond.Status != corev1.ConditionTrue || cond.Reason != "FailedCreate" || !strings.Contains(cond.Message, "exceeded quota: few") {
		t.Errorf("ReplicaFailure condition %+v", cond)
	}
	integration.Eventually(t, 10*time.Second, func() string {
		m := eventMessages(t, c, ns, "ReplicaSet", "quota", "FailedCreate")
		if len(m) == 0 || !strings.HasPrefix(m[0], `replicaset-controller: Error creating: pods "quota-`) || !strings.Contains(m[0], "is forbidden: exceeded quota: few") {
			return fmt.Sprintf("FailedCreate events %q", m)
		}
		return ""
	})
	if n := len(activePods(t, c, ns, "quota")); n != 2 {
		t.Errorf("%d pods within a quota of 2", n)
	}
	q, err := c.CoreV1().ResourceQuotas(ns).Get(ctx, "few", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	q.Spec.Hard[corev1.ResourcePods] = resource.MustParse("10")
	if _, err := c.CoreV1().ResourceQuotas(ns).Update(ctx, q, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPods(t, c, ns, "quota", 4)
	integration.Eventually(t, 30*time.Second, func() string {
		if s := rsStatus(t, c, ns, "quota"); len(s.Conditions) != 0 || s.Replicas != 4 {
			return fmt.Sprintf("status %+v", s)
		}
		return ""
	})
}

// TestReplicationController: the same for an RC, with its own identity and
// events; no terminatingReplicas.
func TestReplicationController(t *testing.T) {
	c, ns := setup(t, "replicationcontroller-controller")
	ctx := context.Background()
	tpl := template("rc")
	rc, err := c.CoreV1().ReplicationControllers(ns).Create(ctx, &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "rc"},
		Spec:       corev1.ReplicationControllerSpec{Replicas: ptr.To[int32](3), Selector: map[string]string{"app": "rc"}, Template: &tpl},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods := waitPods(t, c, ns, "rc", 3)
	for _, p := range pods {
		ref := metav1.GetControllerOf(&p)
		if ref == nil || ref.APIVersion != "v1" || ref.Kind != "ReplicationController" || ref.UID != rc.UID || !ptr.Deref(ref.BlockOwnerDeletion, false) {
			t.Errorf("pod %s ownerReferences %+v", p.Name, p.OwnerReferences)
		}
	}
	integration.Eventually(t, 10*time.Second, func() string {
		cur, err := c.CoreV1().ReplicationControllers(ns).Get(ctx, "rc", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if s := cur.Status; s.Replicas != 3 || s.FullyLabeledReplicas != 3 || s.ObservedGeneration != 1 {
			return fmt.Sprintf("status %+v", s)
		}
		return ""
	})
	integration.Eventually(t, 10*time.Second, func() string {
		if m := eventMessages(t, c, ns, "ReplicationController", "rc", "SuccessfulCreate"); len(m) != 3 || !strings.HasPrefix(m[0], "replication-controller: Created pod: rc-") {
			return fmt.Sprintf("SuccessfulCreate events %q", m)
		}
		return ""
	})
	if _, err := c.CoreV1().ReplicationControllers(ns).Patch(ctx, "rc", types.MergePatchType, []byte(`{"spec":{"replicas":1}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPods(t, c, ns, "rc", 1)
}
