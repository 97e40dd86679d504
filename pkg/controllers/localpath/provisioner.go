// Package localpath is skiff's built-in dynamic provisioner, k3s's
// local-path-provisioner (rancher.io/local-path) in the controller
// manager: the default StorageClass "local-path" (provisioner
// skiff.dev/local-path, WaitForFirstConsumer, reclaimPolicy Delete) and an
// external provisioner for it, as sig-storage-lib-external-provisioner
// drives one.
//
// A claim the PV controller handed to skiff.dev/local-path
// (volume.kubernetes.io/storage-provisioner) once the scheduler chose its
// node (volume.kubernetes.io/selected-node) gets a hostPath
// PersistentVolume "pvc-<claim UID>" at <path>/pvc-<claim UID> with
// DirectoryOrCreate, required node affinity on the node's
// kubernetes.io/hostname, the claim's size, access modes (ReadWriteOnce
// and ReadWriteOncePod only: the directory is on one node), class, the
// class's reclaim policy and mount options, claimRef to the claim and
// pv.kubernetes.io/provisioned-by: skiff.dev/local-path; the PV controller
// then binds the two. Events on the claim as the external provisioner
// library's: Provisioning, ProvisioningSucceeded, ProvisioningFailed.
// <path> is the class's parameters.nodePath (as local-path-provisioner's
// StorageClass parameter) or DefaultPath.
//
// Only the PV object is made here: the directory is the node's to create
// when a pod mounts it (the hostPath type DirectoryOrCreate; simulated
// nodes mount nothing), and to remove. A Released PV of this provisioner
// with reclaimPolicy Delete is deleted (the object; removing the directory
// on its node, local-path-provisioner's helper pod, waits for the kubelet
// on a container runtime).
package localpath

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	storagehelpers "k8s.io/component-helpers/storage/volume"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/skiff-dev/skiff/pkg/admission/defaultstorageclass"
)

const (
	// Name is the controller's name in --controllers (skiff's own).
	Name = "local-path-provisioner-controller"
	// Provisioner is the provisioner name of its class and PVs.
	Provisioner = "skiff.dev/local-path"
	// ClassName is the default StorageClass it serves.
	ClassName = "local-path"
	// NodePathParameter is the StorageClass parameter naming the base
	// directory on the nodes.
	NodePathParameter = "nodePath"

	// Event reasons, the external provisioner library's.
	ReasonProvisioning          = "Provisioning"
	ReasonProvisioningSucceeded = "ProvisioningSucceeded"
	ReasonProvisioningFailed    = "ProvisioningFailed"
)

// DefaultPath is <data-dir>/storage of skiff's default --data-dir
// (/var/lib/skiff as root, else ~/.skiff), k3s's
// /var/lib/rancher/k3s/storage.
func DefaultPath() string {
	if os.Geteuid() == 0 {
		return "/var/lib/skiff/storage"
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".skiff", "storage")
	}
	return filepath.Join(".skiff", "storage")
}

// DefaultClass is the StorageClass created at start if there is none of
// its name.
func DefaultClass() *storagev1.StorageClass {
	return &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: ClassName, Annotations: map[string]string{defaultstorageclass.IsDefaultAnnotation: "true"}},
		Provisioner:       Provisioner,
		ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
	}
}

// Reconciler creates and deletes the local-path PVs.
type Reconciler struct {
	// Client reads claims, PVs, classes and nodes through the manager's
	// cache.
	Client client.Client
	// Core writes.
	Core     kubernetes.Interface
	Recorder record.EventRecorder
	// Path is the nodes' base directory when the class names none; "":
	// DefaultPath().
	Path string
	// NoDefaultClass: do not create the local-path class at start.
	NoDefaultClass bool
}

// SetupWithManager registers the provisioning and deleting loops and the
// start-up creation of the class.
func (r *Reconciler) SetupWithManager(mgr manager.Manager) error {
	if r.Path == "" {
		r.Path = DefaultPath()
	}
	if r.Recorder == nil {
		r.Recorder = &record.FakeRecorder{}
	}
	if !r.NoDefaultClass {
		if err := mgr.Add(manager.RunnableFunc(r.ensureClass)); err != nil {
			return err
		}
	}
	err := builder.ControllerManagedBy(mgr).Named("localpath-provision").
		For(&corev1.PersistentVolumeClaim{}, builder.WithPredicates(filter(needsVolume))).
		WithOptions(controller.Options{MaxConcurrentReconciles: 2}).
		Complete(reconcile.Func(r.reconcileClaim))
	if err != nil {
		return err
	}
	return builder.ControllerManagedBy(mgr).Named("localpath-delete").
		For(&corev1.PersistentVolume{}, builder.WithPredicates(filter(needsDeleting))).
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Complete(reconcile.Func(r.reconcileVolume))
}

func filter(f func(client.Object) bool) predicate.Funcs {
	return predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return f(e.Object) },
		UpdateFunc:  func(e event.UpdateEvent) bool { return f(e.ObjectNew) },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(e event.GenericEvent) bool { return f(e.Object) },
	}
}

// ensureClass creates the local-path class unless one of its name exists
// (k3s's manifests are applied at every start the same way): a class the
// user changed, or deleted while skiff runs, is left as it is until the
// next start.
func (r *Reconciler) ensureClass(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	for {
		_, err := r.Core.StorageV1().StorageClasses().Create(ctx, DefaultClass(), metav1.CreateOptions{})
		if err == nil {
			logger.Info("Created the default StorageClass", "storageClass", ClassName, "provisioner", Provisioner)
			return nil
		}
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		logger.Info("Cannot create the default StorageClass; retrying", "storageClass", ClassName, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-after(5):
		}
	}
}

func provisionerOf(pvc *corev1.PersistentVolumeClaim) string {
	if p, ok := pvc.Annotations[storagehelpers.AnnStorageProvisioner]; ok {
		return p
	}
	return pvc.Annotations[storagehelpers.AnnBetaStorageProvisioner]
}

func needsVolume(o client.Object) bool {
	pvc, ok := o.(*corev1.PersistentVolumeClaim)
	return ok && pvc.DeletionTimestamp == nil && pvc.Spec.VolumeName == "" && provisionerOf(pvc) == Provisioner
}

func needsDeleting(o client.Object) bool {
	pv, ok := o.(*corev1.PersistentVolume)
	return ok && pv.DeletionTimestamp == nil && pv.Annotations[storagehelpers.AnnDynamicallyProvisioned] == Provisioner &&
		pv.Status.Phase == corev1.VolumeReleased && pv.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete
}

// VolumeName is the PV made for a claim, the PV controller's name for it.
func VolumeName(pvc *corev1.PersistentVolumeClaim) string { return "pvc-" + string(pvc.UID) }

func (r *Reconciler) reconcileClaim(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	pvc := &corev1.PersistentVolumeClaim{}
	if err := r.Client.Get(ctx, req.NamespacedName, pvc); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !needsVolume(pvc) {
		return reconcile.Result{}, nil
	}
	pvName := VolumeName(pvc)
	if existing := (&corev1.PersistentVolume{}); r.Client.Get(ctx, types.NamespacedName{Name: pvName}, existing) == nil {
		return reconcile.Result{}, nil
	}
	class := &storagev1.StorageClass{}
	className := storagehelpers.GetPersistentVolumeClaimClass(pvc)
	if err := r.Client.Get(ctx, types.NamespacedName{Name: className}, class); err != nil {
		if apierrors.IsNotFound(err) {
			// Another class of the same provisioner, gone: nothing to do.
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	if class.Provisioner != Provisioner {
		return reconcile.Result{}, nil
	}
	key := pvc.Namespace + "/" + pvc.Name
	r.Recorder.Event(pvc, corev1.EventTypeNormal, ReasonProvisioning, fmt.Sprintf("External provisioner is provisioning volume for claim %q", key))
	pv, err := r.volumeFor(ctx, pvc, class, pvName)
	if err != nil {
		r.Recorder.Event(pvc, corev1.EventTypeWarning, ReasonProvisioningFailed, fmt.Sprintf("failed to provision volume with StorageClass %q: %v", class.Name, err))
		return reconcile.Result{}, err
	}
	if _, err := r.Core.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		r.Recorder.Event(pvc, corev1.EventTypeWarning, ReasonProvisioningFailed, fmt.Sprintf("failed to provision volume with StorageClass %q: %v", class.Name, err))
		return reconcile.Result{}, err
	}
	klog.FromContext(ctx).V(2).Info("Volume provisioned for claim", "PVC", klog.KObj(pvc), "volumeName", pvName, "node", pv.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values[0], "path", pv.Spec.HostPath.Path)
	r.Recorder.Event(pvc, corev1.EventTypeNormal, ReasonProvisioningSucceeded, "Successfully provisioned volume "+pvName)
	return reconcile.Result{}, nil
}

// volumeFor builds the PV for pvc on its selected node.
func (r *Reconciler) volumeFor(ctx context.Context, pvc *corev1.PersistentVolumeClaim, class *storagev1.StorageClass, pvName string) (*corev1.PersistentVolume, error) {
	nodeName := pvc.Annotations[storagehelpers.AnnSelectedNode]
	if nodeName == "" {
		return nil, fmt.Errorf("configuration error, no node was specified")
	}
	if pvc.Spec.Selector != nil {
		return nil, fmt.Errorf("claim.Spec.Selector is not supported")
	}
	if pvc.Spec.VolumeMode != nil && *pvc.Spec.VolumeMode == corev1.PersistentVolumeBlock {
		return nil, fmt.Errorf("block volume mode is not supported")
	}
	for _, m := range pvc.Spec.AccessModes {
		if m != corev1.ReadWriteOnce && m != corev1.ReadWriteOncePod {
			return nil, fmt.Errorf("only ReadWriteOnce and ReadWriteOncePod access modes are supported, not %s", m)
		}
	}
	node := &corev1.Node{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: nodeName}, node); err != nil {
		return nil, fmt.Errorf("failed to get node %s: %w", nodeName, err)
	}
	hostname, ok := node.Labels[corev1.LabelHostname]
	if !ok {
		hostname = node.Name
	}
	base := r.Path
	if p := class.Parameters[NodePathParameter]; p != "" {
		base = p
	}
	if !filepath.IsAbs(base) {
		return nil, fmt.Errorf("%s %q is not an absolute path", NodePathParameter, base)
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		reclaim = *class.ReclaimPolicy
	}
	mode := corev1.PersistentVolumeFilesystem
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: pvName, Annotations: map[string]string{storagehelpers.AnnDynamicallyProvisioned: Provisioner}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: pvc.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes:                   slices.Clone(pvc.Spec.AccessModes),
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              class.Name,
			MountOptions:                  slices.Clone(class.MountOptions),
			VolumeMode:                    &mode,
			ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: pvc.Namespace, Name: pvc.Name,
				UID: pvc.UID, ResourceVersion: pvc.ResourceVersion},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: filepath.Join(base, pvName), Type: ptr.To(corev1.HostPathDirectoryOrCreate)}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{hostname}}},
			}}}},
		},
	}, nil
}

// reconcileVolume deletes a Released Delete-policy PV of the provisioner.
func (r *Reconciler) reconcileVolume(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	pv := &corev1.PersistentVolume{}
	if err := r.Client.Get(ctx, req.NamespacedName, pv); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !needsDeleting(pv) {
		return reconcile.Result{}, nil
	}
	// Decide on the volume as it is now, with a precondition against a
	// change in between.
	fresh, err := r.Core.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
	if err != nil || !needsDeleting(fresh) {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	err = r.Core.CoreV1().PersistentVolumes().Delete(ctx, fresh.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &fresh.UID, ResourceVersion: &fresh.ResourceVersion}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	klog.FromContext(ctx).V(2).Info("Volume deleted", "volumeName", fresh.Name, "path", hostPath(fresh))
	return reconcile.Result{}, nil
}

func hostPath(pv *corev1.PersistentVolume) string {
	if pv.Spec.HostPath == nil {
		return ""
	}
	return pv.Spec.HostPath.Path
}

func after(seconds int) <-chan time.Time { return time.After(time.Duration(seconds) * time.Second) }
