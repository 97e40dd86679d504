package node

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/storage/ephemeral"
)

// PodSecretNames returns the names of the secrets pod uses (image pull
// secrets, env, envFrom, volumes and projections), as upstream's
// VisitPodSecretNames, in the pod's namespace.
func PodSecretNames(pod *corev1.Pod) []string {
	var names []string
	add := func(name string) {
		if name != "" {
			names = append(names, name)
		}
	}
	for _, s := range pod.Spec.ImagePullSecrets {
		add(s.Name)
	}
	visitContainers(&pod.Spec, func(env []corev1.EnvVar, envFrom []corev1.EnvFromSource) {
		for _, e := range envFrom {
			if e.SecretRef != nil {
				add(e.SecretRef.Name)
			}
		}
		for _, e := range env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				add(e.ValueFrom.SecretKeyRef.Name)
			}
		}
	})
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i].VolumeSource
		switch {
		case v.AzureFile != nil:
			add(v.AzureFile.SecretName)
		case v.CephFS != nil && v.CephFS.SecretRef != nil:
			add(v.CephFS.SecretRef.Name)
		case v.Cinder != nil && v.Cinder.SecretRef != nil:
			add(v.Cinder.SecretRef.Name)
		case v.FlexVolume != nil && v.FlexVolume.SecretRef != nil:
			add(v.FlexVolume.SecretRef.Name)
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					add(s.Secret.Name)
				}
			}
		case v.RBD != nil && v.RBD.SecretRef != nil:
			add(v.RBD.SecretRef.Name)
		case v.Secret != nil:
			add(v.Secret.SecretName)
		case v.ScaleIO != nil && v.ScaleIO.SecretRef != nil:
			add(v.ScaleIO.SecretRef.Name)
		case v.ISCSI != nil && v.ISCSI.SecretRef != nil:
			add(v.ISCSI.SecretRef.Name)
		case v.StorageOS != nil && v.StorageOS.SecretRef != nil:
			add(v.StorageOS.SecretRef.Name)
		case v.CSI != nil && v.CSI.NodePublishSecretRef != nil:
			add(v.CSI.NodePublishSecretRef.Name)
		}
	}
	return names
}

// PodConfigMapNames returns the names of the configmaps pod uses (env,
// envFrom, volumes and projections), as upstream's VisitPodConfigmapNames.
func PodConfigMapNames(pod *corev1.Pod) []string {
	var names []string
	add := func(name string) {
		if name != "" {
			names = append(names, name)
		}
	}
	visitContainers(&pod.Spec, func(env []corev1.EnvVar, envFrom []corev1.EnvFromSource) {
		for _, e := range envFrom {
			if e.ConfigMapRef != nil {
				add(e.ConfigMapRef.Name)
			}
		}
		for _, e := range env {
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				add(e.ValueFrom.ConfigMapKeyRef.Name)
			}
		}
	})
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i].VolumeSource
		switch {
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					add(s.ConfigMap.Name)
				}
			}
		case v.ConfigMap != nil:
			add(v.ConfigMap.Name)
		}
	}
	return names
}

// visitContainers calls visit with the env and envFrom of every init,
// regular and ephemeral container of spec.
func visitContainers(spec *corev1.PodSpec, visit func([]corev1.EnvVar, []corev1.EnvFromSource)) {
	for i := range spec.InitContainers {
		visit(spec.InitContainers[i].Env, spec.InitContainers[i].EnvFrom)
	}
	for i := range spec.Containers {
		visit(spec.Containers[i].Env, spec.Containers[i].EnvFrom)
	}
	for i := range spec.EphemeralContainers {
		visit(spec.EphemeralContainers[i].Env, spec.EphemeralContainers[i].EnvFrom)
	}
}

// podClaimNames returns the names of the PersistentVolumeClaims pod's
// volumes use, generic ephemeral volumes' claims included.
func podClaimNames(pod *corev1.Pod) []string {
	var names []string
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		switch {
		case v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName != "":
			names = append(names, v.PersistentVolumeClaim.ClaimName)
		case v.Ephemeral != nil:
			names = append(names, ephemeral.VolumeClaimName(pod, v))
		}
	}
	return names
}

// podResourceClaimNames returns the names of the ResourceClaims that pod
// uses and that exist, as upstream's resourceclaim.PodClaims: those named
// in the spec, those generated from templates once the status names them,
// and the claim of its extended resources.
func podResourceClaimNames(pod *corev1.Pod) []string {
	var names []string
	for _, c := range pod.Spec.ResourceClaims {
		if c.ResourceClaimName != nil {
			names = append(names, *c.ResourceClaimName)
			continue
		}
		if c.ResourceClaimTemplateName == nil {
			continue
		}
		for _, s := range pod.Status.ResourceClaimStatuses {
			if s.Name == c.Name && s.ResourceClaimName != nil {
				names = append(names, *s.ResourceClaimName)
			}
		}
	}
	if s := pod.Status.ExtendedResourceClaimStatus; s != nil && s.ResourceClaimName != "" {
		names = append(names, s.ResourceClaimName)
	}
	return names
}

// namespacedName is a secret a PersistentVolume uses.
type namespacedName struct{ namespace, name string }

// pvSecrets returns the secrets of pv that the kubelet uses (as upstream's
// VisitPVSecretNames with kubeletVisible): a secret without a namespace
// is in the namespace of the PV's claim.
func pvSecrets(pv *corev1.PersistentVolume) []namespacedName {
	claimNamespace := ""
	if pv.Spec.ClaimRef != nil {
		claimNamespace = pv.Spec.ClaimRef.Namespace
	}
	var out []namespacedName
	add := func(namespace, name string) {
		if name != "" {
			out = append(out, namespacedName{namespace, name})
		}
	}
	// inClaimNamespace is a SecretReference whose empty namespace means
	// the claim's (PVs persisted before the field existed).
	inClaimNamespace := func(ref *corev1.SecretReference) {
		if ref == nil {
			return
		}
		ns := ref.Namespace
		if ns == "" {
			ns = claimNamespace
		}
		add(ns, ref.Name)
	}
	secretRef := func(ref *corev1.SecretReference) {
		if ref != nil {
			add(ref.Namespace, ref.Name)
		}
	}
	s := &pv.Spec.PersistentVolumeSource
	switch {
	case s.AzureFile != nil:
		if s.AzureFile.SecretNamespace != nil && *s.AzureFile.SecretNamespace != "" {
			add(*s.AzureFile.SecretNamespace, s.AzureFile.SecretName)
		} else {
			add(claimNamespace, s.AzureFile.SecretName)
		}
	case s.CephFS != nil:
		inClaimNamespace(s.CephFS.SecretRef)
	case s.Cinder != nil:
		secretRef(s.Cinder.SecretRef)
	case s.FlexVolume != nil:
		inClaimNamespace(s.FlexVolume.SecretRef)
	case s.RBD != nil:
		inClaimNamespace(s.RBD.SecretRef)
	case s.ScaleIO != nil:
		inClaimNamespace(s.ScaleIO.SecretRef)
	case s.ISCSI != nil:
		inClaimNamespace(s.ISCSI.SecretRef)
	case s.StorageOS != nil:
		if s.StorageOS.SecretRef != nil {
			add(s.StorageOS.SecretRef.Namespace, s.StorageOS.SecretRef.Name)
		}
	case s.CSI != nil:
		// The controller's publish and expand secrets are not the kubelet's.
		secretRef(s.CSI.NodePublishSecretRef)
		secretRef(s.CSI.NodeStageSecretRef)
		secretRef(s.CSI.NodeExpandSecretRef)
	}
	return out
}
