package validation

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateVolumes checks names are unique DNS labels and that each volume has
// exactly one valid source; it returns the valid volumes by name.
func validateVolumes(volumes []corev1.Volume, podMeta *metav1.ObjectMeta, fldPath *field.Path) (map[string]corev1.VolumeSource, field.ErrorList) {
	var errs field.ErrorList
	names := sets.New[string]()
	created := sets.New[string]()
	if podMeta != nil && podMeta.Name != "" {
		for _, v := range volumes {
			if v.Ephemeral != nil {
				created.Insert(podMeta.Name + "-" + v.Name)
			}
		}
	}
	vols := map[string]corev1.VolumeSource{}
	for i, vol := range volumes {
		idxPath := fldPath.Index(i)
		namePath := idxPath.Child("name")
		el := validateVolumeSource(&vol.VolumeSource, idxPath, vol.Name, podMeta)
		if vol.Name == "" {
			el = append(el, field.Required(namePath, ""))
		} else {
			el = append(el, ValidateDNS1123Label(vol.Name, namePath)...)
		}
		if names.Has(vol.Name) {
			el = append(el, field.Duplicate(namePath, vol.Name))
		}
		if len(el) == 0 {
			names.Insert(vol.Name)
			vols[vol.Name] = vol.VolumeSource
		} else {
			errs = append(errs, el...)
		}
		if vol.PersistentVolumeClaim != nil && created.Has(vol.PersistentVolumeClaim.ClaimName) {
			errs = append(errs, field.Invalid(idxPath.Child("persistentVolumeClaim", "claimName"), vol.PersistentVolumeClaim.ClaimName,
				"must not reference a PVC that gets created for an ephemeral volume"))
		}
	}
	return vols, errs
}

type volumeType struct {
	name     string
	set      bool
	validate func(p *field.Path) field.ErrorList
}

func validateVolumeSource(src *corev1.VolumeSource, fldPath *field.Path, volName string, podMeta *metav1.ObjectMeta) field.ErrorList {
	types := []volumeType{
		{"emptyDir", src.EmptyDir != nil, func(p *field.Path) field.ErrorList {
			var errs field.ErrorList
			if src.EmptyDir.SizeLimit != nil && src.EmptyDir.SizeLimit.Cmp(resource.Quantity{}) < 0 {
				errs = append(errs, field.Forbidden(p.Child("sizeLimit"), "SizeLimit field must be a valid resource quantity"))
			}
			if m := src.EmptyDir.Mode; m != nil && (*m > 01777 || *m < 0) {
				errs = append(errs, field.Invalid(p.Child("mode"), *m, emptyDirModeErrorMsg))
			}
			return errs
		}},
		{"hostPath", src.HostPath != nil, func(p *field.Path) field.ErrorList { return validateHostPath(src.HostPath, p) }},
		{"gitRepo", src.GitRepo != nil, func(p *field.Path) field.ErrorList {
			var errs field.ErrorList
			if src.GitRepo.Repository == "" {
				errs = append(errs, field.Required(p.Child("repository"), ""))
			}
			return append(errs, validateLocalDescendingPath(src.GitRepo.Directory, p.Child("directory"))...)
		}},
		{"gcePersistentDisk", src.GCEPersistentDisk != nil, requireNonEmpty("pdName", func() string { return src.GCEPersistentDisk.PDName })},
		{"awsElasticBlockStore", src.AWSElasticBlockStore != nil, requireNonEmpty("volumeID", func() string { return src.AWSElasticBlockStore.VolumeID })},
		{"secret", src.Secret != nil, func(p *field.Path) field.ErrorList {
			var errs field.ErrorList
			if src.Secret.SecretName == "" {
				errs = append(errs, field.Required(p.Child("secretName"), ""))
			}
			errs = append(errs, validateMode(src.Secret.DefaultMode, p.Child("defaultMode"))...)
			return append(errs, validateKeyToPaths(src.Secret.Items, p.Child("items"))...)
		}},
		{"nfs", src.NFS != nil, func(p *field.Path) field.ErrorList { return validateNFS(src.NFS, p) }},
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
		{"glusterfs", src.Glusterfs != nil, func(p *field.Path) field.ErrorList {
			var errs field.ErrorList
			if src.Glusterfs.EndpointsName == "" {
				errs = append(errs, field.Required(p.Child("endpoints"), ""))
			}
			if src.Glusterfs.Path == "" {
				errs = append(errs, field.Required(p.Child("path"), ""))
			}
			return errs
		}},
		{"flocker", src.Flocker != nil, nil},
		{"persistentVolumeClaim", src.PersistentVolumeClaim != nil, requireNonEmpty("claimName", func() string { return src.PersistentVolumeClaim.ClaimName })},
		{"rbd", src.RBD != nil, nil},
		{"cinder", src.Cinder != nil, requireNonEmpty("volumeID", func() string { return src.Cinder.VolumeID })},
		{"cephFS", src.CephFS != nil, nil},
		{"quobyte", src.Quobyte != nil, nil},
		{"downwardAPI", src.DownwardAPI != nil, func(p *field.Path) field.ErrorList {
			errs := validateMode(src.DownwardAPI.DefaultMode, p.Child("defaultMode"))
			for _, f := range src.DownwardAPI.Items {
				errs = append(errs, validateDownwardAPIVolumeFile(&f, p)...)
			}
			return errs
		}},
		{"fc", src.FC != nil, nil},
		{"flexVolume", src.FlexVolume != nil, requireNonEmpty("driver", func() string { return src.FlexVolume.Driver })},
		{"configMap", src.ConfigMap != nil, func(p *field.Path) field.ErrorList {
			var errs field.ErrorList
			if src.ConfigMap.Name == "" {
				errs = append(errs, field.Required(p.Child("name"), ""))
			}
			errs = append(errs, validateMode(src.ConfigMap.DefaultMode, p.Child("defaultMode"))...)
			return append(errs, validateKeyToPaths(src.ConfigMap.Items, p.Child("items"))...)
		}},
		{"azureFile", src.AzureFile != nil, nil},
		{"vsphereVolume", src.VsphereVolume != nil, nil},
		{"photonPersistentDisk", src.PhotonPersistentDisk != nil, nil},
		{"portworxVolume", src.PortworxVolume != nil, nil},
		{"azureDisk", src.AzureDisk != nil, nil},
		{"storageos", src.StorageOS != nil, nil},
		{"projected", src.Projected != nil, func(p *field.Path) field.ErrorList { return validateProjected(src.Projected, p) }},
		{"scaleIO", src.ScaleIO != nil, nil},
		{"csi", src.CSI != nil, func(p *field.Path) field.ErrorList {
			errs := validateCSIDriverName(src.CSI.Driver, p.Child("driver"))
			if ref := src.CSI.NodePublishSecretRef; ref != nil && ref.Name == "" {
				errs = append(errs, field.Required(p.Child("nodePublishSecretRef", "name"), ""))
			}
			return errs
		}},
		{"ephemeral", src.Ephemeral != nil, func(p *field.Path) field.ErrorList {
			if src.Ephemeral.VolumeClaimTemplate == nil {
				return field.ErrorList{field.Required(p.Child("volumeClaimTemplate"), "")}
			}
			tmpl := src.Ephemeral.VolumeClaimTemplate
			errs := apimachineryvalidation.ValidateAnnotations(tmpl.Annotations, p.Child("volumeClaimTemplate", "metadata", "annotations"))
			errs = append(errs, ValidatePersistentVolumeClaimSpec(&tmpl.Spec, p.Child("volumeClaimTemplate", "spec"))...)
			if podMeta != nil && podMeta.Name != "" && volName != "" {
				pvcName := podMeta.Name + "-" + volName
				for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(pvcName, false) {
					errs = append(errs, field.Invalid(fldPath.Child("name"), volName, fmt.Sprintf("PVC name %q: %v", pvcName, msg)))
				}
			}
			return errs
		}},
		{"image", src.Image != nil, func(p *field.Path) field.ErrorList {
			var errs field.ErrorList
			if src.Image.Reference == "" {
				errs = append(errs, field.Required(p.Child("reference"), ""))
			}
			if src.Image.PullPolicy != "" {
				errs = append(errs, validatePullPolicy(src.Image.PullPolicy, p.Child("pullPolicy"))...)
			}
			return errs
		}},
	}
	return validateOneVolumeType(types, fldPath)
}

func requireNonEmpty(child string, get func() string) func(p *field.Path) field.ErrorList {
	return func(p *field.Path) field.ErrorList {
		if get() == "" {
			return field.ErrorList{field.Required(p.Child(child), "")}
		}
		return nil
	}
}

var supportedHostPathTypes = sets.New(
	corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory, corev1.HostPathFileOrCreate,
	corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev)

func validateHostPath(hp *corev1.HostPathVolumeSource, fldPath *field.Path) field.ErrorList {
	if hp.Path == "" {
		return field.ErrorList{field.Required(fldPath.Child("path"), "")}
	}
	errs := validatePathNoBacksteps(hp.Path, fldPath.Child("path"))
	if hp.Type != nil && !supportedHostPathTypes.Has(*hp.Type) {
		errs = append(errs, field.NotSupported(fldPath.Child("type"), *hp.Type, sets.List(supportedHostPathTypes)))
	}
	return errs
}

func validateNFS(nfs *corev1.NFSVolumeSource, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if nfs.Server == "" {
		errs = append(errs, field.Required(fldPath.Child("server"), ""))
	}
	if nfs.Path == "" {
		errs = append(errs, field.Required(fldPath.Child("path"), ""))
	}
	if !path.IsAbs(nfs.Path) {
		errs = append(errs, field.Invalid(fldPath.Child("path"), nfs.Path, "must be an absolute path"))
	}
	return errs
}

func validateCSIDriverName(driver string, fldPath *field.Path) field.ErrorList {
	if driver == "" {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	if len(driver) > 63 {
		return field.ErrorList{field.TooLong(fldPath, driver, 63)}
	}
	return msgs(fldPath, driver, validation.IsDNS1123Subdomain(strings.ToLower(driver)))
}

func validateMode(mode *int32, fldPath *field.Path) field.ErrorList {
	if mode != nil && (*mode > 0777 || *mode < 0) {
		return field.ErrorList{field.Invalid(fldPath, *mode, fileModeErrorMsg)}
	}
	return nil
}

func validateKeyToPaths(items []corev1.KeyToPath, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, kp := range items {
		p := fldPath.Index(i)
		if kp.Key == "" {
			errs = append(errs, field.Required(p.Child("key"), ""))
		}
		if kp.Path == "" {
			errs = append(errs, field.Required(p.Child("path"), ""))
		}
		errs = append(errs, validateLocalNonReservedPath(kp.Path, p.Child("path"))...)
		errs = append(errs, validateMode(kp.Mode, p.Child("mode"))...)
	}
	return errs
}

var validVolumeDownwardAPIFieldPaths = sets.New("metadata.name", "metadata.namespace", "metadata.labels", "metadata.annotations", "metadata.uid")

func validateDownwardAPIVolumeFile(file *corev1.DownwardAPIVolumeFile, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if file.Path == "" {
		errs = append(errs, field.Required(fldPath.Child("path"), ""))
	}
	errs = append(errs, validateLocalNonReservedPath(file.Path, fldPath.Child("path"))...)
	switch {
	case file.FieldRef != nil:
		errs = append(errs, validateObjectFieldSelector(file.FieldRef, validVolumeDownwardAPIFieldPaths, fldPath.Child("fieldRef"))...)
		if file.ResourceFieldRef != nil {
			errs = append(errs, field.Invalid(fldPath, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
		}
	case file.ResourceFieldRef != nil:
		errs = append(errs, validateResourceFieldSelector(file.ResourceFieldRef, fldPath.Child("resourceFieldRef"), true)...)
	default:
		errs = append(errs, field.Required(fldPath, "one of fieldRef and resourceFieldRef is required"))
	}
	return append(errs, validateMode(file.Mode, fldPath.Child("mode"))...)
}

func validateProjected(proj *corev1.ProjectedVolumeSource, fldPath *field.Path) field.ErrorList {
	errs := validateMode(proj.DefaultMode, fldPath.Child("defaultMode"))
	paths := sets.New[string]()
	addPath := func(p, name string) {
		if p == "" {
			return
		}
		if paths.Has(p) {
			errs = append(errs, field.Invalid(fldPath, name, "conflicting duplicate paths"))
		}
		paths.Insert(p)
	}
	for i, src := range proj.Sources {
		srcPath := fldPath.Child("sources").Index(i)
		n := 0
		if src.Secret != nil {
			n++
			p := srcPath.Child("secret")
			if src.Secret.Name == "" {
				errs = append(errs, field.Required(p.Child("name"), ""))
			}
			errs = append(errs, validateKeyToPaths(src.Secret.Items, p.Child("items"))...)
			for _, kp := range src.Secret.Items {
				addPath(kp.Path, src.Secret.Name)
			}
		}
		if src.ConfigMap != nil {
			n++
			p := srcPath.Child("configMap")
			if src.ConfigMap.Name == "" {
				errs = append(errs, field.Required(p.Child("name"), ""))
			}
			errs = append(errs, validateKeyToPaths(src.ConfigMap.Items, p.Child("items"))...)
			for _, kp := range src.ConfigMap.Items {
				addPath(kp.Path, src.ConfigMap.Name)
			}
		}
		if src.DownwardAPI != nil {
			n++
			p := srcPath.Child("downwardAPI")
			for _, f := range src.DownwardAPI.Items {
				errs = append(errs, validateDownwardAPIVolumeFile(&f, p)...)
				addPath(f.Path, "")
			}
		}
		if src.ServiceAccountToken != nil {
			n++
			p := srcPath.Child("serviceAccountToken")
			if src.ServiceAccountToken.ExpirationSeconds != nil {
				if s := *src.ServiceAccountToken.ExpirationSeconds; s < 10*60 {
					errs = append(errs, field.Invalid(p.Child("expirationSeconds"), s, "may not specify a duration less than 10 minutes"))
				} else if s > 1<<32 {
					errs = append(errs, field.Invalid(p.Child("expirationSeconds"), s, "may not specify a duration larger than 2^32 seconds"))
				}
			}
			if src.ServiceAccountToken.Path == "" {
				errs = append(errs, field.Required(p.Child("path"), ""))
			}
			errs = append(errs, validateLocalNonReservedPath(src.ServiceAccountToken.Path, p.Child("path"))...)
			addPath(src.ServiceAccountToken.Path, "")
		}
		if src.ClusterTrustBundle != nil {
			n++
			p := srcPath.Child("clusterTrustBundle")
			if src.ClusterTrustBundle.Path == "" {
				errs = append(errs, field.Required(p.Child("path"), ""))
			}
			addPath(src.ClusterTrustBundle.Path, "")
		}
		if src.PodCertificate != nil {
			n++
		}
		if n > 1 {
			errs = append(errs, field.Forbidden(srcPath, "may not specify more than 1 volume type per source"))
		}
	}
	return errs
}

// validateLocalDescendingPath: relative, without "..".
func validateLocalDescendingPath(targetPath string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if path.IsAbs(targetPath) {
		errs = append(errs, field.Invalid(fldPath, targetPath, "must be a relative path"))
	}
	return append(errs, validatePathNoBacksteps(targetPath, fldPath)...)
}

func validatePathNoBacksteps(targetPath string, fldPath *field.Path) field.ErrorList {
	for _, item := range strings.Split(filepath.ToSlash(targetPath), "/") {
		if item == ".." {
			return field.ErrorList{field.Invalid(fldPath, targetPath, "must not contain '..'")}
		}
	}
	return nil
}

// validateLocalNonReservedPath: a local descending path not starting with "..".
func validateLocalNonReservedPath(targetPath string, fldPath *field.Path) field.ErrorList {
	errs := validateLocalDescendingPath(targetPath, fldPath)
	if strings.HasPrefix(targetPath, "..") && !strings.HasPrefix(targetPath, "../") {
		errs = append(errs, field.Invalid(fldPath, targetPath, "must not start with '..'"))
	}
	return errs
}

func validateVolumeMounts(mounts []corev1.VolumeMount, devices map[string]string, volumes map[string]corev1.VolumeSource, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	mountpoints := sets.New[string]()
	for i, mnt := range mounts {
		p := fldPath.Index(i)
		if mnt.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		}
		if _, ok := volumes[mnt.Name]; !ok {
			errs = append(errs, field.NotFound(p.Child("name"), mnt.Name))
		}
		if mnt.MountPath == "" {
			errs = append(errs, field.Required(p.Child("mountPath"), ""))
		}
		if mountpoints.Has(mnt.MountPath) {
			errs = append(errs, field.Invalid(p.Child("mountPath"), mnt.MountPath, "must be unique"))
		}
		mountpoints.Insert(mnt.MountPath)
		if _, ok := devices[mnt.Name]; ok {
			errs = append(errs, field.Invalid(p.Child("name"), mnt.Name, "must not already exist in volumeDevices"))
		}
		for _, dp := range devices {
			if dp == mnt.MountPath {
				errs = append(errs, field.Invalid(p.Child("mountPath"), mnt.MountPath, "must not already exist as a path in volumeDevices"))
				break
			}
		}
		if mnt.SubPath != "" {
			errs = append(errs, validateLocalDescendingPath(mnt.SubPath, fldPath.Child("subPath"))...)
		}
		if mnt.SubPathExpr != "" {
			if mnt.SubPath != "" {
				errs = append(errs, field.Invalid(p.Child("subPathExpr"), mnt.SubPathExpr, "subPathExpr and subPath are mutually exclusive"))
			}
			errs = append(errs, validateLocalDescendingPath(mnt.SubPathExpr, fldPath.Child("subPathExpr"))...)
		}
		if mnt.MountPropagation != nil {
			switch *mnt.MountPropagation {
			case corev1.MountPropagationNone, corev1.MountPropagationHostToContainer, corev1.MountPropagationBidirectional:
			default:
				errs = append(errs, field.NotSupported(fldPath.Child("mountPropagation"), *mnt.MountPropagation,
					[]corev1.MountPropagationMode{corev1.MountPropagationBidirectional, corev1.MountPropagationHostToContainer, corev1.MountPropagationNone}))
			}
		}
	}
	return errs
}

func validateVolumeDevices(devices []corev1.VolumeDevice, mounts map[string]string, volumes map[string]corev1.VolumeSource, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	paths := sets.New[string]()
	names := sets.New[string]()
	for i, dev := range devices {
		p := fldPath.Index(i)
		if dev.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		}
		if names.Has(dev.Name) {
			errs = append(errs, field.Invalid(p.Child("name"), dev.Name, "must be unique"))
		}
		if src, ok := volumes[dev.Name]; !ok {
			errs = append(errs, field.NotFound(p.Child("name"), dev.Name))
		} else if src.PersistentVolumeClaim == nil && src.Ephemeral == nil {
			errs = append(errs, field.Invalid(p.Child("name"), dev.Name, "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode"))
		}
		if dev.DevicePath == "" {
			errs = append(errs, field.Required(p.Child("devicePath"), ""))
		}
		if paths.Has(dev.DevicePath) {
			errs = append(errs, field.Invalid(p.Child("devicePath"), dev.DevicePath, "must be unique"))
		}
		if dev.DevicePath != "" && len(validatePathNoBacksteps(dev.DevicePath, p)) > 0 {
			errs = append(errs, field.Invalid(p.Child("devicePath"), dev.DevicePath, "can not contain backsteps ('..')"))
		}
		if _, ok := mounts[dev.Name]; ok {
			errs = append(errs, field.Invalid(p.Child("name"), dev.Name, "must not already exist in volumeMounts"))
		}
		for _, mp := range mounts {
			if mp == dev.DevicePath {
				errs = append(errs, field.Invalid(p.Child("devicePath"), dev.DevicePath, "must not already exist as a path in volumeMounts"))
				break
			}
		}
		paths.Insert(dev.DevicePath)
		names.Insert(dev.Name)
	}
	return errs
}

// validateOneVolumeType requires exactly one of types to be set, as
// upstream, and validates it.
func validateOneVolumeType(types []volumeType, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	for _, t := range types {
		if !t.set {
			continue
		}
		if n > 0 {
			errs = append(errs, field.Forbidden(fldPath.Child(t.name), "may not specify more than 1 volume type"))
			continue
		}
		n++
		if t.validate != nil {
			errs = append(errs, t.validate(fldPath.Child(t.name))...)
		}
	}
	if n == 0 {
		errs = append(errs, field.Required(fldPath, "must specify a volume type"))
	}
	return errs
}
