package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

func TestValidatePodStatusUpdate(t *testing.T) {
	base := &corev1.Pod{
		Spec:   corev1.PodSpec{RestartPolicy: corev1.RestartPolicyAlways, Containers: []corev1.Container{{Name: "c"}}},
		Status: corev1.PodStatus{QOSClass: corev1.PodQOSBestEffort},
	}
	terminated := func(name string, code int32) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}}
	}
	running := func(name string) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	}
	cases := []struct {
		name      string
		old, edit func(*corev1.Pod)
		want      []string
	}{
		{"unchanged", nil, nil, nil},
		{"bad pod IP", nil, func(p *corev1.Pod) { p.Status.PodIP, p.Status.PodIPs = "x", []corev1.PodIP{{IP: "x"}} }, []string{"Invalid status.podIPs[0]"}},
		{"podIP without podIPs", nil, func(p *corev1.Pod) { p.Status.PodIP = "10.0.0.1" }, []string{"Invalid status.podIPs"}},
		{"podIPs without podIP", nil, func(p *corev1.Pod) { p.Status.PodIPs = []corev1.PodIP{{IP: "10.0.0.1"}} }, []string{"Invalid status.podIPs"}},
		{"podIP not podIPs[0]", nil, func(p *corev1.Pod) { p.Status.PodIP, p.Status.PodIPs = "10.0.0.1", []corev1.PodIP{{IP: "10.0.0.2"}} }, []string{"Invalid status.podIPs[0].ip"}},
		{"two IPv4 pod IPs", nil, func(p *corev1.Pod) {
			p.Status.PodIP, p.Status.PodIPs = "10.0.0.1", []corev1.PodIP{{IP: "10.0.0.1"}, {IP: "10.0.0.2"}}
		}, []string{"Invalid status.podIPs"}},
		{"dual-stack pod IPs", nil, func(p *corev1.Pod) {
			p.Status.PodIP, p.Status.PodIPs = "10.0.0.1", []corev1.PodIP{{IP: "10.0.0.1"}, {IP: "fd00::1"}}
		}, nil},
		{"stored invalid pod IP may stay", func(p *corev1.Pod) { p.Status.PodIPs = []corev1.PodIP{{IP: "010.0.0.1"}} },
			func(p *corev1.Pod) { p.Status.PodIP, p.Status.PodIPs = "010.0.0.1", []corev1.PodIP{{IP: "010.0.0.1"}} }, nil},
		{"hostIP not hostIPs[0]", nil, func(p *corev1.Pod) { p.Status.HostIP, p.Status.HostIPs = "10.1.0.1", []corev1.HostIP{{IP: "10.1.0.2"}} }, []string{"Invalid status.hostIPs[0].ip"}},
		{"bad host IP", nil, func(p *corev1.Pod) {
			p.Status.HostIP, p.Status.HostIPs = "::ffff:1.2.3.4", []corev1.HostIP{{IP: "::ffff:1.2.3.4"}}
		}, []string{"Invalid status.hostIPs[0]"}},
		{"hostIP alone is not checked", nil, func(p *corev1.Pod) { p.Status.HostIP = "x" }, nil},
		{"conditions", nil, func(p *corev1.Pod) {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady}, {Type: "example.com/gate"}, {Type: "bad type", ObservedGeneration: -1}}
		}, []string{"Invalid status.conditions[2].Type", "Invalid status.conditions[2].observedGeneration"}},
		{"observedGeneration", nil, func(p *corev1.Pod) { p.Status.ObservedGeneration = -1 }, []string{"Invalid status.observedGeneration"}},
		{"qosClass", nil, func(p *corev1.Pod) { p.Status.QOSClass = corev1.PodQOSGuaranteed }, []string{"Invalid status.qosClass"}},
		{"nominatedNodeName", nil, func(p *corev1.Pod) { p.Status.NominatedNodeName = "A_B" }, []string{"Invalid status.nominatedNodeName"}},
		{"nominatedNodeName of a bound pod", func(p *corev1.Pod) { p.Spec.NodeName = "n1" },
			func(p *corev1.Pod) { p.Spec.NodeName, p.Status.NominatedNodeName = "n1", "n2" }, []string{"Forbidden status.nominatedNodeName"}},
		{"nodeName", nil, func(p *corev1.Pod) { p.Spec.NodeName = "n1" }, []string{"Forbidden status.nodeName"}},
		{"restartPolicy Always restarts", func(p *corev1.Pod) { p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("c", 0)} },
			func(p *corev1.Pod) { p.Status.ContainerStatuses = []corev1.ContainerStatus{running("c")} }, nil},
		{"restartPolicy Never", func(p *corev1.Pod) {
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			p.Status.ContainerStatuses = []corev1.ContainerStatus{running("other"), terminated("c", 0)}
		}, func(p *corev1.Pod) {
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			p.Status.ContainerStatuses = []corev1.ContainerStatus{running("c")}
		}, []string{"Forbidden status.containerStatuses[1].state"}},
		{"restartPolicy OnFailure after a failure", func(p *corev1.Pod) {
			p.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
			p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("c", 1)}
		}, func(p *corev1.Pod) {
			p.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
			p.Status.ContainerStatuses = []corev1.ContainerStatus{running("c")}
		}, nil},
		{"restart rule", func(p *corev1.Pod) {
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			p.Spec.Containers[0].RestartPolicy = ptr.To(corev1.ContainerRestartPolicyNever)
			p.Spec.Containers[0].RestartPolicyRules = []corev1.ContainerRestartRule{{Action: corev1.ContainerRestartRuleActionRestart,
				ExitCodes: &corev1.ContainerRestartRuleOnExitCodes{Operator: corev1.ContainerRestartRuleOnExitCodesOpIn, Values: []int32{42}}}}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{terminated("c", 42)}
		}, func(p *corev1.Pod) {
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			p.Status.ContainerStatuses = []corev1.ContainerStatus{running("c")}
		}, nil},
		{"restartable init container", func(p *corev1.Pod) {
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			p.Spec.InitContainers = []corev1.Container{{Name: "side", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}, {Name: "init"}}
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{terminated("side", 0), terminated("init", 0)}
		}, func(p *corev1.Pod) {
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{running("side"), running("init")}
		}, []string{"Forbidden status.initContainerStatuses[1].state"}},
		{"ephemeral container", func(p *corev1.Pod) {
			p.Status.EphemeralContainerStatuses = []corev1.ContainerStatus{terminated("dbg", 0)}
		},
			func(p *corev1.Pod) { p.Status.EphemeralContainerStatuses = []corev1.ContainerStatus{running("dbg")} },
			[]string{"Forbidden status.ephemeralContainerStatuses[0].state"}},
		{"resource claim statuses", nil, func(p *corev1.Pod) {
			p.Spec.ResourceClaims = []corev1.PodResourceClaim{{Name: "gpu"}}
			p.Status.ResourceClaimStatuses = []corev1.PodResourceClaimStatus{{Name: "gpu", ResourceClaimName: ptr.To("BAD")}, {Name: "gpu"}, {Name: "tpu"}}
		}, []string{"Invalid status.resourceClaimStatuses[0].resourceClaimName", "Duplicate status.resourceClaimStatuses[1].name", "Invalid status.resourceClaimStatuses[2].name"}},
		{"container user", nil, func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", User: &corev1.ContainerUser{Linux: &corev1.LinuxContainerUser{UID: -1, GID: -1, SupplementalGroups: []int64{1, -2}}}}}
		}, []string{"Invalid status.containerStatuses[0].user.linux.uid", "Invalid status.containerStatuses[0].user.linux.gid", "Invalid status.containerStatuses[0].user.linux.supplementalGroups[1]"}},
		{"windows container user", nil, func(p *corev1.Pod) {
			p.Spec.OS = &corev1.PodOS{Name: corev1.Windows}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", User: &corev1.ContainerUser{Linux: &corev1.LinuxContainerUser{}}}}
		}, []string{"Forbidden status.containerStatuses[0].user.linux"}},
		// As upstream: names, restart counts and states are not checked.
		{"container status contents", nil, func(p *corev1.Pod) {
			p.Status.Phase = "Bogus"
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "", RestartCount: -1, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}, Waiting: &corev1.ContainerStateWaiting{}}}}
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := base.DeepCopy()
			if tc.old != nil {
				tc.old(old)
			}
			pod := base.DeepCopy()
			if tc.edit != nil {
				tc.edit(pod)
			}
			apitesting.ExpectFieldErrors(t, ValidatePodStatusUpdate(pod, old), tc.want...)
		})
	}
	// Upstream's texts.
	pod := base.DeepCopy()
	pod.Status.PodIP, pod.Status.PodIPs = "10.0.0.1", []corev1.PodIP{{IP: "10.0.0.2"}}
	apitesting.ExpectErrorDetail(t, ValidatePodStatusUpdate(pod, base), "status.podIPs[0].ip: Invalid value: \"10.0.0.2\": must be equal to `podIP`")
	pod.Status.PodIPs = nil
	apitesting.ExpectErrorDetail(t, ValidatePodStatusUpdate(pod, base), "status.podIPs: Invalid value: null: podIP and podIPs must either both be set or both be unset")
}

func TestValidateNodeDeclaredFeatures(t *testing.T) {
	node := &corev1.Node{Status: corev1.NodeStatus{DeclaredFeatures: []string{"A", "A", "B/c", "0x"}}}
	apitesting.ExpectFieldErrors(t, ValidateNodeUpdate(node, node.DeepCopy()),
		"Duplicate status.declaredFeatures[1]", "Invalid status.declaredFeatures[3]", "Invalid status.declaredFeatures[3]")
}

func TestValidateOtherCoreStatusUpdates(t *testing.T) {
	lb := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
	lb.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{
		{IP: "10.0.0.1"},
		{IP: "x", IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)},
		{Hostname: "h", IPMode: ptr.To(corev1.LoadBalancerIPModeProxy)},
		{IP: "10.0.0.2", IPMode: ptr.To(corev1.LoadBalancerIPMode("X"))},
		{Hostname: "10.0.0.3"},
		{Hostname: "ok.example.com"},
	}
	apitesting.ExpectFieldErrors(t, ValidateServiceStatusUpdate(lb, &corev1.Service{}),
		"Required status.loadBalancer.ingress[0].ipMode", "Invalid status.loadBalancer.ingress[1].ip",
		"Forbidden status.loadBalancer.ingress[2].ipMode", "NotSupported status.loadBalancer.ingress[3].ipMode",
		"Invalid status.loadBalancer.ingress[4].hostname")
	cip := lb.DeepCopy()
	cip.Spec.Type = corev1.ServiceTypeClusterIP
	apitesting.ExpectFieldErrors(t, ValidateServiceStatusUpdate(cip, &corev1.Service{}), "Forbidden status.loadBalancer.ingress")

	rc := &corev1.ReplicationController{Status: corev1.ReplicationControllerStatus{Replicas: 1, FullyLabeledReplicas: 2, ReadyReplicas: -1, ObservedGeneration: -1}}
	apitesting.ExpectFieldErrors(t, ValidateReplicationControllerStatusUpdate(rc, rc),
		"Invalid status.readyReplicas", "Invalid status.observedGeneration", "Invalid status.fullyLabeledReplicas",
		"Invalid status.availableReplicas") // 0 > readyReplicas -1

	ns := &corev1.Namespace{Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}}
	apitesting.ExpectFieldErrors(t, ValidateNamespaceStatusUpdate(ns, ns))
	ns.Status.Phase = ""
	apitesting.ExpectFieldErrors(t, ValidateNamespaceStatusUpdate(ns, ns), "Invalid status.Phase")
	ns.DeletionTimestamp = ptr.To(metav1.Now())
	ns.Status.Phase = corev1.NamespaceActive
	apitesting.ExpectErrorDetail(t, ValidateNamespaceStatusUpdate(ns, ns), "may only be 'Terminating' if `deletionTimestamp` is not empty")

	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "1"}, Status: corev1.ResourceQuotaStatus{
		Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("1.5")},
		Used: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("-1")}}}
	apitesting.ExpectFieldErrors(t, ValidateResourceQuotaStatusUpdate(q, q), "Invalid status.hard[pods]", "Invalid status.used[cpu]")
	q.ResourceVersion = ""
	q.Status = corev1.ResourceQuotaStatus{}
	apitesting.ExpectFieldErrors(t, ValidateResourceQuotaStatusUpdate(q, q), "Required resourceVersion")

	pv := &corev1.PersistentVolume{}
	apitesting.ExpectFieldErrors(t, ValidatePersistentVolumeStatusUpdate(pv, pv), "Required resourceVersion")

	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "1"}, Status: corev1.PersistentVolumeClaimStatus{
		Capacity:                  corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("-1Gi")},
		AllocatedResources:        corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi"), "example.com/x": resource.MustParse("-1")},
		AllocatedResourceStatuses: map[corev1.ResourceName]corev1.ClaimResourceStatus{corev1.ResourceStorage: "Bogus", corev1.ResourceCPU: corev1.PersistentVolumeClaimNodeResizePending},
		HealthStatus:              &corev1.VolumeHealthStatus{HealthConditions: []corev1.VolumeHealthCondition{{Reason: "not a reason"}}},
	}}
	apitesting.ExpectFieldErrors(t, ValidatePersistentVolumeClaimStatusUpdate(pvc, pvc),
		"Required Spec.accessModes", "Invalid status.capacity[storage]", "Invalid status.allocatedResources[example.com/x]",
		"NotSupported status.allocatedResourceStatuses", "NotSupported status.allocatedResourceStatuses",
		"Invalid status.healthStatus.healthConditions[0].reason")
}
