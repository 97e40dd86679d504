package validation

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

var appLabels = map[string]string{"app": "web"}

// template is a defaulted pod template labelled app=web.
func template() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "nginx", ImagePullPolicy: corev1.PullIfNotPresent,
				TerminationMessagePolicy: corev1.TerminationMessageReadFile, TerminationMessagePath: corev1.TerminationMessagePathDefault}},
			RestartPolicy:                 corev1.RestartPolicyAlways,
			DNSPolicy:                     corev1.DNSClusterFirst,
			TerminationGracePeriodSeconds: ptr.To[int64](30),
			SchedulerName:                 corev1.DefaultSchedulerName,
		},
	}
}

func selector() *metav1.LabelSelector { return &metav1.LabelSelector{MatchLabels: appLabels} }

func pct(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
func num(n int32) *intstr.IntOrString  { v := intstr.FromInt32(n); return &v }

func deployment(mutate func(*appsv1.DeploymentSpec)) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "default"}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To[int32](1), Selector: selector(), Template: template(),
		Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: pct("25%"), MaxSurge: pct("25%")}},
		RevisionHistoryLimit: ptr.To[int32](10), ProgressDeadlineSeconds: ptr.To[int32](600),
	}}
	if mutate != nil {
		mutate(&d.Spec)
	}
	return d
}

func TestValidateDeployment(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*appsv1.DeploymentSpec)
		want   []string
	}{
		{"valid", nil, nil},
		{"recreate", func(s *appsv1.DeploymentSpec) {
			s.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
		}, nil},
		{"no selector", func(s *appsv1.DeploymentSpec) { s.Selector = nil },
			[]string{"Required spec.selector", "Invalid spec.template.metadata.labels"}},
		{"empty selector", func(s *appsv1.DeploymentSpec) { s.Selector = &metav1.LabelSelector{} }, []string{"Invalid spec.selector"}},
		{"selector mismatch", func(s *appsv1.DeploymentSpec) { s.Template.Labels = map[string]string{"app": "other"} },
			[]string{"Invalid spec.template.metadata.labels"}},
		{"negative replicas", func(s *appsv1.DeploymentSpec) { s.Replicas = ptr.To[int32](-1) }, []string{"Invalid spec.replicas"}},
		{"restart policy", func(s *appsv1.DeploymentSpec) { s.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure },
			[]string{"NotSupported spec.template.spec.restartPolicy"}},
		{"bad template", func(s *appsv1.DeploymentSpec) { s.Template.Spec.Containers[0].Image = "" },
			[]string{"Required spec.template.spec.containers[0].image"}},
		{"surge and unavailable zero", func(s *appsv1.DeploymentSpec) {
			s.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: num(0), MaxSurge: pct("0%")}
		}, []string{"Invalid spec.strategy.rollingUpdate.maxUnavailable"}},
		{"bad percentages", func(s *appsv1.DeploymentSpec) {
			s.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: pct("150%"), MaxSurge: pct("x")}
		}, []string{"Invalid spec.strategy.rollingUpdate.maxUnavailable", "Invalid spec.strategy.rollingUpdate.maxSurge"}},
		{"rolling update with recreate", func(s *appsv1.DeploymentSpec) { s.Strategy.Type = appsv1.RecreateDeploymentStrategyType },
			[]string{"Forbidden spec.strategy.rollingUpdate"}},
		{"bad strategy", func(s *appsv1.DeploymentSpec) { s.Strategy.Type = "BlueGreen" }, []string{"NotSupported spec.strategy"}},
		{"progress deadline", func(s *appsv1.DeploymentSpec) { s.MinReadySeconds = 600 }, []string{"Invalid spec.progressDeadlineSeconds"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			apitesting.ExpectFieldErrors(t, ValidateDeployment(deployment(tc.mutate)), tc.want...)
		})
	}
	errs := ValidateDeployment(deployment(func(s *appsv1.DeploymentSpec) { s.Template.Labels = nil }))
	apitesting.ExpectErrorDetail(t, errs, "`selector` does not match template `labels`")

	upd := deployment(func(s *appsv1.DeploymentSpec) {
		s.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "v": "2"}}
		s.Template.Labels["v"] = "2"
	})
	errs = ValidateDeploymentUpdate(upd, deployment(nil))
	apitesting.ExpectFieldErrors(t, errs, "Invalid spec.selector")
	apitesting.ExpectErrorDetail(t, errs, "field is immutable")
	apitesting.ExpectFieldErrors(t, ValidateDeploymentUpdate(deployment(func(s *appsv1.DeploymentSpec) { s.Replicas = ptr.To[int32](5) }), deployment(nil)))
}

func TestValidateReplicaSet(t *testing.T) {
	rs := &appsv1.ReplicaSet{Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](2), Selector: selector(), Template: template()}}
	apitesting.ExpectFieldErrors(t, ValidateReplicaSet(rs))
	bad := rs.DeepCopy()
	bad.Spec.Replicas = ptr.To[int32](-1)
	bad.Spec.MinReadySeconds = -1
	bad.Spec.Template.Spec.ActiveDeadlineSeconds = ptr.To[int64](10)
	apitesting.ExpectFieldErrors(t, ValidateReplicaSet(bad), "Invalid spec.replicas", "Invalid spec.minReadySeconds", "Forbidden spec.template.spec.activeDeadlineSeconds")
	upd := rs.DeepCopy()
	upd.Spec.Selector.MatchLabels = map[string]string{"app": "web", "x": "y"}
	upd.Spec.Template.Labels = upd.Spec.Selector.MatchLabels
	apitesting.ExpectFieldErrors(t, ValidateReplicaSetUpdate(upd, rs), "Invalid spec.selector")
}

func TestValidateDaemonSet(t *testing.T) {
	ds := &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{Selector: selector(), Template: template(),
		UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: num(1), MaxSurge: num(0)}},
		RevisionHistoryLimit: ptr.To[int32](10)}}
	apitesting.ExpectFieldErrors(t, ValidateDaemonSet(ds))
	cases := []struct {
		name   string
		mutate func(*appsv1.DaemonSetSpec)
		want   []string
	}{
		{"no selector", func(s *appsv1.DaemonSetSpec) { s.Selector = nil }, []string{"Invalid spec.template.metadata.labels"}},
		{"empty selector", func(s *appsv1.DaemonSetSpec) { s.Selector = &metav1.LabelSelector{} }, []string{"Invalid spec.selector"}},
		{"both surge and unavailable", func(s *appsv1.DaemonSetSpec) { s.UpdateStrategy.RollingUpdate.MaxSurge = num(1) },
			[]string{"Invalid spec.updateStrategy.rollingUpdate.maxSurge"}},
		{"neither", func(s *appsv1.DaemonSetSpec) { s.UpdateStrategy.RollingUpdate.MaxUnavailable = num(0) },
			[]string{"Required spec.updateStrategy.rollingUpdate.maxUnavailable"}},
		{"no rolling update", func(s *appsv1.DaemonSetSpec) { s.UpdateStrategy.RollingUpdate = nil },
			[]string{"Required spec.updateStrategy.rollingUpdate"}},
		{"bad strategy", func(s *appsv1.DaemonSetSpec) { s.UpdateStrategy.Type = "Never" }, []string{"NotSupported spec.updateStrategy"}},
		{"restart policy", func(s *appsv1.DaemonSetSpec) { s.Template.Spec.RestartPolicy = corev1.RestartPolicyNever },
			[]string{"NotSupported spec.template.spec.restartPolicy"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := ds.DeepCopy()
			tc.mutate(&d.Spec)
			apitesting.ExpectFieldErrors(t, ValidateDaemonSet(d), tc.want...)
		})
	}
	upd := ds.DeepCopy()
	upd.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "x": "y"}}
	upd.Spec.Template.Labels = upd.Spec.Selector.MatchLabels
	apitesting.ExpectFieldErrors(t, ValidateDaemonSetUpdate(upd, ds), "Invalid spec.selector")
}

func TestValidateStatefulSet(t *testing.T) {
	claim := corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data"}, Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
	}}
	ss := &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](3), Selector: selector(), Template: template(),
		ServiceName: "web", PodManagementPolicy: appsv1.OrderedReadyPodManagement,
		UpdateStrategy:       appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType, RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To[int32](0)}},
		VolumeClaimTemplates: []corev1.PersistentVolumeClaim{claim},
	}}
	// Claim templates count as volumes of the pod template.
	ss.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	ss.Spec.Template.Spec.Hostname = "Ignored_Set_By_Controller"
	apitesting.ExpectFieldErrors(t, ValidateStatefulSet(ss))

	bad := ss.DeepCopy()
	bad.Spec.PodManagementPolicy = "Random"
	bad.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType, RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{}}
	bad.Spec.ServiceName = "Bad_Name"
	bad.Spec.VolumeClaimTemplates[0].Spec.AccessModes = nil
	bad.Spec.Replicas = ptr.To[int32](-1)
	bad.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: "Keep", WhenScaled: appsv1.RetainPersistentVolumeClaimRetentionPolicyType}
	apitesting.ExpectFieldErrors(t, ValidateStatefulSet(bad),
		"Invalid spec.podManagementPolicy",
		"Invalid spec.updateStrategy.rollingUpdate",
		"Invalid spec.serviceName",
		"Required spec.volumeClaimTemplates[0].spec.accessModes",
		"Invalid spec.replicas",
		"NotSupported spec.persistentVolumeClaimRetentionPolicy.whenDeleted")
	maxUnavailable := ss.DeepCopy()
	maxUnavailable.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = num(0)
	apitesting.ExpectFieldErrors(t, ValidateStatefulSet(maxUnavailable), "Invalid spec.updateStrategy.rollingUpdate.maxUnavailable")
	noSelector := ss.DeepCopy()
	noSelector.Spec.Selector = nil
	apitesting.ExpectFieldErrors(t, ValidateStatefulSet(noSelector), "Required spec.selector", "Invalid spec.template.metadata.labels")

	upd := ss.DeepCopy()
	upd.Spec.ServiceName = "other"
	upd.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
	upd.Spec.Replicas = ptr.To[int32](5)
	upd.Spec.Template.Spec.Containers[0].Image = "nginx:2"
	apitesting.ExpectFieldErrors(t, ValidateStatefulSetUpdate(upd, ss), "Invalid spec.serviceName", "Invalid spec.podManagementPolicy")
}

func TestValidateControllerRevision(t *testing.T) {
	cr := &appsv1.ControllerRevision{Revision: 1, Data: runtime.RawExtension{Raw: []byte(`{"spec":{}}`)}}
	apitesting.ExpectFieldErrors(t, ValidateControllerRevision(cr))
	apitesting.ExpectFieldErrors(t, ValidateControllerRevision(&appsv1.ControllerRevision{Revision: -1}), "Invalid revision", "Required data")
	apitesting.ExpectFieldErrors(t, ValidateControllerRevision(&appsv1.ControllerRevision{Data: runtime.RawExtension{Raw: []byte(`[1]`)}}), "Required data")
	apitesting.ExpectFieldErrors(t, ValidateControllerRevision(&appsv1.ControllerRevision{Data: runtime.RawExtension{Raw: []byte(`{`)}}), "Invalid data")
	upd := cr.DeepCopy()
	upd.Data.Raw = []byte(`{"spec":{"x":1}}`)
	errs := ValidateControllerRevisionUpdate(upd, cr)
	apitesting.ExpectFieldErrors(t, errs, "Invalid data")
	apitesting.ExpectErrorDetail(t, errs, "field is immutable")
}
