package apps

// Defaulting of the apps/v1 kinds as upstream Kubernetes v1.37 does it
// (pkg/apis/apps/v1 defaults.go and zz_generated.defaults.go), with the v1.37
// gate defaults: MaxUnavailableStatefulSet is beta and on, so a StatefulSet's
// rollingUpdate.maxUnavailable defaults to 1.

import (
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis/core"
)

// RegisterDefaults adds the apps/v1 defaulters to scheme.
func RegisterDefaults(scheme *runtime.Scheme) {
	core.AddDefaulters(scheme, &appsv1.Deployment{}, &appsv1.DeploymentList{},
		func(l *appsv1.DeploymentList) []appsv1.Deployment { return l.Items }, setDefaultsDeployment)
	core.AddDefaulters(scheme, &appsv1.ReplicaSet{}, &appsv1.ReplicaSetList{},
		func(l *appsv1.ReplicaSetList) []appsv1.ReplicaSet { return l.Items }, setDefaultsReplicaSet)
	core.AddDefaulters(scheme, &appsv1.StatefulSet{}, &appsv1.StatefulSetList{},
		func(l *appsv1.StatefulSetList) []appsv1.StatefulSet { return l.Items }, setDefaultsStatefulSet)
	core.AddDefaulters(scheme, &appsv1.DaemonSet{}, &appsv1.DaemonSetList{},
		func(l *appsv1.DaemonSetList) []appsv1.DaemonSet { return l.Items }, setDefaultsDaemonSet)
}

func setDefaultsDeployment(d *appsv1.Deployment) {
	spec := &d.Spec
	if spec.Replicas == nil {
		spec.Replicas = ptr.To[int32](1)
	}
	if spec.Strategy.Type == "" {
		spec.Strategy.Type = appsv1.RollingUpdateDeploymentStrategyType
	}
	if spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType {
		if spec.Strategy.RollingUpdate == nil {
			spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{}
		}
		ru := spec.Strategy.RollingUpdate
		if ru.MaxUnavailable == nil {
			ru.MaxUnavailable = ptr.To(intstr.FromString("25%"))
		}
		if ru.MaxSurge == nil {
			ru.MaxSurge = ptr.To(intstr.FromString("25%"))
		}
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = ptr.To[int32](10)
	}
	if spec.ProgressDeadlineSeconds == nil {
		spec.ProgressDeadlineSeconds = ptr.To[int32](600)
	}
	core.SetPodTemplateSpecDefaults(&spec.Template)
}

func setDefaultsReplicaSet(rs *appsv1.ReplicaSet) {
	if rs.Spec.Replicas == nil {
		rs.Spec.Replicas = ptr.To[int32](1)
	}
	core.SetPodTemplateSpecDefaults(&rs.Spec.Template)
}

func setDefaultsStatefulSet(ss *appsv1.StatefulSet) {
	spec := &ss.Spec
	if spec.PodManagementPolicy == "" {
		spec.PodManagementPolicy = appsv1.OrderedReadyPodManagement
	}
	// rollingUpdate is only created with a defaulted type: an explicit
	// RollingUpdate type without rollingUpdate stays without partition.
	if spec.UpdateStrategy.Type == "" {
		spec.UpdateStrategy.Type = appsv1.RollingUpdateStatefulSetStrategyType
		if spec.UpdateStrategy.RollingUpdate == nil {
			spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{}
		}
	}
	if ru := spec.UpdateStrategy.RollingUpdate; spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType && ru != nil {
		if ru.Partition == nil {
			ru.Partition = ptr.To[int32](0)
		}
		if ru.MaxUnavailable == nil {
			ru.MaxUnavailable = ptr.To(intstr.FromInt32(1))
		}
	}
	if spec.PersistentVolumeClaimRetentionPolicy == nil {
		spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{}
	}
	if p := spec.PersistentVolumeClaimRetentionPolicy; p.WhenDeleted == "" {
		p.WhenDeleted = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if p := spec.PersistentVolumeClaimRetentionPolicy; p.WhenScaled == "" {
		p.WhenScaled = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if spec.Replicas == nil {
		spec.Replicas = ptr.To[int32](1)
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = ptr.To[int32](10)
	}
	core.SetPodTemplateSpecDefaults(&spec.Template)
	for i := range spec.VolumeClaimTemplates {
		core.SetPersistentVolumeClaimDefaults(&spec.VolumeClaimTemplates[i])
		// Upstream's apps/v1 conversion writes the templates' type.
		if spec.VolumeClaimTemplates[i].APIVersion == "" && spec.VolumeClaimTemplates[i].Kind == "" {
			spec.VolumeClaimTemplates[i].APIVersion, spec.VolumeClaimTemplates[i].Kind = "v1", "PersistentVolumeClaim"
		}
	}
}

func setDefaultsDaemonSet(ds *appsv1.DaemonSet) {
	us := &ds.Spec.UpdateStrategy
	if us.Type == "" {
		us.Type = appsv1.RollingUpdateDaemonSetStrategyType
	}
	if us.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		if us.RollingUpdate == nil {
			us.RollingUpdate = &appsv1.RollingUpdateDaemonSet{}
		}
		if us.RollingUpdate.MaxUnavailable == nil {
			us.RollingUpdate.MaxUnavailable = ptr.To(intstr.FromInt32(1))
		}
		if us.RollingUpdate.MaxSurge == nil {
			us.RollingUpdate.MaxSurge = ptr.To(intstr.FromInt32(0))
		}
	}
	if ds.Spec.RevisionHistoryLimit == nil {
		ds.Spec.RevisionHistoryLimit = ptr.To[int32](10)
	}
	core.SetPodTemplateSpecDefaults(&ds.Spec.Template)
}
