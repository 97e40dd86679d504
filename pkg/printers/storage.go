package printers

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	isDefaultStorageClassAnnotation     = "storageclass.kubernetes.io/is-default-class"
	betaIsDefaultStorageClassAnnotation = "storageclass.beta.kubernetes.io/is-default-class"
)

// storageClassTable appends " (default)" to the name of the effective default
// class. As upstream, in a list only the newest annotated class (ties broken
// by name) is the effective default; a single object relies on its annotation.
var storageClassTable = &table[*storagev1.StorageClass]{
	columns: cols(
		nameColumn(),
		column("Provisioner", "string", storagev1.StorageClass{}.SwaggerDoc()["provisioner"]),
		column("ReclaimPolicy", "string", storagev1.StorageClass{}.SwaggerDoc()["reclaimPolicy"]),
		column("VolumeBindingMode", "string", storagev1.StorageClass{}.SwaggerDoc()["volumeBindingMode"]),
		column("AllowVolumeExpansion", "string", storagev1.StorageClass{}.SwaggerDoc()["allowVolumeExpansion"]),
		ageColumn(),
	),
	cells: func(sc *storagev1.StorageClass) ([]any, error) {
		return storageClassCells(sc, isDefaultStorageClass(sc.ObjectMeta)), nil
	},
	forList: func(items []*storagev1.StorageClass) func(*storagev1.StorageClass) ([]any, error) {
		var effective *storagev1.StorageClass
		for _, sc := range items {
			if !isDefaultStorageClass(sc.ObjectMeta) {
				continue
			}
			if effective == nil || newerOrFirstByName(sc, effective) {
				effective = sc
			}
		}
		return func(sc *storagev1.StorageClass) ([]any, error) {
			return storageClassCells(sc, effective != nil && sc.Name == effective.Name), nil
		}
	},
}

func newerOrFirstByName(a, b *storagev1.StorageClass) bool {
	ta, tb := a.CreationTimestamp.UnixNano(), b.CreationTimestamp.UnixNano()
	if ta == tb {
		return a.Name < b.Name
	}
	return ta > tb
}

func isDefaultStorageClass(m metav1.ObjectMeta) bool {
	return m.Annotations[isDefaultStorageClassAnnotation] == "true" ||
		m.Annotations[betaIsDefaultStorageClassAnnotation] == "true"
}

func storageClassCells(sc *storagev1.StorageClass, isDefault bool) []any {
	name := sc.Name
	if isDefault {
		name += " (default)"
	}
	reclaimPolicy := string(corev1.PersistentVolumeReclaimDelete)
	if sc.ReclaimPolicy != nil {
		reclaimPolicy = string(*sc.ReclaimPolicy)
	}
	bindingMode := string(storagev1.VolumeBindingImmediate)
	if sc.VolumeBindingMode != nil {
		bindingMode = string(*sc.VolumeBindingMode)
	}
	return []any{name, sc.Provisioner, reclaimPolicy, bindingMode, deref(sc.AllowVolumeExpansion), age(sc.CreationTimestamp)}
}

var csiDriverTable = newTable(
	cols(
		nameColumn(),
		column("AttachRequired", "boolean", storagev1.CSIDriverSpec{}.SwaggerDoc()["attachRequired"]),
		column("PodInfoOnMount", "boolean", storagev1.CSIDriverSpec{}.SwaggerDoc()["podInfoOnMount"]),
		column("StorageCapacity", "boolean", storagev1.CSIDriverSpec{}.SwaggerDoc()["storageCapacity"]),
		column("TokenRequests", "string", storagev1.CSIDriverSpec{}.SwaggerDoc()["tokenRequests"]),
		column("RequiresRepublish", "boolean", storagev1.CSIDriverSpec{}.SwaggerDoc()["requiresRepublish"]),
		column("Modes", "string", storagev1.CSIDriverSpec{}.SwaggerDoc()["volumeLifecycleModes"]),
		ageColumn(),
	),
	func(d *storagev1.CSIDriver) []any {
		attachRequired := true
		if d.Spec.AttachRequired != nil {
			attachRequired = *d.Spec.AttachRequired
		}
		tokenRequests := unset
		if d.Spec.TokenRequests != nil {
			audiences := make([]string, len(d.Spec.TokenRequests))
			for i, t := range d.Spec.TokenRequests {
				audiences[i] = t.Audience
			}
			tokenRequests = strings.Join(audiences, ",")
		}
		modes := make([]string, len(d.Spec.VolumeLifecycleModes))
		for i, m := range d.Spec.VolumeLifecycleModes {
			modes[i] = string(m)
		}
		return []any{d.Name, attachRequired, deref(d.Spec.PodInfoOnMount), deref(d.Spec.StorageCapacity),
			tokenRequests, deref(d.Spec.RequiresRepublish), orNone(strings.Join(modes, ",")), age(d.CreationTimestamp)}
	},
)

var csiNodeTable = newTable(
	cols(nameColumn(), column("Drivers", "integer", "Drivers indicates the number of CSI drivers registered on the node"), ageColumn()),
	func(n *storagev1.CSINode) []any {
		return []any{n.Name, int64(len(n.Spec.Drivers)), age(n.CreationTimestamp)}
	},
)

var volumeAttachmentTable = newTable(
	cols(
		nameColumn(),
		// Upstream marks this column with the "name" format too.
		metav1.TableColumnDefinition{Name: "Attacher", Type: "string", Format: "name", Description: storagev1.VolumeAttachmentSpec{}.SwaggerDoc()["attacher"]},
		column("PV", "string", storagev1.VolumeAttachmentSource{}.SwaggerDoc()["persistentVolumeName"]),
		column("Node", "string", storagev1.VolumeAttachmentSpec{}.SwaggerDoc()["nodeName"]),
		column("Attached", "boolean", storagev1.VolumeAttachmentStatus{}.SwaggerDoc()["attached"]),
		ageColumn(),
	),
	func(va *storagev1.VolumeAttachment) []any {
		return []any{va.Name, va.Spec.Attacher, deref(va.Spec.Source.PersistentVolumeName), va.Spec.NodeName, va.Status.Attached, age(va.CreationTimestamp)}
	},
)
