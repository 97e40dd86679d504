// Package validation checks storage.k8s.io/v1 objects the way upstream
// Kubernetes' pkg/apis/storage/validation does (same field paths and error
// types), on the versioned types, with the v1.37 gate defaults
// (SELinuxMountReadWriteOncePod GA, VolumeLimitScaling beta and on,
// MutableCSINodeAllocatableCount GA). Metadata is validated by the registry
// strategy; objects are expected to be defaulted.
package validation

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	corevalidation "github.com/skiff-dev/skiff/pkg/apis/core/validation"
)

const (
	maxProvisionerParameterSize   = 256 * (1 << 10)
	maxProvisionerParameterLen    = 512
	maxAttachedVolumeMetadataSize = 256 * (1 << 10)
	maxVolumeErrorMessageSize     = 1024
	csiNodeIDMaxLength            = 256
)

var (
	supportedReclaimPolicies = []string{string(corev1.PersistentVolumeReclaimDelete), string(corev1.PersistentVolumeReclaimRetain)}
	supportedBindingModes    = []string{string(storagev1.VolumeBindingImmediate), string(storagev1.VolumeBindingWaitForFirstConsumer)}
	supportedFSGroupPolicies = []string{string(storagev1.FileFSGroupPolicy), string(storagev1.NoneFSGroupPolicy), string(storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy)}
	supportedLifecycleModes  = []string{string(storagev1.VolumeLifecyclePersistent), string(storagev1.VolumeLifecycleEphemeral)}
)

// --- StorageClass --------------------------------------------------------------

// ValidateStorageClass validates a storage class.
func ValidateStorageClass(sc *storagev1.StorageClass) field.ErrorList {
	var errs field.ErrorList
	if sc.Provisioner == "" {
		errs = append(errs, field.Required(field.NewPath("provisioner"), ""))
	} else {
		errs = append(errs, corevalidation.ValidateQualifiedName(strings.ToLower(sc.Provisioner), field.NewPath("provisioner"))...)
	}
	errs = append(errs, validateParameters(sc.Parameters, field.NewPath("parameters"))...)
	if p := sc.ReclaimPolicy; p != nil && *p != "" && !slices.Contains(supportedReclaimPolicies, string(*p)) {
		errs = append(errs, field.NotSupported(field.NewPath("reclaimPolicy"), *p, supportedReclaimPolicies))
	}
	switch m := sc.VolumeBindingMode; {
	case m == nil:
		errs = append(errs, field.Required(field.NewPath("volumeBindingMode"), ""))
	case !slices.Contains(supportedBindingModes, string(*m)):
		errs = append(errs, field.NotSupported(field.NewPath("volumeBindingMode"), *m, supportedBindingModes))
	}
	return append(errs, validateAllowedTopologies(sc.AllowedTopologies, field.NewPath("allowedTopologies"))...)
}

// ValidateStorageClassUpdate: parameters, provisioner, reclaimPolicy and
// volumeBindingMode are immutable.
func ValidateStorageClassUpdate(sc, old *storagev1.StorageClass) field.ErrorList {
	errs := ValidateStorageClass(sc)
	errs = append(errs, apivalidation.ValidateImmutableField(sc.Parameters, old.Parameters, field.NewPath("parameters"))...)
	errs = append(errs, apivalidation.ValidateImmutableField(sc.Provisioner, old.Provisioner, field.NewPath("provisioner"))...)
	errs = append(errs, apivalidation.ValidateImmutableField(sc.ReclaimPolicy, old.ReclaimPolicy, field.NewPath("reclaimPolicy"))...)
	return append(errs, apivalidation.ValidateImmutableField(sc.VolumeBindingMode, old.VolumeBindingMode, field.NewPath("volumeBindingMode"))...)
}

// validateParameters: at most 512 non-empty keys, 256 kB in all.
func validateParameters(params map[string]string, fldPath *field.Path) field.ErrorList {
	if len(params) > maxProvisionerParameterLen {
		return field.ErrorList{field.TooLong(fldPath, "", maxProvisionerParameterLen)}
	}
	var errs field.ErrorList
	var size int64
	for k, v := range params {
		if k == "" {
			errs = append(errs, field.Invalid(fldPath, k, "field can not be empty."))
		}
		size += int64(len(k)) + int64(len(v))
	}
	if size > maxProvisionerParameterSize {
		errs = append(errs, field.TooLong(fldPath, "", maxProvisionerParameterSize))
	}
	return errs
}

// validateAllowedTopologies checks each term and that no two terms are the
// same. As upstream, a term without expressions counts as a duplicate.
func validateAllowedTopologies(terms []corev1.TopologySelectorTerm, fldPath *field.Path) field.ErrorList {
	if len(terms) == 0 {
		return nil
	}
	var errs field.ErrorList
	seen := make([]map[string]sets.Set[string], len(terms))
	for i, term := range terms {
		exprs, termErrs := validateTopologySelectorTerm(term, fldPath.Index(i))
		errs = append(errs, termErrs...)
		for _, s := range seen {
			if apiequality.Semantic.DeepEqual(exprs, s) {
				errs = append(errs, field.Duplicate(fldPath.Index(i).Child("matchLabelExpressions"), ""))
			}
		}
		seen = append(seen, exprs)
	}
	return errs
}

func validateTopologySelectorTerm(term corev1.TopologySelectorTerm, fldPath *field.Path) (map[string]sets.Set[string], field.ErrorList) {
	var errs field.ErrorList
	exprs := map[string]sets.Set[string]{}
	for i, req := range term.MatchLabelExpressions {
		p := fldPath.Child("matchLabelExpressions").Index(i)
		values := sets.New[string]()
		if len(req.Values) == 0 {
			errs = append(errs, field.Required(p.Child("values"), ""))
		}
		for j, v := range req.Values {
			if values.Has(v) {
				errs = append(errs, field.Duplicate(p.Child("values").Index(j), v))
			}
			values.Insert(v)
		}
		errs = append(errs, metavalidation.ValidateLabelName(req.Key, p.Child("key"))...)
		if _, dup := exprs[req.Key]; dup {
			errs = append(errs, field.Duplicate(p.Child("key"), req.Key))
		}
		exprs[req.Key] = values
	}
	return exprs, errs
}

// --- VolumeAttachment ------------------------------------------------------------

// ValidateVolumeAttachment validates a volume attachment: attacher, exactly
// one source, node name and status.
func ValidateVolumeAttachment(va *storagev1.VolumeAttachment) field.ErrorList {
	spec := field.NewPath("spec")
	errs := ValidateCSIDriverName(va.Spec.Attacher, spec.Child("attacher"))
	errs = append(errs, validateVolumeAttachmentSource(&va.Spec.Source, spec.Child("source"))...)
	for _, msg := range apivalidation.NameIsDNSSubdomain(va.Spec.NodeName, false) {
		errs = append(errs, field.Invalid(spec.Child("nodeName"), va.Spec.NodeName, msg))
	}
	st := field.NewPath("status")
	var size int64
	for k, v := range va.Status.AttachmentMetadata {
		size += int64(len(k)) + int64(len(v))
	}
	if size > maxAttachedVolumeMetadataSize {
		errs = append(errs, field.TooLong(st.Child("attachmentMetadata"), "", maxAttachedVolumeMetadataSize))
	}
	errs = append(errs, validateVolumeError(va.Status.AttachError, st.Child("attachError"))...)
	errs = append(errs, validateVolumeError(va.Status.DetachError, st.Child("detachError"))...)
	if name := va.Spec.Source.PersistentVolumeName; name != nil {
		for _, msg := range apivalidation.NameIsDNSSubdomain(*name, false) {
			errs = append(errs, field.Invalid(spec.Child("source", "persistentVolumeName"), *name, msg))
		}
	}
	return errs
}

// ValidateVolumeAttachmentUpdate: the spec is immutable.
func ValidateVolumeAttachmentUpdate(va, old *storagev1.VolumeAttachment) field.ErrorList {
	errs := ValidateVolumeAttachment(va)
	return append(errs, apivalidation.ValidateImmutableField(va.Spec, old.Spec, field.NewPath("spec"))...)
}

func validateVolumeAttachmentSource(src *storagev1.VolumeAttachmentSource, fldPath *field.Path) field.ErrorList {
	switch {
	case src.InlineVolumeSpec == nil && src.PersistentVolumeName == nil:
		return field.ErrorList{field.Required(fldPath, "must specify exactly one of inlineVolumeSpec and persistentVolumeName")}
	case src.InlineVolumeSpec != nil && src.PersistentVolumeName != nil:
		return field.ErrorList{field.Forbidden(fldPath, "must specify exactly one of inlineVolumeSpec and persistentVolumeName")}
	case src.PersistentVolumeName != nil:
		if *src.PersistentVolumeName == "" {
			return field.ErrorList{field.Required(fldPath.Child("persistentVolumeName"), "must specify non empty persistentVolumeName")}
		}
		return nil
	}
	return validateInlineVolumeSpec(src.InlineVolumeSpec, fldPath.Child("inlineVolumeSpec"))
}

// validateInlineVolumeSpec checks a PersistentVolume spec in the context
// of an inline volume: a CSI volume without claimRef, capacity or node
// affinity, retained; otherwise as a PersistentVolume's spec.
func validateInlineVolumeSpec(spec *corev1.PersistentVolumeSpec, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec.ClaimRef != nil {
		errs = append(errs, field.Forbidden(fldPath.Child("claimRef"), "may not be specified in the context of inline volumes"))
	}
	if len(spec.Capacity) != 0 {
		errs = append(errs, field.Forbidden(fldPath.Child("capacity"), "may not be specified in the context of inline volumes"))
	}
	if spec.CSI == nil {
		errs = append(errs, field.Required(fldPath.Child("csi"), "has to be specified in the context of inline volumes"))
	}
	if p := spec.PersistentVolumeReclaimPolicy; p != "" && p != corev1.PersistentVolumeReclaimRetain {
		errs = append(errs, field.Forbidden(fldPath.Child("persistentVolumeReclaimPolicy"), "may only be "+string(corev1.PersistentVolumeReclaimRetain)+" in the context of inline volumes"))
	}
	if spec.NodeAffinity != nil {
		errs = append(errs, field.Forbidden(fldPath.Child("nodeAffinity"), "may not be specified in the context of inline volumes"))
	}
	// The rest is a PersistentVolume's validation, without the rules above
	// replace: a placeholder capacity, no reclaim policy or node affinity.
	pv := &corev1.PersistentVolume{Spec: *spec.DeepCopy()}
	pv.Spec.Capacity = corev1.ResourceList{corev1.ResourceStorage: resourceOne}
	pv.Spec.PersistentVolumeReclaimPolicy = ""
	pv.Spec.NodeAffinity = nil
	for _, e := range corevalidation.ValidatePersistentVolume(pv) {
		rebased := *e
		rebased.Field = fldPath.String() + strings.TrimPrefix(e.Field, "spec")
		errs = append(errs, &rebased)
	}
	return errs
}

func validateVolumeError(e *storagev1.VolumeError, fldPath *field.Path) field.ErrorList {
	if e == nil {
		return nil
	}
	var errs field.ErrorList
	if len(e.Message) > maxVolumeErrorMessageSize {
		errs = append(errs, field.TooLong(fldPath.Child("message"), "", maxVolumeErrorMessageSize))
	}
	if e.ErrorCode != nil && *e.ErrorCode < 0 {
		errs = append(errs, field.Invalid(fldPath.Child("errorCode"), *e.ErrorCode, validation.InclusiveRangeError(0, math.MaxInt32)))
	}
	return errs
}

// ValidateCSIDriverName checks the name of a CSI driver as used in other
// objects: required, at most 63 characters, a DNS subdomain ignoring case.
func ValidateCSIDriverName(name string, fldPath *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	var errs field.ErrorList
	if len(name) > 63 {
		errs = append(errs, field.TooLong(fldPath, "", 63))
	}
	for _, msg := range validation.IsDNS1123Subdomain(strings.ToLower(name)) {
		errs = append(errs, field.Invalid(fldPath, name, msg))
	}
	return errs
}

// --- CSINode -----------------------------------------------------------------------

// ValidateCSINode validates the drivers of a CSINode.
func ValidateCSINode(n *storagev1.CSINode) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("spec", "drivers")
	names := sets.New[string]()
	for i, d := range n.Spec.Drivers {
		errs = append(errs, validateCSINodeDriver(&d, names, p.Index(i))...)
	}
	return errs
}

// ValidateCSINodeUpdate: a driver that stays may only change its
// allocatable count.
func ValidateCSINodeUpdate(n, old *storagev1.CSINode) field.ErrorList {
	errs := ValidateCSINode(n)
	for _, o := range old.Spec.Drivers {
		for _, d := range n.Spec.Drivers {
			if o.Name != d.Name {
				continue
			}
			oc, nc := o.DeepCopy(), d.DeepCopy()
			oc.Allocatable, nc.Allocatable = nil, nil
			errs = append(errs, apivalidation.ValidateImmutableField(nc, oc, field.NewPath("spec", "drivers"))...)
		}
	}
	return errs
}

func validateCSINodeDriver(d *storagev1.CSINodeDriver, names sets.Set[string], fldPath *field.Path) field.ErrorList {
	errs := ValidateCSIDriverName(d.Name, fldPath.Child("name"))
	if d.NodeID == "" {
		errs = append(errs, field.Required(fldPath.Child("nodeID"), d.NodeID))
	}
	if len(d.NodeID) > csiNodeIDMaxLength {
		errs = append(errs, field.Invalid(fldPath.Child("nodeID"), d.NodeID, fmt.Sprintf("must be %d characters or less", csiNodeIDMaxLength)))
	}
	if a := d.Allocatable; a != nil && a.Count != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*a.Count), fldPath.Child("allocatable", "count"))...)
	}
	if names.Has(d.Name) {
		errs = append(errs, field.Duplicate(fldPath.Child("name"), d.Name))
	}
	names.Insert(d.Name)
	keys := sets.New[string]()
	for _, key := range d.TopologyKeys {
		if key == "" {
			errs = append(errs, field.Required(fldPath, key))
		}
		if keys.Has(key) {
			errs = append(errs, field.Duplicate(fldPath, key))
		}
		keys.Insert(key)
		errs = append(errs, corevalidation.ValidateQualifiedName(key, fldPath)...)
	}
	return errs
}

// --- CSIDriver -----------------------------------------------------------------------

// ValidateCSIDriver validates a CSI driver's spec.
func ValidateCSIDriver(d *storagev1.CSIDriver) field.ErrorList {
	return validateCSIDriverSpec(&d.Spec, field.NewPath("spec"))
}

// ValidateCSIDriverUpdate: attachRequired and volumeLifecycleModes are
// immutable. (Upstream reports attachRequired as spec.attachedRequired.)
func ValidateCSIDriverUpdate(d, old *storagev1.CSIDriver) field.ErrorList {
	errs := validateCSIDriverSpec(&d.Spec, field.NewPath("spec"))
	errs = append(errs, apivalidation.ValidateImmutableField(d.Spec.AttachRequired, old.Spec.AttachRequired, field.NewPath("spec", "attachedRequired"))...)
	return append(errs, apivalidation.ValidateImmutableField(d.Spec.VolumeLifecycleModes, old.Spec.VolumeLifecycleModes, field.NewPath("spec", "volumeLifecycleModes"))...)
}

func validateCSIDriverSpec(spec *storagev1.CSIDriverSpec, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, b := range []struct {
		value *bool
		name  string
	}{
		{spec.AttachRequired, "attachedRequired"},
		{spec.PodInfoOnMount, "podInfoOnMount"},
		{spec.StorageCapacity, "storageCapacity"},
	} {
		if b.value == nil {
			errs = append(errs, field.Required(fldPath.Child(b.name), ""))
		}
	}
	if p := spec.FSGroupPolicy; p != nil && !slices.Contains(supportedFSGroupPolicies, string(*p)) {
		errs = append(errs, field.NotSupported(fldPath.Child("fsGroupPolicy"), *p, supportedFSGroupPolicies))
	}
	errs = append(errs, validateTokenRequests(spec.TokenRequests, fldPath.Child("tokenRequests"))...)
	for _, m := range spec.VolumeLifecycleModes {
		if !slices.Contains(supportedLifecycleModes, string(m)) {
			errs = append(errs, field.NotSupported(fldPath.Child("volumeLifecycleModes"), m, supportedLifecycleModes))
		}
	}
	if spec.SELinuxMount == nil {
		errs = append(errs, field.Required(fldPath.Child("seLinuxMount"), ""))
	}
	if p := spec.NodeAllocatableUpdatePeriodSeconds; p != nil && *p < 10 {
		errs = append(errs, field.Invalid(fldPath.Child("nodeAllocatableUpdatePeriodSeconds"), *p, "must be greater than or equal to 10 seconds"))
	}
	if spec.ServiceAccountTokenInSecrets != nil && len(spec.TokenRequests) == 0 {
		errs = append(errs, field.Invalid(fldPath.Child("serviceAccountTokenInSecrets"), spec.ServiceAccountTokenInSecrets, "serviceAccountTokenInSecrets is set but no tokenRequests are specified"))
	}
	if spec.PreventPodSchedulingIfMissing == nil {
		errs = append(errs, field.Required(fldPath.Child("preventPodSchedulingIfMissing"), ""))
	}
	return errs
}

// validateTokenRequests: distinct audiences, expirations between ten
// minutes and 2^32 seconds.
func validateTokenRequests(reqs []storagev1.TokenRequest, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	audiences := sets.New[string]()
	for i, r := range reqs {
		p := fldPath.Index(i)
		if audiences.Has(r.Audience) {
			errs = append(errs, field.Duplicate(p.Child("audience"), r.Audience))
			continue
		}
		audiences.Insert(r.Audience)
		if r.ExpirationSeconds == nil {
			continue
		}
		if *r.ExpirationSeconds < int64((10 * time.Minute).Seconds()) {
			errs = append(errs, field.Invalid(p.Child("expirationSeconds"), *r.ExpirationSeconds, "may not specify a duration less than 10 minutes"))
		}
		if *r.ExpirationSeconds > 1<<32 {
			errs = append(errs, field.Invalid(p.Child("expirationSeconds"), *r.ExpirationSeconds, "may not specify a duration larger than 2^32 seconds"))
		}
	}
	return errs
}

var resourceOne = resource.MustParse("1")
