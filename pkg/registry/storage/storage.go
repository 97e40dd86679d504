// Package storage builds the storage of the storage.k8s.io/v1 resources
// served so far: storageclasses, csidrivers, csinodes and
// volumeattachments. As upstream, DELETE answers with the deleted object.
package storage

import (
	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	corevalidation "github.com/skiff-dev/skiff/pkg/apis/core/validation"
	storagevalidation "github.com/skiff-dev/skiff/pkg/apis/storage/validation"
	"github.com/skiff-dev/skiff/pkg/registry/store"
)

func gr(resource string) schema.GroupResource {
	return schema.GroupResource{Group: storagev1.GroupName, Resource: resource}
}

// Resources describes the served storage.k8s.io/v1 resources.
var Resources = []store.Resource{
	{Resource: gr("storageclasses"), Singular: "storageclass", ShortNames: []string{"sc"}, ReturnDeletedObject: true,
		New: func() runtime.Object { return &storagev1.StorageClass{} }, NewList: func() runtime.Object { return &storagev1.StorageClassList{} },
		Validate: corevalidation.ForCreate(storagevalidation.ValidateStorageClass), ValidateUpdate: corevalidation.ForUpdate(storagevalidation.ValidateStorageClassUpdate)},
	// As upstream, a CSIDriver's generation is not set on create and counts
	// up from there on spec changes.
	{Resource: gr("csidrivers"), Singular: "csidriver", ReturnDeletedObject: true, Warnings: storagevalidation.CSIDriverWarnings,
		PrepareForUpdate: func(obj, old runtime.Object) {
			d, o := obj.(*storagev1.CSIDriver), old.(*storagev1.CSIDriver)
			if !apiequality.Semantic.DeepEqual(d.Spec, o.Spec) {
				d.Generation = o.Generation + 1
			}
		},
		New: func() runtime.Object { return &storagev1.CSIDriver{} }, NewList: func() runtime.Object { return &storagev1.CSIDriverList{} },
		Validate: corevalidation.ForCreate(storagevalidation.ValidateCSIDriver), ValidateUpdate: corevalidation.ForUpdate(storagevalidation.ValidateCSIDriverUpdate)},
	{Resource: gr("csinodes"), Singular: "csinode", ReturnDeletedObject: true, HasStatus: true,
		New: func() runtime.Object { return &storagev1.CSINode{} }, NewList: func() runtime.Object { return &storagev1.CSINodeList{} },
		Validate: corevalidation.ForCreate(storagevalidation.ValidateCSINode), ValidateUpdate: corevalidation.ForUpdate(storagevalidation.ValidateCSINodeUpdate)},
	// As upstream, /status of volume attachments (and of CSINodes) keeps the
	// stored metadata but for managed fields.
	{Resource: gr("volumeattachments"), Singular: "volumeattachment", ReturnDeletedObject: true, HasStatus: true,
		PrepareForStatusUpdate: resetMetadata,
		New:                    func() runtime.Object { return &storagev1.VolumeAttachment{} }, NewList: func() runtime.Object { return &storagev1.VolumeAttachmentList{} },
		Validate: corevalidation.ForCreate(storagevalidation.ValidateVolumeAttachment), ValidateUpdate: corevalidation.ForUpdate(storagevalidation.ValidateVolumeAttachmentUpdate)},
}

// Storage returns the storage.k8s.io/v1 storage map, subresources included.
func Storage(optsGetter generic.RESTOptionsGetter) (map[string]rest.Storage, error) {
	m, err := store.Build(Resources, optsGetter)
	if err != nil {
		return nil, err
	}
	// csinodes/status: CSIVolumeHealth is off by default in v1.37, so
	// status.storageHealth is dropped unless the stored object has it.
	csinodes := m["csinodes"].(*store.REST).Subresource(func(obj, old runtime.Object) {
		n, o := obj.(*storagev1.CSINode), old.(*storagev1.CSINode)
		n.Spec = o.Spec
		if len(o.Status.StorageHealth) == 0 {
			n.Status.StorageHealth = nil
		}
		resetMetadata(obj, old)
	}, "spec")
	m["csinodes/status"] = &statusREST{StatusREST: csinodes}
	m["volumeattachments/status"] = &statusREST{StatusREST: m["volumeattachments/status"].(*store.StatusREST)}
	return m, nil
}

// statusREST is a /status that keeps the stored metadata: server-side
// apply attributes neither spec nor metadata to its writers.
type statusREST struct {
	*store.StatusREST
}

// GetResetFields resets metadata and spec.
func (r *statusREST) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return map[fieldpath.APIVersion]*fieldpath.Set{
		fieldpath.APIVersion(storagev1.SchemeGroupVersion.String()): fieldpath.NewSet(fieldpath.MakePathOrDie("metadata"), fieldpath.MakePathOrDie("spec")),
	}
}

// resetMetadata keeps the stored metadata of an object updated through
// /status, but for managed fields.
func resetMetadata(obj, old runtime.Object) {
	newMeta, err1 := meta.Accessor(obj)
	oldMeta, err2 := meta.Accessor(old)
	if err1 == nil && err2 == nil {
		metav1.ResetObjectMetaForStatus(newMeta, oldMeta)
	}
}
