package validation

import (
	"fmt"
	"path"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var (
	supportedAccessModes   = sets.New(corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod)
	supportedReclaimPolicy = sets.New(corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRecycle, corev1.PersistentVolumeReclaimRetain)
	supportedVolumeModes   = sets.New(corev1.PersistentVolumeBlock, corev1.PersistentVolumeFilesystem)
)

const betaStorageClassAnnotation = "volume.beta.kubernetes.io/storage-class"

func validateAccessModes(modes []corev1.PersistentVolumeAccessMode, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	rwop, other := false, false
	for _, m := range modes {
		if !supportedAccessModes.Has(m) {
			errs = append(errs, field.NotSupported(fldPath, m, sets.List(supportedAccessModes)))
		} else if m == corev1.ReadWriteOncePod {
			rwop = true
		} else {
			other = true
		}
	}
	if rwop && other {
		errs = append(errs, field.Forbidden(fldPath, "may not use ReadWriteOncePod with other access modes"))
	}
	return errs
}

// ValidatePersistentVolume validates a PV: access modes, a single positive
// storage capacity, exactly one volume source, reclaim policy, volume mode.
func ValidatePersistentVolume(pv *corev1.PersistentVolume) field.ErrorList {
	spec := &pv.Spec
	fldPath := field.NewPath("spec")
	var errs field.ErrorList
	if len(spec.AccessModes) == 0 {
		errs = append(errs, field.Required(fldPath.Child("accessModes"), ""))
	}
	errs = append(errs, validateAccessModes(spec.AccessModes, fldPath.Child("accessModes"))...)
	capPath := fldPath.Child("capacity")
	if len(spec.Capacity) == 0 {
		errs = append(errs, field.Required(capPath, ""))
	}
	if _, ok := spec.Capacity[corev1.ResourceStorage]; !ok || len(spec.Capacity) > 1 {
		errs = append(errs, field.NotSupported(capPath, spec.Capacity, []corev1.ResourceName{corev1.ResourceStorage}))
	}
	for r, q := range spec.Capacity {
		if q.Value() < 0 {
			errs = append(errs, field.Invalid(capPath.Key(string(r)), q.Value(), "must be a valid resource quantity"))
		}
		errs = append(errs, validatePositiveQuantity(q, capPath.Key(string(r)))...)
	}
	if p := spec.PersistentVolumeReclaimPolicy; p != "" && !supportedReclaimPolicy.Has(p) {
		errs = append(errs, field.NotSupported(fldPath.Child("persistentVolumeReclaimPolicy"), p, sets.List(supportedReclaimPolicy)))
	}
	if na := spec.NodeAffinity; na != nil {
		if na.Required == nil {
			errs = append(errs, field.Required(fldPath.Child("nodeAffinity", "required"), "must specify required node constraints"))
		} else {
			errs = append(errs, ValidateNodeSelector(na.Required, false, fldPath.Child("nodeAffinity", "required"))...)
		}
	}
	errs = append(errs, validatePVSource(&spec.PersistentVolumeSource, fldPath)...)
	if spec.HostPath != nil && path.Clean(spec.HostPath.Path) == "/" && spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimRecycle {
		errs = append(errs, field.Forbidden(fldPath.Child("persistentVolumeReclaimPolicy"), "may not be 'recycle' for a hostPath mount of '/'"))
	}
	if spec.StorageClassName != "" {
		errs = append(errs, validateName(apimachineryvalidation.NameIsDNSSubdomain, spec.StorageClassName, fldPath.Child("storageClassName"))...)
	}
	if spec.VolumeMode != nil && !supportedVolumeModes.Has(*spec.VolumeMode) {
		errs = append(errs, field.NotSupported(fldPath.Child("volumeMode"), *spec.VolumeMode, sets.List(supportedVolumeModes)))
	}
	if vac := spec.VolumeAttributesClassName; vac != nil {
		if *vac == "" {
			errs = append(errs, field.Required(fldPath.Child("volumeAttributesClassName"), "an empty string is disallowed"))
		} else {
			errs = append(errs, validateName(apimachineryvalidation.NameIsDNSSubdomain, *vac, fldPath.Child("volumeAttributesClassName"))...)
		}
		if spec.CSI == nil {
			errs = append(errs, field.Required(fldPath.Child("csi"), "has to be specified when using volumeAttributesClassName"))
		}
	}
	return errs
}

func validatePVSource(src *corev1.PersistentVolumeSource, fldPath *field.Path) field.ErrorList {
	types := []volumeType{
		{"hostPath", src.HostPath != nil, func(p *field.Path) field.ErrorList { return validateHostPath(src.HostPath, p) }},
		{"gcePersistentDisk", src.GCEPersistentDisk != nil, requireNonEmpty("pdName", func() string { return src.GCEPersistentDisk.PDName })},
		{"awsElasticBlockStore", src.AWSElasticBlockStore != nil, requireNonEmpty("volumeID", func() string { return src.AWSElasticBlockStore.VolumeID })},
		{"glusterfs", src.Glusterfs != nil, nil},
		{"flocker", src.Flocker != nil, nil},
		{"nfs", src.NFS != nil, func(p *field.Path) field.ErrorList { return validateNFS(src.NFS, p) }},
		{"rbd", src.RBD != nil, nil},
		{"quobyte", src.Quobyte != nil, nil},
		{"cinder", src.Cinder != nil, requireNonEmpty("volumeID", func() string { return src.Cinder.VolumeID })},
		{"cephfs", src.CephFS != nil, nil},
		{"fc", src.FC != nil, nil},
		{"flexVolume", src.FlexVolume != nil, requireNonEmpty("driver", func() string { return src.FlexVolume.Driver })},
		{"azureFile", src.AzureFile != nil, nil},
		{"vsphereVolume", src.VsphereVolume != nil, nil},
		{"photonPersistentDisk", src.PhotonPersistentDisk != nil, nil},
		{"portworxVolume", src.PortworxVolume != nil, nil},
		{"azureDisk", src.AzureDisk != nil, nil},
		{"scaleIO", src.ScaleIO != nil, nil},
		{"local", src.Local != nil, func(p *field.Path) field.ErrorList {
			if src.Local.Path == "" {
				return field.ErrorList{field.Required(p.Child("path"), "")}
			}
			return validatePathNoBacksteps(src.Local.Path, p.Child("path"))
		}},
		{"storageos", src.StorageOS != nil, nil},
		{"csi", src.CSI != nil, func(p *field.Path) field.ErrorList {
			errs := validateCSIDriverName(src.CSI.Driver, p.Child("driver"))
			if src.CSI.VolumeHandle == "" {
				errs = append(errs, field.Required(p.Child("volumeHandle"), ""))
			}
			return errs
		}},
		{"iscsi", src.ISCSI != nil, func(p *field.Path) field.ErrorList {
			var errs field.ErrorList
			if src.ISCSI.TargetPortal == "" {
				errs = append(errs, field.Required(p.Child("targetPortal"), ""))
			}
			if src.ISCSI.IQN == "" {
				errs = append(errs, field.Required(p.Child("iqn"), ""))
			}
			return errs
		}},
	}
	return validateOneVolumeType(types, fldPath)
}

// ValidatePersistentVolumeUpdate: the volume source and volume mode are
// immutable (a CSI controllerExpandSecretRef may be added).
func ValidatePersistentVolumeUpdate(pv, old *corev1.PersistentVolume) field.ErrorList {
	errs := ValidatePersistentVolume(pv)
	newSrc := pv.Spec.PersistentVolumeSource
	if old.Spec.CSI != nil && old.Spec.CSI.ControllerExpandSecretRef == nil && newSrc.CSI != nil && newSrc.CSI.ControllerExpandSecretRef != nil {
		newSrc = *newSrc.DeepCopy()
		newSrc.CSI.ControllerExpandSecretRef = nil
	}
	if !apiequality.Semantic.DeepEqual(newSrc, old.Spec.PersistentVolumeSource) {
		d := diff.Diff(old.Spec.PersistentVolumeSource, newSrc)
		errs = append(errs, field.Forbidden(field.NewPath("spec", "persistentvolumesource"), fmt.Sprintf("spec.persistentvolumesource is immutable after creation\n%v", d)))
	}
	errs = append(errs, ValidateImmutableField(pv.Spec.VolumeMode, old.Spec.VolumeMode, field.NewPath("volumeMode"))...)
	if old.Spec.NodeAffinity != nil && !apiequality.Semantic.DeepEqual(pv.Spec.NodeAffinity, old.Spec.NodeAffinity) {
		errs = append(errs, field.Invalid(field.NewPath("nodeAffinity"), pv.Spec.NodeAffinity, "field is immutable, except for updating from beta label to GA"))
	}
	if old.Spec.VolumeAttributesClassName != nil && pv.Spec.VolumeAttributesClassName == nil {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "volumeAttributesClassName"), "update from non-nil value to nil is forbidden"))
	}
	return errs
}

// ValidatePersistentVolumeClaim validates a PVC.
func ValidatePersistentVolumeClaim(pvc *corev1.PersistentVolumeClaim) field.ErrorList {
	return ValidatePersistentVolumeClaimSpec(&pvc.Spec, field.NewPath("spec"))
}

// ValidatePersistentVolumeClaimSpec validates a claim spec (also used by
// ephemeral volumes and StatefulSet claim templates).
func ValidatePersistentVolumeClaimSpec(spec *corev1.PersistentVolumeClaimSpec, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(spec.AccessModes) == 0 {
		errs = append(errs, field.Required(fldPath.Child("accessModes"), "at least 1 access mode is required"))
	}
	if spec.Selector != nil {
		errs = append(errs, metavalidation.ValidateLabelSelector(spec.Selector, metavalidation.LabelSelectorValidationOptions{}, fldPath.Child("selector"))...)
	}
	errs = append(errs, validateAccessModes(spec.AccessModes, fldPath.Child("accessModes"))...)
	storagePath := fldPath.Child("resources").Key(string(corev1.ResourceStorage))
	if q, ok := spec.Resources.Requests[corev1.ResourceStorage]; !ok {
		errs = append(errs, field.Required(storagePath, ""))
	} else if e := validatePositiveQuantity(q, storagePath); len(e) > 0 {
		errs = append(errs, e...)
	} else {
		errs = append(errs, ValidateResourceQuantityValue(corev1.ResourceStorage, q, storagePath)...)
	}
	if sc := spec.StorageClassName; sc != nil && *sc != "" {
		errs = append(errs, validateName(apimachineryvalidation.NameIsDNSSubdomain, *sc, fldPath.Child("storageClassName"))...)
	}
	if spec.VolumeMode != nil && !supportedVolumeModes.Has(*spec.VolumeMode) {
		errs = append(errs, field.NotSupported(fldPath.Child("volumeMode"), *spec.VolumeMode, sets.List(supportedVolumeModes)))
	}
	if ds := spec.DataSource; ds != nil {
		errs = append(errs, validateDataSource(ds.Name, ds.Kind, ds.APIGroup, nil, fldPath.Child("dataSource"))...)
	}
	if ref := spec.DataSourceRef; ref != nil {
		errs = append(errs, validateDataSource(ref.Name, ref.Kind, ref.APIGroup, ref.Namespace, fldPath.Child("dataSourceRef"))...)
		if ref.Namespace != nil && *ref.Namespace != "" {
			if spec.DataSource != nil {
				errs = append(errs, field.Invalid(fldPath, fldPath.Child("dataSource"), "may not be specified when dataSourceRef.namespace is specified"))
			}
		} else if ds := spec.DataSource; ds != nil && (!reflect.DeepEqual(ds.APIGroup, ref.APIGroup) || ds.Kind != ref.Kind || ds.Name != ref.Name) {
			errs = append(errs, field.Invalid(fldPath, fldPath.Child("dataSource"), "must match dataSourceRef"))
		}
	}
	if vac := spec.VolumeAttributesClassName; vac != nil && *vac != "" {
		errs = append(errs, validateName(apimachineryvalidation.NameIsDNSSubdomain, *vac, fldPath.Child("volumeAttributesClassName"))...)
	}
	return errs
}

func validateDataSource(name, kind string, apiGroup, namespace *string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if name == "" {
		errs = append(errs, field.Required(fldPath.Child("name"), ""))
	}
	if kind == "" {
		errs = append(errs, field.Required(fldPath.Child("kind"), ""))
	}
	group := ""
	if apiGroup != nil {
		group = *apiGroup
	}
	if group == "" && kind != "PersistentVolumeClaim" {
		errs = append(errs, field.Invalid(fldPath, kind, "must be 'PersistentVolumeClaim' when referencing the default apiGroup"))
	}
	if group != "" {
		errs = append(errs, ValidateDNS1123Subdomain(group, fldPath.Child("apiGroup"))...)
	}
	if namespace != nil && *namespace != "" {
		errs = append(errs, validateName(apimachineryvalidation.ValidateNamespaceName, *namespace, fldPath.Child("namespace"))...)
	}
	return errs
}

// ValidatePersistentVolumeClaimUpdate: the spec is immutable but for binding
// (volumeName once), setting a storage class on a class-less claim, and
// resizing (storage request, not below status capacity) of bound claims.
func ValidatePersistentVolumeClaimUpdate(pvc, old *corev1.PersistentVolumeClaim) field.ErrorList {
	errs := ValidatePersistentVolumeClaim(pvc)
	newSpec, oldSpec := pvc.Spec.DeepCopy(), old.Spec.DeepCopy()
	if oldSpec.VolumeName == "" {
		oldSpec.VolumeName = newSpec.VolumeName
	}
	oldAnn, hadAnn := old.Annotations[betaStorageClassAnnotation]
	newAnn, hasAnn := pvc.Annotations[betaStorageClassAnnotation]
	setsClass := oldSpec.StorageClassName == nil && newSpec.StorageClassName != nil
	if setsClass && hadAnn && *newSpec.StorageClassName == oldAnn && (!hasAnn || newAnn == oldAnn) {
		// Moving the class from the beta annotation to the field.
		newSpec.StorageClassName = nil
	} else {
		if newAnn != oldAnn {
			errs = append(errs, field.Invalid(field.NewPath("metadata").Child("annotations", betaStorageClassAnnotation), newAnn, apimachineryvalidation.FieldImmutableErrorMsg))
		}
		if setsClass && (!hadAnn || *newSpec.StorageClassName == oldAnn) {
			// Retroactively setting the class of a class-less claim.
			newSpec.StorageClassName = nil
		}
	}
	if pvc.Status.Phase == corev1.ClaimBound {
		if newSpec.Resources.Requests != nil {
			newSpec.Resources.Requests[corev1.ResourceStorage] = old.Spec.Resources.Requests[corev1.ResourceStorage]
		}
		newSpec.VolumeAttributesClassName = oldSpec.VolumeAttributesClassName
	}
	if !apiequality.Semantic.DeepEqual(newSpec, oldSpec) {
		d := diff.Diff(oldSpec, newSpec)
		errs = append(errs, field.Forbidden(field.NewPath("spec"), fmt.Sprintf("spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n%v", d)))
	}
	newSize := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	oldSize := old.Spec.Resources.Requests[corev1.ResourceStorage]
	if newSize.Cmp(oldSize) < 0 {
		statusSize := old.Status.Capacity[corev1.ResourceStorage]
		if newSize.Cmp(statusSize) <= 0 {
			errs = append(errs, field.Forbidden(field.NewPath("spec", "resources", "requests", "storage"), "field can not be less than status.capacity"))
		}
	}
	errs = append(errs, ValidateImmutableField(pvc.Spec.VolumeMode, old.Spec.VolumeMode, field.NewPath("volumeMode"))...)
	return errs
}
