package statefulset_test

// Against a real skiff API server, the statefulset-controller as skiff
// runs it (as its ServiceAccount, so its RBAC role is exercised); no
// kubelet: the test sets the pods' status itself.

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/controllers"
	"github.com/skiff-dev/skiff/test/integration"
)

func start(t *testing.T) kubernetes.Interface {
	t.Helper()
	cfg := integration.StartAPIServer(t, integration.ServerOptions{})
	integration.RunControllers(t, cfg, controllers.Options{Controllers: []string{"statefulset-controller", "serviceaccount-controller"}, UseServiceAccountCredentials: true})
	return kubernetes.NewForConfigOrDie(cfg)
}

func newSet(name string, replicas int32) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To(replicas),
			ServiceName: name,
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
			}},
		},
	}
}

func waitFor(t *testing.T, what string, f func() (bool, error)) {
	t.Helper()
	integration.Eventually(t, 30*time.Second, func() string {
		if ok, err := f(); !ok {
			return fmt.Sprintf("waiting for %s: %v", what, err)
		}
		return ""
	})
}

func waitPod(t *testing.T, cs kubernetes.Interface, name string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	waitFor(t, "pod "+name, func() (bool, error) {
		var err error
		pod, err = cs.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		return err == nil && pod.DeletionTimestamp == nil, err
	})
	return pod
}

func waitGone(t *testing.T, cs kubernetes.Interface, name string) {
	t.Helper()
	waitFor(t, "pod "+name+" gone", func() (bool, error) {
		_, err := cs.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
}

// absentFor fails if the pod appears within d.
func absentFor(t *testing.T, cs kubernetes.Interface, name string, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if _, err := cs.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{}); err == nil {
			t.Fatalf("pod %s was created too early", name)
		}
	}
}

// setReady makes the pod Running and Ready, as a kubelet would.
func setReady(t *testing.T, cs kubernetes.Interface, pod *corev1.Pod) {
	t.Helper()
	pod = pod.DeepCopy()
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
	if _, err := cs.CoreV1().Pods("default").UpdateStatus(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("setting %s ready: %v", pod.Name, err)
	}
}

func owners(refs []metav1.OwnerReference) string {
	s := ""
	for _, r := range refs {
		s += fmt.Sprintf("%s/%s/%v ", r.Kind, r.Name, ptr.Deref(r.Controller, false))
	}
	return s
}

// TestOrderedReady: pods one at a time, each once the one before is
// Ready; the identity and claims of each; scaled down, from the highest
// ordinal, with whenScaled: Delete the condemned pod's claim is owned by
// the pod; status.
func TestOrderedReady(t *testing.T) {
	cs := start(t)
	ctx := context.Background()
	set := newSet("web", 3)
	set.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenScaled: appsv1.DeletePersistentVolumeClaimRetentionPolicyType, WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType}
	if _, err := cs.AppsV1().StatefulSets("default").Create(ctx, set, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		name := fmt.Sprintf("web-%d", i)
		pod := waitPod(t, cs, name)
		if i < 2 {
			absentFor(t, cs, fmt.Sprintf("web-%d", i+1), 500*time.Millisecond)
		}
		if got, want := fmt.Sprintf("%s|%s|%s|%s|%s", pod.Spec.Hostname, pod.Spec.Subdomain, pod.Labels[appsv1.StatefulSetPodNameLabel], pod.Labels[appsv1.PodIndexLabel], pod.GenerateName),
			fmt.Sprintf("%s|web|%s|%d|web-", name, name, i); got != want {
			t.Errorf("%s: hostname|subdomain|pod-name|pod-index|generateName = %s, want %s", name, got, want)
		}
		if len(pod.Spec.Volumes) == 0 || pod.Spec.Volumes[0].PersistentVolumeClaim == nil || pod.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "data-"+name {
			t.Errorf("%s: volumes %+v, want data from claim data-%s", name, pod.Spec.Volumes, name)
		}
		claim, err := cs.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data-"+name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("claim of %s: %v", name, err)
		}
		if claim.Labels["app"] != "web" || len(claim.OwnerReferences) != 0 {
			t.Errorf("claim data-%s: labels %v owners %s, want app=web and none", name, claim.Labels, owners(claim.OwnerReferences))
		}
		setReady(t, cs, pod)
	}
	waitFor(t, "status 3/3", func() (bool, error) {
		s, err := cs.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && s.Status.ReadyReplicas == 3 && s.Status.AvailableReplicas == 3 && s.Status.CurrentReplicas == 3 &&
			s.Status.UpdatedReplicas == 3 && s.Status.CurrentRevision == s.Status.UpdateRevision && s.Status.ObservedGeneration == 1, err
	})

	if _, err := cs.AppsV1().StatefulSets("default").Patch(ctx, "web", "application/merge-patch+json", []byte(`{"spec":{"replicas":1}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, cs, "web-2")
	claim, err := cs.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data-web-2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := owners(claim.OwnerReferences); got != "Pod/web-2/true " {
		t.Errorf("owners of the scaled-down claim data-web-2: %s, want Pod/web-2/true (whenScaled: Delete)", got)
	}
	waitGone(t, cs, "web-1")
	waitFor(t, "status 1/1", func() (bool, error) {
		s, err := cs.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && s.Status.Replicas == 1 && s.Status.ReadyReplicas == 1, err
	})
}

// TestParallelOnDelete: a Parallel set creates all its pods at once;
// OnDelete leaves pods of the old template until they are deleted, then
// recreates them at the update revision; whenDeleted: Delete makes the
// set own its claims.
func TestParallelOnDelete(t *testing.T) {
	cs := start(t)
	ctx := context.Background()
	set := newSet("par", 2)
	set.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
	set.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
	set.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenScaled: appsv1.RetainPersistentVolumeClaimRetentionPolicyType, WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType}
	if _, err := cs.AppsV1().StatefulSets("default").Create(ctx, set, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p0, p1 := waitPod(t, cs, "par-0"), waitPod(t, cs, "par-1")
	oldRev := p0.Labels[appsv1.StatefulSetRevisionLabel]
	waitFor(t, "the claims owned by the set", func() (bool, error) {
		for _, n := range []string{"data-par-0", "data-par-1"} {
			c, err := cs.CoreV1().PersistentVolumeClaims("default").Get(ctx, n, metav1.GetOptions{})
			if err != nil || owners(c.OwnerReferences) != "StatefulSet/par/true " {
				return false, fmt.Errorf("%s: %v %v", n, err, c.OwnerReferences)
			}
		}
		return true, nil
	})
	setReady(t, cs, p0)
	setReady(t, cs, p1)

	if _, err := cs.AppsV1().StatefulSets("default").Patch(ctx, "par", "application/merge-patch+json",
		[]byte(`{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"busybox:2"}]}}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	var updateRev string
	waitFor(t, "a new update revision", func() (bool, error) {
		s, err := cs.AppsV1().StatefulSets("default").Get(ctx, "par", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		updateRev = s.Status.UpdateRevision
		return s.Status.ObservedGeneration == 2 && updateRev != oldRev && s.Status.CurrentRevision == oldRev, nil
	})
	time.Sleep(500 * time.Millisecond)
	if p, err := cs.CoreV1().Pods("default").Get(ctx, "par-1", metav1.GetOptions{}); err != nil || p.UID != p1.UID || p.DeletionTimestamp != nil {
		t.Fatalf("OnDelete: par-1 was replaced or deleted (%v)", err)
	}
	if err := cs.CoreV1().Pods("default").Delete(ctx, "par-1", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "par-1 recreated at the update revision", func() (bool, error) {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "par-1", metav1.GetOptions{})
		return err == nil && p.UID != p1.UID && p.Labels[appsv1.StatefulSetRevisionLabel] == updateRev && p.Spec.Containers[0].Image == "busybox:2", err
	})
	if p, err := cs.CoreV1().Pods("default").Get(ctx, "par-0", metav1.GetOptions{}); err != nil || p.Labels[appsv1.StatefulSetRevisionLabel] != oldRev {
		t.Errorf("par-0 is not at the old revision any more (%v)", err)
	}
	revs, err := cs.AppsV1().ControllerRevisions("default").List(ctx, metav1.ListOptions{LabelSelector: "app=par"})
	if err != nil || len(revs.Items) != 2 {
		t.Errorf("ControllerRevisions of par: %d (%v), want 2", len(revs.Items), err)
	}
}
