package daemonset_test

// Against a real skiff API server, the daemonset-controller as skiff runs
// it (as its ServiceAccount, so its RBAC role is exercised); no scheduler
// or kubelet: pods stay unbound, targeted at their node by affinity, and
// the test sets their status itself.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/skiff-dev/skiff/pkg/controllers"
	"github.com/skiff-dev/skiff/test/integration"
)

func waitFor(t *testing.T, what string, f func() (bool, string)) {
	t.Helper()
	integration.Eventually(t, 30*time.Second, func() string {
		if ok, state := f(); !ok {
			return fmt.Sprintf("waiting for %s: %s", what, state)
		}
		return ""
	})
}

func createNode(t *testing.T, cs kubernetes.Interface, name string, labels map[string]string, taints ...corev1.Taint) {
	t.Helper()
	n, err := cs.CoreV1().Nodes().Create(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Without the not-ready taint the API server gives new nodes (the node
	// lifecycle controller would take it away once they are Ready).
	n.Spec.Taints = taints
	if _, err := cs.CoreV1().Nodes().Update(context.Background(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// targets are the live pods' target nodes (their matchFields affinity),
// sorted, and the pods by node.
func targets(t *testing.T, cs kubernetes.Interface, selector string) (string, map[string]corev1.Pod) {
	t.Helper()
	list, err := cs.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	var nodes []string
	byNode := map[string]corev1.Pod{}
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		n := "?"
		if a := p.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
			if terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms; len(terms) == 1 && len(terms[0].MatchFields) == 1 {
				n = strings.Join(terms[0].MatchFields[0].Values, ",")
			}
		}
		nodes = append(nodes, n)
		byNode[n] = p
	}
	slices.Sort(nodes)
	return strings.Join(nodes, " "), byNode
}

func waitTargets(t *testing.T, cs kubernetes.Interface, selector, want string) map[string]corev1.Pod {
	t.Helper()
	var pods map[string]corev1.Pod
	waitFor(t, "pods for "+want, func() (bool, string) {
		var got string
		got, pods = targets(t, cs, selector)
		return got == want, "pods for " + got
	})
	return pods
}

func setPhase(t *testing.T, cs kubernetes.Interface, pod corev1.Pod, phase corev1.PodPhase, ready bool) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		fresh, err := cs.CoreV1().Pods("default").Get(context.Background(), pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		fresh.Status.Phase = phase
		fresh.Status.Conditions = nil
		if ready {
			fresh.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
		}
		_, err = cs.CoreV1().Pods("default").UpdateStatus(context.Background(), fresh, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("setting the phase of %s: %v", pod.Name, err)
	}
}

// TestDaemonSet: a pod for each node whose labels match the nodeSelector
// and whose NoSchedule taints are tolerated, with the daemon tolerations;
// a failed pod is replaced; a node relabelled to match gets one; a node
// tainted NoExecute loses its pod; an unbound pod of a deleted node goes;
// status counts; a template change rolls out one node at a time with
// maxUnavailable 1.
func TestDaemonSet(t *testing.T) {
	cfg := integration.StartAPIServer(t, integration.ServerOptions{})
	integration.RunControllers(t, cfg, controllers.Options{Controllers: []string{"daemonset-controller", "serviceaccount-controller"}, UseServiceAccountCredentials: true})
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	worker := map[string]string{"role": "worker"}
	createNode(t, cs, "n1", worker)
	createNode(t, cs, "n2", worker)
	createNode(t, cs, "n3", worker, corev1.Taint{Key: "dedicated", Value: "infra", Effect: corev1.TaintEffectNoSchedule})
	createNode(t, cs, "n4", nil)
	// Tolerated automatically: only the pods' other constraints count.
	createNode(t, cs, "n5", worker, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule},
		corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute})
	waitFor(t, "the default ServiceAccount", func() (bool, string) {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})

	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "default"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}},
				Spec: corev1.PodSpec{NodeSelector: worker, Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
					// Replaced by the daemon toleration (no tolerationSeconds).
					Tolerations: []corev1.Toleration{{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(int64)}}},
			},
		},
	}
	if _, err := cs.AppsV1().DaemonSets("default").Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := waitTargets(t, cs, "app=agent", "n1 n2 n5")
	p1 := pods["n1"]
	var tols []string
	for _, tol := range p1.Spec.Tolerations {
		tols = append(tols, fmt.Sprintf("%s:%s:%s:%v", tol.Key, tol.Operator, tol.Effect, tol.TolerationSeconds != nil))
	}
	if got, want := strings.Join(tols, " "), "node.kubernetes.io/not-ready:Exists:NoExecute:false node.kubernetes.io/unreachable:Exists:NoExecute:false "+
		"node.kubernetes.io/disk-pressure:Exists:NoSchedule:false node.kubernetes.io/memory-pressure:Exists:NoSchedule:false "+
		"node.kubernetes.io/pid-pressure:Exists:NoSchedule:false node.kubernetes.io/unschedulable:Exists:NoSchedule:false"; got != want {
		t.Errorf("tolerations:\n%s\nwant\n%s", got, want)
	}
	if p1.Spec.NodeName != "" || p1.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == "" || p1.Labels["pod-template-generation"] != "1" {
		t.Errorf("pod %s: nodeName %q, labels %v; want unbound, with controller-revision-hash and pod-template-generation 1", p1.Name, p1.Spec.NodeName, p1.Labels)
	}
	for _, p := range pods {
		setPhase(t, cs, p, corev1.PodRunning, true)
	}
	waitFor(t, "status", func() (bool, string) {
		d, err := cs.AppsV1().DaemonSets("default").Get(ctx, "agent", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		s := d.Status
		got := fmt.Sprintf("%d/%d/%d/%d/%d/%d/%d/%d", s.DesiredNumberScheduled, s.CurrentNumberScheduled, s.NumberMisscheduled, s.NumberReady, s.UpdatedNumberScheduled, s.NumberAvailable, s.NumberUnavailable, s.ObservedGeneration)
		return got == "3/3/0/3/3/3/0/1", "desired/current/misscheduled/ready/updated/available/unavailable/observedGeneration " + got
	})

	// A failed pod is replaced.
	setPhase(t, cs, pods["n2"], corev1.PodFailed, false)
	waitFor(t, "the failed pod replaced", func() (bool, string) {
		_, now := targets(t, cs, "app=agent")
		p, ok := now["n2"]
		return ok && p.UID != pods["n2"].UID, "pod on n2: " + string(p.UID)
	})
	_, pods = targets(t, cs, "app=agent")
	setPhase(t, cs, pods["n2"], corev1.PodRunning, true)

	// n4 relabelled: a pod; n1 tainted NoExecute: its pod goes.
	if _, err := cs.CoreV1().Nodes().Patch(ctx, "n4", types.MergePatchType, []byte(`{"metadata":{"labels":{"role":"worker"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitTargets(t, cs, "app=agent", "n1 n2 n4 n5")
	if _, err := cs.CoreV1().Nodes().Patch(ctx, "n1", types.MergePatchType, []byte(`{"spec":{"taints":[{"key":"evict","effect":"NoExecute"}]}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitTargets(t, cs, "app=agent", "n2 n4 n5")
	// n4's pod was never bound: with n4 gone it goes too.
	if err := cs.CoreV1().Nodes().Delete(ctx, "n4", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	pods = waitTargets(t, cs, "app=agent", "n2 n5")
	for _, p := range pods {
		setPhase(t, cs, p, corev1.PodRunning, true)
	}

	// A rolling update, one node at a time: the second old pod goes only
	// once the first new one is available.
	if _, err := cs.AppsV1().DaemonSets("default").Patch(ctx, "agent", types.MergePatchType, []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"busybox:2"}]}}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	image := func(p corev1.Pod) string { return p.Spec.Containers[0].Image }
	var replaced string
	waitFor(t, "one pod replaced", func() (bool, string) {
		got, now := targets(t, cs, "app=agent")
		for n, p := range now {
			if image(p) == "busybox:2" {
				replaced = n
			}
		}
		return got == "n2 n5" && replaced != "", "pods on " + got
	})
	time.Sleep(500 * time.Millisecond)
	_, now := targets(t, cs, "app=agent")
	for n, p := range now {
		if n != replaced && image(p) != "busybox" {
			t.Fatalf("the pod on %s was replaced before the new one on %s was available", n, replaced)
		}
	}
	setPhase(t, cs, now[replaced], corev1.PodRunning, true)
	waitFor(t, "both replaced", func() (bool, string) {
		got, now := targets(t, cs, "app=agent")
		n := 0
		for _, p := range now {
			if image(p) == "busybox:2" && p.Labels["pod-template-generation"] == "2" {
				n++
			}
		}
		return got == "n2 n5" && n == 2, fmt.Sprintf("pods on %s, %d new", got, n)
	})
	revs, err := cs.AppsV1().ControllerRevisions("default").List(ctx, metav1.ListOptions{LabelSelector: "app=agent"})
	if err != nil || len(revs.Items) != 2 {
		t.Errorf("ControllerRevisions: %d (%v), want 2", len(revs.Items), err)
	}
}
