// Package storageobjectinuseprotection is upstream's
// StorageObjectInUseProtection admission plugin: every PersistentVolume
// created gets the kubernetes.io/pv-protection finalizer and every
// PersistentVolumeClaim the kubernetes.io/pvc-protection finalizer. The
// pv-protection and pvc-protection controllers remove them once the object
// is deleted and no longer in use (a PV not Bound, a PVC no scheduled pod
// uses), so a volume in use cannot disappear under its consumer.
//
// Upstream also protects VolumeAttributesClasses
// (kubernetes.io/vac-protection); skiff does not serve that resource yet.
package storageobjectinuseprotection

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/klog/v2"
)

const (
	// PluginName is the plugin's name in upstream's admission chain.
	PluginName = "StorageObjectInUseProtection"
	// PVProtectionFinalizer keeps a PersistentVolume while it is Bound.
	PVProtectionFinalizer = "kubernetes.io/pv-protection"
	// PVCProtectionFinalizer keeps a PersistentVolumeClaim while a pod
	// uses it.
	PVCProtectionFinalizer = "kubernetes.io/pvc-protection"
)

// Plugin is the StorageObjectInUseProtection admission plugin.
type Plugin struct {
	*admission.Handler
}

var _ admission.MutationInterface = &Plugin{}

// New returns the plugin; it acts on creation only, as upstream's.
func New() *Plugin {
	return &Plugin{Handler: admission.NewHandler(admission.Create)}
}

// Admit adds the protection finalizer to a new PV or PVC (not to
// subresources); objects of other types are let through untouched.
func (p *Plugin) Admit(_ context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if a.GetSubresource() != "" {
		return nil
	}
	switch a.GetResource().GroupResource() {
	case corev1.Resource("persistentvolumes"):
		if pv, ok := a.GetObject().(*corev1.PersistentVolume); ok && !slices.Contains(pv.Finalizers, PVProtectionFinalizer) {
			klog.V(4).InfoS("Adding PV protection finalizer", "PV", klog.KObj(pv))
			pv.Finalizers = append(pv.Finalizers, PVProtectionFinalizer)
		}
	case corev1.Resource("persistentvolumeclaims"):
		if pvc, ok := a.GetObject().(*corev1.PersistentVolumeClaim); ok && !slices.Contains(pvc.Finalizers, PVCProtectionFinalizer) {
			klog.V(4).InfoS("Adding PVC protection finalizer", "PVC", klog.KObj(pvc))
			pvc.Finalizers = append(pvc.Finalizers, PVCProtectionFinalizer)
		}
	}
	return nil
}
