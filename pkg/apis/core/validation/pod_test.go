package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

func TestValidatePod(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*corev1.PodSpec)
		want   []string
	}{
		{"valid", nil, nil},
		{"valid full", func(s *corev1.PodSpec) {
			c := &s.Containers[0]
			c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 80, Protocol: corev1.ProtocolTCP}}
			c.Env = []corev1.EnvVar{
				{Name: "A", Value: "b"},
				{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
				{Name: "CPU", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}},
				{Name: "K", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}}},
			}
			c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
			c.LivenessProbe = probe()
			c.ReadinessProbe = probe()
			c.Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: q("100m"), corev1.ResourceMemory: q("64Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: q("1"), corev1.ResourceMemory: q("128Mi"), "example.com/gpu": q("1")},
			}
			c.SecurityContext = &corev1.SecurityContext{RunAsUser: ptr.To[int64](1000)}
			s.InitContainers = []corev1.Container{container("init")}
			s.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
			s.NodeSelector = map[string]string{"kubernetes.io/os": "linux"}
			s.Tolerations = []corev1.Toleration{
				{Key: "k", Operator: corev1.TolerationOpEqual, Value: "v", Effect: corev1.TaintEffectNoSchedule},
				{Operator: corev1.TolerationOpExists},
				{Key: "n", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](30)},
			}
			s.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}, TopologyKey: "kubernetes.io/hostname"}}}}
			s.Hostname, s.Subdomain = "web-0", "web"
		}, nil},
		{"no containers", func(s *corev1.PodSpec) { s.Containers = nil }, []string{"Required spec.containers"}},
		{"duplicate container name", func(s *corev1.PodSpec) { s.Containers = append(s.Containers, container("c")) },
			[]string{"Duplicate spec.containers[1].name"}},
		{"init container name clashes", func(s *corev1.PodSpec) { s.InitContainers = []corev1.Container{container("c")} },
			[]string{"Duplicate spec.initContainers[0].name"}},
		{"bad container name", func(s *corev1.PodSpec) { s.Containers[0].Name = "Bad_Name" },
			[]string{"Invalid spec.containers[0].name"}},
		{"no image", func(s *corev1.PodSpec) { s.Containers[0].Image = "" }, []string{"Required spec.containers[0].image"}},
		{"resize policy", func(s *corev1.PodSpec) {
			s.Containers[0].ResizePolicy = []corev1.ContainerResizePolicy{
				{ResourceName: corev1.ResourceCPU, RestartPolicy: corev1.NotRequired},
				{ResourceName: corev1.ResourceMemory, RestartPolicy: corev1.RestartContainer},
			}
			sidecar := container("sidecar")
			sidecar.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
			sidecar.ResizePolicy = []corev1.ContainerResizePolicy{{ResourceName: corev1.ResourceMemory, RestartPolicy: corev1.RestartContainer}}
			s.InitContainers = []corev1.Container{sidecar}
		}, nil},
		{"bad resize policy", func(s *corev1.PodSpec) {
			s.Containers[0].ResizePolicy = []corev1.ContainerResizePolicy{
				{ResourceName: corev1.ResourceCPU, RestartPolicy: corev1.NotRequired},
				{ResourceName: corev1.ResourceCPU, RestartPolicy: "Sometimes"},
				{ResourceName: "example.com/gpu", RestartPolicy: corev1.NotRequired},
				{RestartPolicy: ""},
			}
		}, []string{"Duplicate spec.containers[0].resizePolicy[1]", "NotSupported spec.containers[0].resizePolicy",
			"NotSupported spec.containers[0].resizePolicy", "Required spec.containers[0].resizePolicy", "Required spec.containers[0].resizePolicy"}},
		{"resize policy of a pod that never restarts", func(s *corev1.PodSpec) {
			s.RestartPolicy = corev1.RestartPolicyNever
			s.Containers[0].ResizePolicy = []corev1.ContainerResizePolicy{{ResourceName: corev1.ResourceMemory, RestartPolicy: corev1.RestartContainer}}
		}, []string{"Invalid spec.containers[0].resizePolicy"}},
		{"init container resized with a restart", func(s *corev1.PodSpec) {
			init := container("init")
			init.ResizePolicy = []corev1.ContainerResizePolicy{{ResourceName: corev1.ResourceCPU, RestartPolicy: corev1.RestartContainer}}
			s.InitContainers = []corev1.Container{init}
		}, []string{"Invalid spec.initContainers[0].resizePolicy[0].restartPolicy"}},
		{"image whitespace", func(s *corev1.PodSpec) { s.Containers[0].Image = " nginx" }, []string{"Invalid spec.containers[0].image"}},
		{"pull policy", func(s *corev1.PodSpec) { s.Containers[0].ImagePullPolicy = "Sometimes" },
			[]string{"NotSupported spec.containers[0].imagePullPolicy"}},
		{"ports", func(s *corev1.PodSpec) {
			s.Containers[0].Ports = []corev1.ContainerPort{
				{Name: "a", ContainerPort: 0, Protocol: corev1.ProtocolTCP},
				{Name: "a", ContainerPort: 70000, Protocol: "HTTP"},
				{Name: "Bad_Port", ContainerPort: 80, Protocol: corev1.ProtocolUDP},
			}
		}, []string{
			"Required spec.containers[0].ports[0].containerPort",
			"Duplicate spec.containers[0].ports[1].name",
			"Invalid spec.containers[0].ports[1].containerPort",
			"NotSupported spec.containers[0].ports[1].protocol",
			"Invalid spec.containers[0].ports[2].name",
		}},
		{"host port conflict", func(s *corev1.PodSpec) {
			s.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080, Protocol: corev1.ProtocolTCP}}
			c := container("d")
			c.Ports = []corev1.ContainerPort{{ContainerPort: 81, HostPort: 8080, Protocol: corev1.ProtocolTCP}}
			s.Containers = append(s.Containers, c)
		}, []string{"Duplicate spec.containers[1].ports[0].hostPort"}},
		{"env", func(s *corev1.PodSpec) {
			s.Containers[0].Env = []corev1.EnvVar{
				{Name: ""},
				{Name: "A=B"},
				{Name: "X", ValueFrom: &corev1.EnvVarSource{}},
				{Name: "Y", ValueFrom: &corev1.EnvVarSource{
					FieldRef:        &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"},
					ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}, Key: "k"}}},
				{Name: "Z", Value: "v", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
				{Name: "F", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.phase"}}},
				{Name: "S", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}}},
			}
		}, []string{
			"Required spec.containers[0].env[0].name",
			"Invalid spec.containers[0].env[1].name",
			"Invalid spec.containers[0].env[2].valueFrom",
			"Invalid spec.containers[0].env[3].valueFrom",
			"Invalid spec.containers[0].env[4].valueFrom",
			"NotSupported spec.containers[0].env[5].valueFrom.fieldRef.fieldPath",
			"Required spec.containers[0].env[6].valueFrom.secretKeyRef.key",
		}},
		{"envFrom", func(s *corev1.PodSpec) {
			s.Containers[0].EnvFrom = []corev1.EnvFromSource{{Prefix: "P_"}, {ConfigMapRef: &corev1.ConfigMapEnvSource{}}}
		}, []string{"Invalid spec.containers[0].envFrom", "Required spec.containers[0].envFrom[1].configMapRef.name"}},
		{"volumes", func(s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{
				{Name: "a", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "a", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "b"},
				{Name: "c", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}, HostPath: &corev1.HostPathVolumeSource{Path: "/x"}}},
				{Name: "d", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{}}},
				{Name: "e", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Items: []corev1.KeyToPath{{Key: "k", Path: "../x"}}}}},
				{Name: "Bad_Name", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			}
		}, []string{
			"Duplicate spec.volumes[1].name",
			"Required spec.volumes[2]",
			"Forbidden spec.volumes[3].hostPath",
			"Required spec.volumes[4].secret.secretName",
			"Invalid spec.volumes[5].configMap.items[0].path",
			"Invalid spec.volumes[6].name",
		}},
		{"volume mounts", func(s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
			s.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "missing", MountPath: "/a"}, {Name: "data"}, {Name: "data", MountPath: "/a"}}
		}, []string{
			"NotFound spec.containers[0].volumeMounts[0].name",
			"Required spec.containers[0].volumeMounts[1].mountPath",
			"Invalid spec.containers[0].volumeMounts[2].mountPath",
		}},
		{"probes", func(s *corev1.PodSpec) {
			c := &s.Containers[0]
			c.LivenessProbe = &corev1.Probe{SuccessThreshold: 1}
			c.ReadinessProbe = probe()
			c.ReadinessProbe.TCPSocket = &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}
			c.ReadinessProbe.PeriodSeconds = -1
			c.StartupProbe = probe()
			c.StartupProbe.SuccessThreshold = 2
		}, []string{
			"Required spec.containers[0].livenessProbe",
			"Forbidden spec.containers[0].readinessProbe.tcpSocket",
			"Invalid spec.containers[0].readinessProbe.periodSeconds",
			"Invalid spec.containers[0].startupProbe.successThreshold",
		}},
		{"init container probe", func(s *corev1.PodSpec) {
			c := container("init")
			c.LivenessProbe = probe()
			s.InitContainers = []corev1.Container{c}
		}, []string{"Forbidden spec.initContainers[0].livenessProbe"}},
		{"sidecar probe allowed", func(s *corev1.PodSpec) {
			c := container("init")
			c.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
			c.LivenessProbe = probe()
			s.InitContainers = []corev1.Container{c}
		}, nil},
		{"resources", func(s *corev1.PodSpec) {
			s.Containers[0].Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: q("2"), corev1.ResourceMemory: q("-1")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: q("1"), "foo": q("1")},
			}
		}, []string{
			"Invalid spec.containers[0].resources.limits[foo]",
			"Invalid spec.containers[0].resources.limits[foo]",
			"Invalid spec.containers[0].resources.requests",
			"Invalid spec.containers[0].resources.requests[memory]",
		}},
		{"extended resource needs equal limit", func(s *corev1.PodSpec) {
			s.Containers[0].Resources = corev1.ResourceRequirements{Requests: corev1.ResourceList{"example.com/gpu": q("1")}}
		}, []string{"Required spec.containers[0].resources.limits"}},
		{"pod enums", func(s *corev1.PodSpec) {
			s.RestartPolicy = "Sometimes"
			s.DNSPolicy = ""
			s.TerminationGracePeriodSeconds = nil
		}, []string{"NotSupported spec.restartPolicy", "Required spec.dnsPolicy", "Required spec.terminationGracePeriodSeconds"}},
		{"negative grace period", func(s *corev1.PodSpec) { s.TerminationGracePeriodSeconds = ptr.To[int64](-1) },
			[]string{"Invalid spec.terminationGracePeriodSeconds"}},
		{"dns none needs config", func(s *corev1.PodSpec) { s.DNSPolicy = corev1.DNSNone }, []string{"Required spec.dnsConfig"}},
		{"node selector", func(s *corev1.PodSpec) { s.NodeSelector = map[string]string{"k": "bad value"} },
			[]string{"Invalid spec.nodeSelector"}},
		{"tolerations", func(s *corev1.PodSpec) {
			s.Tolerations = []corev1.Toleration{
				{Operator: corev1.TolerationOpEqual, Value: "v"},
				{Key: "k", Operator: corev1.TolerationOpExists, Value: "v"},
				{Key: "k", Operator: corev1.TolerationOpEqual, Effect: corev1.TaintEffectNoSchedule, TolerationSeconds: ptr.To[int64](1)},
				{Key: "k", Operator: "In"},
				{Key: "k", Effect: "Sometimes"},
			}
		}, []string{
			"Invalid spec.tolerations[0].operator",
			"Invalid spec.tolerations[1].operator",
			"Invalid spec.tolerations[2].effect",
			"NotSupported spec.tolerations[3].operator",
			"NotSupported spec.tolerations[4].effect",
		}},
		{"affinity", func(s *corev1.PodSpec) {
			s.Affinity = &corev1.Affinity{
				NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{}},
				PodAffinity: &corev1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
					Weight: 0, PodAffinityTerm: corev1.PodAffinityTerm{TopologyKey: "zone"}}}},
			}
		}, []string{
			"Required spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
			"Invalid spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
		}},
		{"affinity selector", func(s *corev1.PodSpec) {
			s.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn}}},
			}}}}
		}, []string{
			"Required spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchExpressions[0].values",
			"Required spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey",
			"Invalid spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey",
			"Invalid spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey",
		}},
		{"security context", func(s *corev1.PodSpec) {
			s.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](-1), FSGroup: ptr.To[int64](-2)}
			s.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsGroup: ptr.To[int64](-1),
				Privileged: ptr.To(true), AllowPrivilegeEscalation: ptr.To(false)}
		}, []string{
			"Invalid spec.securityContext.runAsUser",
			"Invalid spec.securityContext.fsGroup",
			"Invalid spec.containers[0].securityContext.runAsGroup",
			"Invalid spec.containers[0].securityContext",
		}},
		{"hostname", func(s *corev1.PodSpec) { s.Hostname = "Bad_Host"; s.Subdomain = "a.b" },
			[]string{"Invalid spec.hostname", "Invalid spec.subdomain"}},
		{"host network ports", func(s *corev1.PodSpec) {
			s.HostNetwork = true
			s.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}}
		}, []string{"Invalid spec.containers[0].ports[0].hostPort"}},
		{"ephemeral containers on create", func(s *corev1.PodSpec) {
			s.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "e", Image: "busybox"}}}
		}, []string{"Forbidden spec.ephemeralContainers"}},
		{"topology spread", func(s *corev1.PodSpec) {
			s.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 0, WhenUnsatisfiable: "Maybe"}}
		}, []string{
			"Invalid spec.topologySpreadConstraints[0].maxSkew",
			"Required spec.topologySpreadConstraints[0].topologyKey",
			"NotSupported spec.topologySpreadConstraints[0].whenUnsatisfiable",
		}},
		{"active deadline", func(s *corev1.PodSpec) { s.ActiveDeadlineSeconds = ptr.To[int64](0) },
			[]string{"Invalid spec.activeDeadlineSeconds"}},
		{"service account token without service account", func(s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{{Name: "t", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}}}}
		}, []string{"Forbidden spec.volumes[0].projected.sources[0].serviceAccountToken"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			apitesting.ExpectFieldErrors(t, ValidatePod(pod(tc.mutate)), tc.want...)
		})
	}
}

func TestValidatePodNilSafe(t *testing.T) {
	// Undefaulted input must not panic.
	p := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i",
		LivenessProbe: &corev1.Probe{}, Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}}},
		SecurityContext: &corev1.SecurityContext{SeccompProfile: &corev1.SeccompProfile{}}}},
		Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{}}, OS: &corev1.PodOS{},
		Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{}}}}}}
	if len(ValidatePod(p)) == 0 {
		t.Fatal("expected errors")
	}
	if len(ValidatePodUpdate(p, &corev1.Pod{})) == 0 {
		t.Fatal("expected errors")
	}
}

func TestValidatePodUpdate(t *testing.T) {
	withTolerations := func(s *corev1.PodSpec) {
		s.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](10)}}
	}
	cases := []struct {
		name   string
		old    func(*corev1.PodSpec)
		mutate func(*corev1.PodSpec)
		want   []string
		detail string
	}{
		{"unchanged", nil, nil, nil, ""},
		{"image", nil, func(s *corev1.PodSpec) { s.Containers[0].Image = "nginx:2" }, nil, ""},
		{"active deadline set", nil, func(s *corev1.PodSpec) { s.ActiveDeadlineSeconds = ptr.To[int64](10) }, nil, ""},
		{"active deadline raised", func(s *corev1.PodSpec) { s.ActiveDeadlineSeconds = ptr.To[int64](10) },
			func(s *corev1.PodSpec) { s.ActiveDeadlineSeconds = ptr.To[int64](20) },
			[]string{"Invalid spec.activeDeadlineSeconds"}, "must be less than or equal to previous value"},
		{"toleration added", withTolerations, func(s *corev1.PodSpec) {
			withTolerations(s)
			s.Tolerations[0].TolerationSeconds = ptr.To[int64](20)
			s.Tolerations = append(s.Tolerations, corev1.Toleration{Key: "x", Operator: corev1.TolerationOpExists})
		}, nil, ""},
		{"toleration changed", withTolerations, func(s *corev1.PodSpec) { withTolerations(s); s.Tolerations[0].Key = "other" },
			[]string{"Forbidden spec.tolerations"}, "existing toleration can not be modified"},
		{"other field", nil, func(s *corev1.PodSpec) { s.Containers[0].Args = []string{"x"} },
			[]string{"Forbidden spec"}, "pod updates may not change fields other than `spec.containers[*].image`"},
		{"container removed", func(s *corev1.PodSpec) { s.Containers = append(s.Containers, container("d")) }, func(*corev1.PodSpec) {},
			[]string{"Forbidden spec.containers"}, "pod updates may not add or remove containers"},
		{"scheduling gate removed", func(s *corev1.PodSpec) { s.SchedulingGates = []corev1.PodSchedulingGate{{Name: "g"}} }, nil, nil, ""},
		{"scheduling gate added", nil, func(s *corev1.PodSpec) { s.SchedulingGates = []corev1.PodSchedulingGate{{Name: "g"}} },
			[]string{"Forbidden spec.schedulingGates[0].name"}, "only deletion is allowed"},
		{"gated node selector addition", func(s *corev1.PodSpec) { s.SchedulingGates = []corev1.PodSchedulingGate{{Name: "g"}} },
			func(s *corev1.PodSpec) {
				s.SchedulingGates = []corev1.PodSchedulingGate{{Name: "g"}}
				s.NodeSelector = map[string]string{"a": "b"}
			}, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := pod(tc.old)
			p := pod(tc.old)
			if tc.mutate != nil {
				p = pod(tc.mutate)
			}
			errs := ValidatePodUpdate(p, old)
			apitesting.ExpectFieldErrors(t, errs, tc.want...)
			if tc.detail != "" {
				apitesting.ExpectErrorDetail(t, errs, tc.detail)
			}
		})
	}
}

func TestValidatePodTemplate(t *testing.T) {
	valid := &corev1.PodTemplate{ObjectMeta: meta("t"), Template: corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "b"}}, Spec: podSpec()}}
	apitesting.ExpectFieldErrors(t, ValidatePodTemplate(valid))
	bad := valid.DeepCopy()
	bad.Template.Labels = map[string]string{"a": "b c"}
	bad.Template.Spec.Containers = nil
	apitesting.ExpectFieldErrors(t, ValidatePodTemplate(bad), "Invalid template.labels", "Required template.spec.containers")
}
