// Package storage installs the storage.k8s.io/v1 types into a scheme.
package storage

import (
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis/core"
	"github.com/skiff-dev/skiff/pkg/apis/internalversion"
)

// Install registers storage.k8s.io/v1 and its internal version. The core
// group must be installed first (VolumeAttachment defaulting reuses the
// PersistentVolume defaulter).
func Install(scheme *runtime.Scheme) error {
	if err := internalversion.Install(scheme, storagev1.AddToScheme, storagev1.SchemeGroupVersion, &storagev1.StorageClass{}); err != nil {
		return err
	}
	RegisterDefaults(scheme)
	return nil
}

// RegisterDefaults adds the storage/v1 defaulters to scheme, as upstream's
// pkg/apis/storage/v1 defaults.go with the v1.37 gate defaults
// (SELinuxMountReadWriteOncePod GA, VolumeLimitScaling beta and on).
// CSINodes have none.
func RegisterDefaults(scheme *runtime.Scheme) {
	core.AddDefaulters(scheme, &storagev1.StorageClass{}, &storagev1.StorageClassList{},
		func(l *storagev1.StorageClassList) []storagev1.StorageClass { return l.Items }, setDefaultsStorageClass)
	core.AddDefaulters(scheme, &storagev1.CSIDriver{}, &storagev1.CSIDriverList{},
		func(l *storagev1.CSIDriverList) []storagev1.CSIDriver { return l.Items }, setDefaultsCSIDriver)
	core.AddDefaulters(scheme, &storagev1.VolumeAttachment{}, &storagev1.VolumeAttachmentList{},
		func(l *storagev1.VolumeAttachmentList) []storagev1.VolumeAttachment { return l.Items },
		func(va *storagev1.VolumeAttachment) { setDefaultsVolumeAttachment(scheme, va) })
}

func setDefaultsStorageClass(sc *storagev1.StorageClass) {
	if sc.ReclaimPolicy == nil {
		sc.ReclaimPolicy = ptr.To(corev1.PersistentVolumeReclaimDelete)
	}
	if sc.VolumeBindingMode == nil {
		sc.VolumeBindingMode = ptr.To(storagev1.VolumeBindingImmediate)
	}
}

func setDefaultsCSIDriver(d *storagev1.CSIDriver) {
	spec := &d.Spec
	for _, b := range []struct {
		field **bool
		value bool
	}{
		{&spec.AttachRequired, true},
		{&spec.PodInfoOnMount, false},
		{&spec.StorageCapacity, false},
		{&spec.RequiresRepublish, false},
		{&spec.SELinuxMount, false},
		{&spec.PreventPodSchedulingIfMissing, false},
	} {
		if *b.field == nil {
			*b.field = ptr.To(b.value)
		}
	}
	if spec.FSGroupPolicy == nil {
		spec.FSGroupPolicy = ptr.To(storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy)
	}
	if len(spec.VolumeLifecycleModes) == 0 {
		spec.VolumeLifecycleModes = append(spec.VolumeLifecycleModes, storagev1.VolumeLifecyclePersistent)
	}
}

// setDefaultsVolumeAttachment defaults an inline volume spec's capacity and
// volume source as a PersistentVolume's (but not the PersistentVolume-level
// fields: reclaim policy, volume mode).
func setDefaultsVolumeAttachment(scheme *runtime.Scheme, va *storagev1.VolumeAttachment) {
	inline := va.Spec.Source.InlineVolumeSpec
	if inline == nil {
		return
	}
	pv := &corev1.PersistentVolume{Spec: corev1.PersistentVolumeSpec{
		Capacity: inline.Capacity, PersistentVolumeSource: inline.PersistentVolumeSource,
	}}
	scheme.Default(pv)
	inline.Capacity = pv.Spec.Capacity
	inline.PersistentVolumeSource = pv.Spec.PersistentVolumeSource
}
