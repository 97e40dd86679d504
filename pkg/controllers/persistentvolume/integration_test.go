package persistentvolume_test

// Against a real skiff API server (its admission adds the protection
// finalizers and the default class), the storage controllers as skiff
// runs them, each as its ServiceAccount (so their roles are exercised).
// The scheduler is not running: the test sets the selected-node
// annotation as its VolumeBinding plugin does.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/controllers"
	"github.com/skiff-dev/skiff/pkg/controllers/ephemeralvolume"
	"github.com/skiff-dev/skiff/pkg/controllers/localpath"
	"github.com/skiff-dev/skiff/pkg/controllers/persistentvolume"
	"github.com/skiff-dev/skiff/pkg/controllers/persistentvolume/expand"
	"github.com/skiff-dev/skiff/pkg/controllers/pvcprotection"
	"github.com/skiff-dev/skiff/pkg/controllers/pvprotection"
	"github.com/skiff-dev/skiff/test/integration"
)

func start(t *testing.T) kubernetes.Interface {
	cfg := integration.StartAPIServer(t, integration.ServerOptions{})
	integration.RunControllers(t, cfg, controllers.Options{UseServiceAccountCredentials: true,
		Controllers: []string{persistentvolume.Name, expand.Name, pvprotection.Name, pvcprotection.Name, ephemeralvolume.Name, localpath.Name,
			"serviceaccount-controller"}})
	return kubernetes.NewForConfigOrDie(cfg)
}

// createPod creates pod once its namespace has the default ServiceAccount.
func createPod(t *testing.T, cs kubernetes.Interface, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	var created *corev1.Pod
	waitFor(t, "pod "+pod.Name+" created", 20*time.Second, func() (bool, error) {
		var err error
		created, err = cs.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{})
		return err == nil, err
	})
	return created
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	integration.Eventually(t, timeout, func() string {
		if ok, err := cond(); !ok {
			return fmt.Sprintf("waiting for %s (last error: %v)", what, err)
		}
		return ""
	})
}

func claim(name string, class *string, size string, modes ...corev1.PersistentVolumeAccessMode) *corev1.PersistentVolumeClaim {
	if len(modes) == 0 {
		modes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	}
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: class, AccessModes: modes,
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}}}}
}

func volume(name, size string, reclaim corev1.PersistentVolumeReclaimPolicy, modes ...corev1.PersistentVolumeAccessMode) *corev1.PersistentVolume {
	if len(modes) == 0 {
		modes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	}
	return &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes: modes, PersistentVolumeReclaimPolicy: reclaim,
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/" + name}}}}
}

func events(t *testing.T, cs kubernetes.Interface, ns, kind, name string) []corev1.Event {
	t.Helper()
	list, err := cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: fields.Set{
		"involvedObject.kind": kind, "involvedObject.name": name}.String()})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func hasEvent(t *testing.T, cs kubernetes.Interface, ns, kind, name, reason, message string) func() (bool, error) {
	return func() (bool, error) {
		for _, e := range events(t, cs, ns, kind, name) {
			if e.Reason == reason && strings.Contains(e.Message, message) {
				return true, nil
			}
		}
		return false, fmt.Errorf("no %s event %q", reason, message)
	}
}

// TestStaticBinding: class-less claims bind to the smallest fitting PV of
// no class with fitting access modes; a claim nothing fits stays Pending
// with upstream's event; PVs and claims get their protection finalizers
// from admission.
func TestStaticBinding(t *testing.T) {
	cs := start(t)
	ctx := context.Background()
	ns := "default"
	for _, pv := range []*corev1.PersistentVolume{
		volume("big", "10Gi", corev1.PersistentVolumeReclaimRetain),
		volume("small", "2Gi", corev1.PersistentVolumeReclaimRetain),
		volume("tiny", "500Mi", corev1.PersistentVolumeReclaimRetain),
		volume("rwx", "1Gi", corev1.PersistentVolumeReclaimRetain, corev1.ReadWriteMany),
	} {
		if _, err := cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "PVs Available", 20*time.Second, func() (bool, error) {
		list, err := cs.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, pv := range list.Items {
			if pv.Status.Phase != corev1.VolumeAvailable {
				return false, fmt.Errorf("%s is %s", pv.Name, pv.Status.Phase)
			}
		}
		return len(list.Items) == 4, nil
	})
	for _, c := range []*corev1.PersistentVolumeClaim{claim("one", ptr.To(""), "1Gi"), claim("huge", ptr.To(""), "100Gi")} {
		if _, err := cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, c, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var pvc *corev1.PersistentVolumeClaim
	waitFor(t, "claim one Bound", 20*time.Second, func() (bool, error) {
		var err error
		pvc, err = cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "one", metav1.GetOptions{})
		return err == nil && pvc.Status.Phase == corev1.ClaimBound, err
	})
	if pvc.Spec.VolumeName != "small" {
		t.Errorf("claim one bound to %q, want the smallest fitting PV small", pvc.Spec.VolumeName)
	}
	if pvc.Annotations["pv.kubernetes.io/bind-completed"] != "yes" || pvc.Annotations["pv.kubernetes.io/bound-by-controller"] != "yes" {
		t.Errorf("claim annotations %v", pvc.Annotations)
	}
	if q := pvc.Status.Capacity[corev1.ResourceStorage]; q.String() != "2Gi" || !slices.Equal(pvc.Status.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
		t.Errorf("claim status %+v", pvc.Status)
	}
	if !slices.Contains(pvc.Finalizers, "kubernetes.io/pvc-protection") {
		t.Errorf("claim finalizers %v", pvc.Finalizers)
	}
	pv, err := cs.CoreV1().PersistentVolumes().Get(ctx, "small", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pv.Status.Phase != corev1.VolumeBound || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != pvc.UID ||
		pv.Annotations["pv.kubernetes.io/bound-by-controller"] != "yes" || !slices.Contains(pv.Finalizers, "kubernetes.io/pv-protection") {
		t.Errorf("PV small: phase %s, claimRef %+v, annotations %v, finalizers %v", pv.Status.Phase, pv.Spec.ClaimRef, pv.Annotations, pv.Finalizers)
	}
	waitFor(t, "FailedBinding of huge", 20*time.Second, hasEvent(t, cs, ns, "PersistentVolumeClaim", "huge", "FailedBinding",
		"no persistent volumes available for this claim and no storage class is set"))
	huge, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "huge", metav1.GetOptions{})
	if err != nil || huge.Status.Phase != corev1.ClaimPending {
		t.Errorf("claim huge: %v %v", huge.Status.Phase, err)
	}

	// Retain: the claim goes, the PV is Released and stays (its
	// pv-protection finalizer goes once it is not Bound).
	if err := cs.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "one", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "PV small Released", 20*time.Second, func() (bool, error) {
		pv, err := cs.CoreV1().PersistentVolumes().Get(ctx, "small", metav1.GetOptions{})
		return err == nil && pv.Status.Phase == corev1.VolumeReleased, err
	})
	// Deleting a Released PV: nothing keeps it.
	if err := cs.CoreV1().PersistentVolumes().Delete(ctx, "small", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "PV small gone", 20*time.Second, func() (bool, error) {
		_, err := cs.CoreV1().PersistentVolumes().Get(ctx, "small", metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
}

// TestPreBoundAndProtection: a claim naming its PV binds to it; the PV
// cannot go while Bound, the claim not while a scheduled pod uses it.
func TestPreBoundAndProtection(t *testing.T) {
	cs := start(t)
	ctx := context.Background()
	ns := "default"
	if _, err := cs.CoreV1().PersistentVolumes().Create(ctx, volume("named", "1Gi", corev1.PersistentVolumeReclaimRetain), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c := claim("data", ptr.To(""), "1Gi")
	c.Spec.VolumeName = "named"
	if _, err := cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, c, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "claim data Bound", 20*time.Second, func() (bool, error) {
		pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
		return err == nil && pvc.Status.Phase == corev1.ClaimBound, err
	})
	pvc, _ := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
	if _, ok := pvc.Annotations["pv.kubernetes.io/bound-by-controller"]; ok {
		t.Errorf("a claim the user bound got bound-by-controller: %v", pvc.Annotations)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "user"}, Spec: corev1.PodSpec{NodeName: "some-node",
		Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
		Volumes:    []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}}}
	createPod(t, cs, pod)
	waitFor(t, "Unused=False", 20*time.Second, func() (bool, error) {
		pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range pvc.Status.Conditions {
			if c.Type == corev1.PersistentVolumeClaimUnused {
				return c.Status == corev1.ConditionFalse && c.Reason == "PodUsingPVC", fmt.Errorf("%+v", c)
			}
		}
		return false, nil
	})
	for _, del := range []func() error{
		func() error { return cs.CoreV1().PersistentVolumes().Delete(ctx, "named", metav1.DeleteOptions{}) },
		func() error {
			return cs.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "data", metav1.DeleteOptions{})
		},
	} {
		if err := del(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second)
	pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
	if err != nil || pvc.DeletionTimestamp == nil {
		t.Fatalf("the claim in use must stay, terminating: %v", err)
	}
	pv, err := cs.CoreV1().PersistentVolumes().Get(ctx, "named", metav1.GetOptions{})
	if err != nil || pv.DeletionTimestamp == nil || pv.Status.Phase != corev1.VolumeBound {
		t.Fatalf("the Bound PV must stay, terminating: %v", err)
	}
	// The pod goes (no kubelet: at once): then the claim, then the PV,
	// Released.
	if err := cs.CoreV1().Pods(ns).Delete(ctx, "user", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "claim and PV gone", 30*time.Second, func() (bool, error) {
		_, err1 := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
		_, err2 := cs.CoreV1().PersistentVolumes().Get(ctx, "named", metav1.GetOptions{})
		return apierrors.IsNotFound(err1) && apierrors.IsNotFound(err2), fmt.Errorf("claim: %v, PV: %v", err1, err2)
	})
}

// TestLocalPathProvisioning: the default class local-path exists; a
// class-less claim gets it, waits for a consumer, then (node selected) is
// provisioned a hostPath PV on that node and bound; deleting the claim
// deletes the PV (reclaimPolicy Delete).
func TestLocalPathProvisioning(t *testing.T) {
	cs := start(t)
	ctx := context.Background()
	ns := "default"
	var class *storagev1.StorageClass
	waitFor(t, "the local-path class", 20*time.Second, func() (bool, error) {
		var err error
		class, err = cs.StorageV1().StorageClasses().Get(ctx, "local-path", metav1.GetOptions{})
		return err == nil, err
	})
	if class.Provisioner != localpath.Provisioner || *class.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer ||
		*class.ReclaimPolicy != corev1.PersistentVolumeReclaimDelete || class.Annotations["storageclass.kubernetes.io/is-default-class"] != "true" {
		t.Errorf("class %+v", class)
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{"kubernetes.io/hostname": "host-a"}}}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The DefaultStorageClass admission may only see the class a moment
	// later: retry until the claim is created with it.
	var pvc *corev1.PersistentVolumeClaim
	waitFor(t, "a claim of the default class", 20*time.Second, func() (bool, error) {
		c, err := cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, claim("web", nil, "3Gi"), metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		if c.Spec.StorageClassName != nil && *c.Spec.StorageClassName == "local-path" {
			pvc = c
			return true, nil
		}
		return false, cs.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "web", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	})
	waitFor(t, "WaitForFirstConsumer", 20*time.Second, hasEvent(t, cs, ns, "PersistentVolumeClaim", "web", "WaitForFirstConsumer",
		"waiting for first consumer to be created before binding"))
	pvc, _ = cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "web", metav1.GetOptions{})
	if pvc.Status.Phase != corev1.ClaimPending || pvc.Spec.VolumeName != "" {
		t.Fatalf("claim without consumer: %s, volume %q", pvc.Status.Phase, pvc.Spec.VolumeName)
	}
	// What the scheduler's VolumeBinding does in PreBind.
	pvc.Annotations = map[string]string{"volume.kubernetes.io/selected-node": "node-a"}
	if _, err := cs.CoreV1().PersistentVolumeClaims(ns).Update(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "claim web Bound", 30*time.Second, func() (bool, error) {
		var err error
		pvc, err = cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && pvc.Status.Phase == corev1.ClaimBound, err
	})
	pvName := "pvc-" + string(pvc.UID)
	if pvc.Spec.VolumeName != pvName || pvc.Annotations["volume.kubernetes.io/storage-provisioner"] != localpath.Provisioner ||
		pvc.Annotations["volume.beta.kubernetes.io/storage-provisioner"] != localpath.Provisioner {
		t.Errorf("claim: volume %q, annotations %v", pvc.Spec.VolumeName, pvc.Annotations)
	}
	pv, err := cs.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	terms := pv.Spec.NodeAffinity.Required.NodeSelectorTerms
	if pv.Annotations["pv.kubernetes.io/provisioned-by"] != localpath.Provisioner || pv.Spec.StorageClassName != "local-path" ||
		pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || pv.Spec.HostPath == nil ||
		!strings.HasSuffix(pv.Spec.HostPath.Path, "/storage/"+pvName) ||
		len(terms) != 1 || terms[0].MatchExpressions[0].Key != "kubernetes.io/hostname" || terms[0].MatchExpressions[0].Values[0] != "host-a" {
		t.Errorf("PV %+v", pv)
	}
	if q := pv.Spec.Capacity[corev1.ResourceStorage]; q.String() != "3Gi" {
		t.Errorf("PV capacity %s", q.String())
	}
	for _, reason := range []string{"ExternalProvisioning", "Provisioning", "ProvisioningSucceeded"} {
		waitFor(t, reason, 10*time.Second, hasEvent(t, cs, ns, "PersistentVolumeClaim", "web", reason, ""))
	}
	if err := cs.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "PV deleted", 30*time.Second, func() (bool, error) {
		_, err := cs.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
}

// TestEphemeralVolume: a pod's generic ephemeral volume gets its claim,
// owned by the pod.
func TestEphemeralVolume(t *testing.T) {
	cs := start(t)
	ctx := context.Background()
	ns := "default"
	tmpl := claim("", ptr.To(""), "1Gi")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "eph"}, Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
		Volumes: []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{
			VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "eph"}}, Spec: tmpl.Spec}}}}}}}
	pod = createPod(t, cs, pod)
	var pvc *corev1.PersistentVolumeClaim
	var err error
	waitFor(t, "the ephemeral claim", 20*time.Second, func() (bool, error) {
		pvc, err = cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "eph-scratch", metav1.GetOptions{})
		return err == nil, err
	})
	ref := metav1.GetControllerOf(pvc)
	if ref == nil || ref.UID != pod.UID || ref.Kind != "Pod" || !ptr.Deref(ref.BlockOwnerDeletion, false) || pvc.Labels["app"] != "eph" {
		t.Errorf("claim owner %+v, labels %v", ref, pvc.Labels)
	}
	// Deleted while its pod exists: made again (the finalizer goes: the
	// pod is not scheduled).
	if err := cs.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "eph-scratch", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the claim made again", 20*time.Second, func() (bool, error) {
		c, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "eph-scratch", metav1.GetOptions{})
		return err == nil && c.UID != pvc.UID && c.DeletionTimestamp == nil, err
	})
}

// TestExpansion: a Bound claim of a class allowing expansion may grow
// (nothing expands it here: ExternalExpanding); of local-path it may not.
func TestExpansion(t *testing.T) {
	cs := start(t)
	ctx := context.Background()
	ns := "default"
	class := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "grow"}, Provisioner: "kubernetes.io/no-provisioner",
		AllowVolumeExpansion: ptr.To(true)}
	if _, err := cs.StorageV1().StorageClasses().Create(ctx, class, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"grow", "local-path"} {
		pv := volume("pv-"+c, "1Gi", corev1.PersistentVolumeReclaimRetain)
		pv.Spec.StorageClassName = c
		pv.Spec.ClaimRef = &corev1.ObjectReference{Namespace: ns, Name: c}
		if _, err := cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, claim(c, ptr.To(c), "1Gi"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	grow := func(name string) error {
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			pvc.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
			_, err = cs.CoreV1().PersistentVolumeClaims(ns).Update(ctx, pvc, metav1.UpdateOptions{})
			return err
		})
	}
	for _, c := range []string{"grow", "local-path"} {
		waitFor(t, "claim "+c+" Bound", 20*time.Second, func() (bool, error) {
			pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, c, metav1.GetOptions{})
			return err == nil && pvc.Status.Phase == corev1.ClaimBound, err
		})
	}
	if err := grow("local-path"); err == nil || !strings.Contains(err.Error(), "the storageclass that provisions the pvc must support resize") {
		t.Errorf("growing a local-path claim: %v", err)
	}
	waitFor(t, "claim grown", 10*time.Second, func() (bool, error) { err := grow("grow"); return err == nil, err })
	waitFor(t, "ExternalExpanding", 20*time.Second, hasEvent(t, cs, ns, "PersistentVolumeClaim", "grow", "ExternalExpanding",
		"waiting for an external controller to expand this PVC"))
}
