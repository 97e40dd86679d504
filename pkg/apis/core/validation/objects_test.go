package validation

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

func TestValidateConfigMap(t *testing.T) {
	cases := []struct {
		name string
		cm   *corev1.ConfigMap
		want []string
	}{
		{"valid", &corev1.ConfigMap{Data: map[string]string{"a.conf": "x", "B_2": "y"}, BinaryData: map[string][]byte{"bin": {1}}}, nil},
		{"bad keys", &corev1.ConfigMap{Data: map[string]string{"a/b": "x", "dup": "y"}, BinaryData: map[string][]byte{"dup": {1}, "..": nil}},
			[]string{"Invalid data[a/b]", "Invalid data[dup]", "Invalid binaryData[..]"}},
		{"too large", &corev1.ConfigMap{Data: map[string]string{"a": strings.Repeat("x", maxSecretSize+1)}}, []string{"TooLong []"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { apitesting.ExpectFieldErrors(t, ValidateConfigMap(tc.cm), tc.want...) })
	}

	immutable := &corev1.ConfigMap{Immutable: ptr.To(true), Data: map[string]string{"a": "b"}}
	changed := immutable.DeepCopy()
	changed.Data["a"] = "c"
	changed.Immutable = nil
	apitesting.ExpectFieldErrors(t, ValidateConfigMapUpdate(changed, immutable), "Forbidden data", "Forbidden immutable")
	apitesting.ExpectFieldErrors(t, ValidateConfigMapUpdate(immutable.DeepCopy(), immutable))
}

func TestValidateSecret(t *testing.T) {
	secret := func(typ corev1.SecretType, data map[string][]byte) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: meta("s"), Type: typ, Data: data}
	}
	cases := []struct {
		name string
		s    *corev1.Secret
		want []string
	}{
		{"opaque", secret(corev1.SecretTypeOpaque, map[string][]byte{"a": []byte("b")}), nil},
		{"bad key", secret(corev1.SecretTypeOpaque, map[string][]byte{"a b": nil}), []string{"Invalid data[a b]"}},
		{"bad string data key", &corev1.Secret{Type: corev1.SecretTypeOpaque, StringData: map[string]string{"a/b": "x"}}, []string{"Invalid data[a/b]"}},
		{"too large", secret(corev1.SecretTypeOpaque, map[string][]byte{"a": make([]byte, maxSecretSize+1)}), []string{"TooLong data"}},
		{"tls", secret(corev1.SecretTypeTLS, nil), []string{"Required data[tls.crt]", "Required data[tls.key]"}},
		{"tls via stringData", &corev1.Secret{Type: corev1.SecretTypeTLS, StringData: map[string]string{"tls.crt": "c", "tls.key": "k"}}, nil},
		{"dockerconfigjson missing", secret(corev1.SecretTypeDockerConfigJson, nil), []string{"Required data[.dockerconfigjson]"}},
		{"dockerconfigjson bad json", secret(corev1.SecretTypeDockerConfigJson, map[string][]byte{".dockerconfigjson": []byte("{")}),
			[]string{"Invalid data[.dockerconfigjson]"}},
		{"dockercfg", secret(corev1.SecretTypeDockercfg, map[string][]byte{".dockercfg": []byte("{}")}), nil},
		{"basic auth", secret(corev1.SecretTypeBasicAuth, nil), []string{"Required data[username]", "Required data[password]"}},
		{"basic auth user only", secret(corev1.SecretTypeBasicAuth, map[string][]byte{"username": nil}), nil},
		{"ssh auth", secret(corev1.SecretTypeSSHAuth, nil), []string{"Required data[ssh-privatekey]"}},
		{"service account token", secret(corev1.SecretTypeServiceAccountToken, nil),
			[]string{"Required metadata.annotations[kubernetes.io/service-account.name]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { apitesting.ExpectFieldErrors(t, ValidateSecret(tc.s), tc.want...) })
	}

	old := secret(corev1.SecretTypeOpaque, map[string][]byte{"a": []byte("b")})
	old.Immutable = ptr.To(true)
	upd := old.DeepCopy()
	upd.Type = "example.com/other"
	upd.Data["a"] = []byte("c")
	errs := ValidateSecretUpdate(upd, old)
	apitesting.ExpectFieldErrors(t, errs, "Invalid type", "Forbidden data")
	apitesting.ExpectErrorDetail(t, errs, "field is immutable")
	apitesting.ExpectFieldErrors(t, ValidateSecretUpdate(old.DeepCopy(), old))
}

func TestValidateNode(t *testing.T) {
	node := &corev1.Node{Spec: corev1.NodeSpec{Taints: []corev1.Taint{
		{Key: "k", Value: "v", Effect: corev1.TaintEffectNoSchedule},
		{Key: "k", Effect: corev1.TaintEffectNoExecute},
	}, PodCIDRs: []string{"10.244.0.0/24"}}}
	apitesting.ExpectFieldErrors(t, ValidateNode(node))

	bad := node.DeepCopy()
	bad.Spec.Taints = append(bad.Spec.Taints,
		corev1.Taint{Key: "k", Effect: corev1.TaintEffectNoSchedule},
		corev1.Taint{Key: "bad key", Value: "bad value", Effect: "Never"},
		corev1.Taint{Key: "e"})
	bad.Spec.PodCIDRs = []string{"10.244.0.0/33"}
	bad.Status.Capacity = corev1.ResourceList{corev1.ResourcePods: q("1.5")}
	apitesting.ExpectFieldErrors(t, ValidateNode(bad),
		"Duplicate metadata.taints[2]",
		"Invalid metadata.taints[3].key",
		"Invalid metadata.taints[3].value",
		"NotSupported metadata.taints[3].effect",
		"Required metadata.taints[4].effect",
		"Invalid spec.podCIDRs[0]",
		"Invalid status.capacity.pods",
	)

	upd := node.DeepCopy()
	upd.Spec.PodCIDRs = []string{"10.245.0.0/24"}
	upd.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}, {Type: corev1.NodeInternalIP, Address: "10.0.0.1"}}
	apitesting.ExpectFieldErrors(t, ValidateNodeUpdate(upd, node), "Forbidden spec.podCIDRs", "Duplicate status.addresses[1]")
}

func TestValidateNamespace(t *testing.T) {
	ns := &corev1.Namespace{Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes, "example.com/x"}}}
	apitesting.ExpectFieldErrors(t, ValidateNamespace(ns))
	ns.Spec.Finalizers = append(ns.Spec.Finalizers, "custom")
	apitesting.ExpectFieldErrors(t, ValidateNamespace(ns), "Invalid spec.finalizers")
}

func TestValidateEndpoints(t *testing.T) {
	valid := &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "10.1.2.3", Hostname: "a"}},
		Ports:     []corev1.EndpointPort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}, {Name: "https", Port: 443, Protocol: corev1.ProtocolTCP}},
	}}}
	apitesting.ExpectFieldErrors(t, ValidateEndpoints(valid))
	bad := &corev1.Endpoints{Subsets: []corev1.EndpointSubset{
		{},
		{
			Addresses:         []corev1.EndpointAddress{{IP: "not-an-ip"}, {IP: "127.0.0.1"}},
			NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.0.0.1", Hostname: "Bad_Host"}},
			Ports:             []corev1.EndpointPort{{Port: 0, Protocol: corev1.ProtocolTCP}, {Name: "b", Port: 80, Protocol: "HTTP"}},
		},
	}}
	apitesting.ExpectFieldErrors(t, ValidateEndpoints(bad),
		"Required subsets[0]",
		"Invalid subsets[1].addresses[0].ip",
		"Invalid subsets[1].addresses[0].ip",
		"Invalid subsets[1].addresses[1].ip",
		"Invalid subsets[1].notReadyAddresses[0].hostname",
		"Required subsets[1].ports[0].name",
		"Invalid subsets[1].ports[0].port",
		"NotSupported subsets[1].ports[1].protocol",
	)
	// Unchanged (already stored) subsets are not re-validated.
	apitesting.ExpectFieldErrors(t, ValidateEndpointsUpdate(bad, bad))
}

func TestValidateEvent(t *testing.T) {
	ev := &corev1.Event{ObjectMeta: meta("e"), InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "p"}}
	apitesting.ExpectFieldErrors(t, ValidateEvent(ev))
	other := ev.DeepCopy()
	other.InvolvedObject.Namespace = "other"
	apitesting.ExpectFieldErrors(t, ValidateEvent(other), "Invalid involvedObject.namespace")
	noNS := ev.DeepCopy()
	noNS.Namespace = "kube-system"
	noNS.InvolvedObject.Namespace = ""
	apitesting.ExpectFieldErrors(t, ValidateEvent(noNS), "Invalid involvedObject.namespace")

	// events.k8s.io/v1
	now := metav1.NewMicroTime(time.Now())
	v1 := &corev1.Event{ObjectMeta: meta("e"), InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "p"},
		EventTime: now, Type: corev1.EventTypeNormal, ReportingController: "example.com/ctl", ReportingInstance: "i", Action: "Create", Reason: "Created"}
	apitesting.ExpectFieldErrors(t, ValidateEventV1(v1))
	apitesting.ExpectFieldErrors(t, ValidateEventV1(ev),
		"Required eventTime", "Invalid type")
	badV1 := v1.DeepCopy()
	badV1.ReportingController, badV1.Action, badV1.Count = "", "", 3
	badV1.Series = &corev1.EventSeries{Count: 1}
	apitesting.ExpectFieldErrors(t, ValidateEventV1(badV1),
		"Required reportingController", "Invalid reportingController", "Invalid reportingController", "Required action", "Invalid count",
		"Invalid series.count", "Required series.lastObservedTime")
	legacyField := v1.DeepCopy()
	legacyField.ReportingController = ""
	apitesting.ExpectFieldErrors(t, ValidateEvent(legacyField), "Required reportingComponent", "Invalid reportingComponent", "Invalid reportingComponent")

	upd := v1.DeepCopy()
	upd.Reason = "Other"
	upd.Series = &corev1.EventSeries{Count: 2, LastObservedTime: now}
	apitesting.ExpectFieldErrors(t, ValidateEventV1Update(upd, v1), "Invalid reason")
}

func TestValidateResourceQuota(t *testing.T) {
	valid := &corev1.ResourceQuota{Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{
		corev1.ResourcePods: q("10"), corev1.ResourceRequestsCPU: q("2"), "count/deployments.apps": q("3"), "requests.example.com/gpu": q("1"),
	}}}
	apitesting.ExpectFieldErrors(t, ValidateResourceQuota(valid))
	bad := &corev1.ResourceQuota{Spec: corev1.ResourceQuotaSpec{
		Hard:   corev1.ResourceList{"foo": q("1"), corev1.ResourcePods: q("1.5"), corev1.ResourceMemory: q("-1")},
		Scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating},
	}}
	apitesting.ExpectFieldErrors(t, ValidateResourceQuota(bad),
		"Invalid spec.hard[foo]", "Invalid spec.hard[foo]",
		"Invalid spec.hard[pods]", "Invalid spec.hard[memory]",
		"Invalid spec.scopes")
	apitesting.ExpectErrorDetail(t, ValidateResourceQuota(bad), "conflicting scopes")
	wrongScope := valid.DeepCopy()
	wrongScope.Spec.Scopes = []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort, "Sometimes"}
	apitesting.ExpectFieldErrors(t, ValidateResourceQuota(wrongScope), "Invalid spec.scopes", "Invalid spec.scopes") // unsupported scope; requests.cpu under BestEffort
	scoped := valid.DeepCopy()
	scoped.Spec.Hard = corev1.ResourceList{corev1.ResourcePods: q("1")}
	scoped.Spec.Scopes = []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort}
	apitesting.ExpectFieldErrors(t, ValidateResourceQuota(scoped))
	apitesting.ExpectFieldErrors(t, ValidateResourceQuotaUpdate(scoped, valid), "Invalid spec.scopes")
}

func TestValidateLimitRange(t *testing.T) {
	valid := &corev1.LimitRange{Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
		Type:           corev1.LimitTypeContainer,
		Min:            corev1.ResourceList{corev1.ResourceCPU: q("100m")},
		Max:            corev1.ResourceList{corev1.ResourceCPU: q("2")},
		Default:        corev1.ResourceList{corev1.ResourceCPU: q("1")},
		DefaultRequest: corev1.ResourceList{corev1.ResourceCPU: q("500m")},
	}, {
		Type: corev1.LimitTypePersistentVolumeClaim, Max: corev1.ResourceList{corev1.ResourceStorage: q("10Gi")},
	}}}}
	apitesting.ExpectFieldErrors(t, ValidateLimitRange(valid))
	bad := &corev1.LimitRange{Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
		Type:    corev1.LimitTypeContainer,
		Min:     corev1.ResourceList{corev1.ResourceCPU: q("2")},
		Max:     corev1.ResourceList{corev1.ResourceCPU: q("1")},
		Default: corev1.ResourceList{corev1.ResourceMemory: q("2Gi")},
	}, {
		Type: corev1.LimitTypeContainer, Max: corev1.ResourceList{corev1.ResourceMemory: q("1Gi")}, Default: corev1.ResourceList{corev1.ResourceMemory: q("2Gi")},
	}, {
		Type: corev1.LimitTypePod, Default: corev1.ResourceList{corev1.ResourceCPU: q("1")},
	}, {
		Type: "Deployment",
	}, {
		Type: corev1.LimitTypePersistentVolumeClaim,
	}}}}
	apitesting.ExpectFieldErrors(t, ValidateLimitRange(bad),
		"Invalid spec.limits[0].min[cpu]",
		"Duplicate spec.limits[1].type",
		"Invalid spec.limits[1].default[memory]",
		"Forbidden spec.limits[2].default",
		"Invalid spec.limits[3].type",
		"Required spec.limits[4].limits")
}

func TestValidateReplicationController(t *testing.T) {
	rc := func(mutate func(*corev1.ReplicationControllerSpec)) *corev1.ReplicationController {
		r := &corev1.ReplicationController{ObjectMeta: meta("rc"), Spec: corev1.ReplicationControllerSpec{
			Replicas: ptr.To[int32](1), Selector: map[string]string{"app": "x"},
			Template: &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}}, Spec: podSpec()},
		}}
		if mutate != nil {
			mutate(&r.Spec)
		}
		return r
	}
	apitesting.ExpectFieldErrors(t, ValidateReplicationController(rc(nil)))
	errs := ValidateReplicationController(rc(func(s *corev1.ReplicationControllerSpec) {
		s.Replicas = ptr.To[int32](-1)
		s.Template.Labels = map[string]string{"app": "y"}
		s.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	}))
	apitesting.ExpectFieldErrors(t, errs, "Invalid spec.replicas", "Invalid spec.template.metadata.labels", "NotSupported spec.template.spec.restartPolicy")
	apitesting.ExpectErrorDetail(t, errs, "`selector` does not match template `labels`")
	apitesting.ExpectFieldErrors(t, ValidateReplicationController(rc(func(s *corev1.ReplicationControllerSpec) { s.Selector = nil; s.Template = nil })),
		"Required spec.selector", "Required spec.template")
	// The selector of a replication controller is mutable (no update rules).
	apitesting.ExpectFieldErrors(t, ValidateReplicationController(rc(func(s *corev1.ReplicationControllerSpec) {
		s.Selector = map[string]string{"app": "x", "v": "2"}
		s.Template.Labels["v"] = "2"
	})))
}

func TestValidatePersistentVolume(t *testing.T) {
	pv := func(mutate func(*corev1.PersistentVolumeSpec)) *corev1.PersistentVolume {
		p := &corev1.PersistentVolume{Spec: corev1.PersistentVolumeSpec{
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: q("1Gi")},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data"}},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			VolumeMode:                    ptr.To(corev1.PersistentVolumeFilesystem),
		}}
		if mutate != nil {
			mutate(&p.Spec)
		}
		return p
	}
	apitesting.ExpectFieldErrors(t, ValidatePersistentVolume(pv(nil)))
	apitesting.ExpectFieldErrors(t, ValidatePersistentVolume(pv(func(s *corev1.PersistentVolumeSpec) {
		s.AccessModes = nil
		s.Capacity = nil
		s.PersistentVolumeSource = corev1.PersistentVolumeSource{}
		s.PersistentVolumeReclaimPolicy = "Keep"
	})), "Required spec.accessModes", "Required spec.capacity", "NotSupported spec.capacity", "Required spec",
		"NotSupported spec.persistentVolumeReclaimPolicy")
	apitesting.ExpectFieldErrors(t, ValidatePersistentVolume(pv(func(s *corev1.PersistentVolumeSpec) {
		s.AccessModes = append(s.AccessModes, corev1.ReadWriteOncePod, "ReadSometimes")
		s.Capacity[corev1.ResourceStorage] = q("0")
		s.NFS = &corev1.NFSVolumeSource{Server: "s", Path: "/p"}
	})), "Forbidden spec.accessModes", "NotSupported spec.accessModes", "Invalid spec.capacity[storage]", "Forbidden spec.nfs")
	upd := pv(func(s *corev1.PersistentVolumeSpec) { s.HostPath.Path = "/other" })
	errs := ValidatePersistentVolumeUpdate(upd, pv(nil))
	apitesting.ExpectFieldErrors(t, errs, "Forbidden spec.persistentvolumesource")
	apitesting.ExpectErrorDetail(t, errs, "spec.persistentvolumesource is immutable after creation")
}

func TestValidatePersistentVolumeClaim(t *testing.T) {
	pvc := func(mutate func(*corev1.PersistentVolumeClaim)) *corev1.PersistentVolumeClaim {
		p := &corev1.PersistentVolumeClaim{ObjectMeta: meta("c"), Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: q("1Gi")}},
			VolumeMode:  ptr.To(corev1.PersistentVolumeFilesystem),
		}}
		if mutate != nil {
			mutate(p)
		}
		return p
	}
	apitesting.ExpectFieldErrors(t, ValidatePersistentVolumeClaim(pvc(nil)))
	apitesting.ExpectFieldErrors(t, ValidatePersistentVolumeClaim(pvc(func(p *corev1.PersistentVolumeClaim) {
		p.Spec.AccessModes = nil
		p.Spec.Resources.Requests = nil
		p.Spec.StorageClassName = ptr.To("Bad_Class")
		p.Spec.VolumeMode = ptr.To[corev1.PersistentVolumeMode]("Magic")
	})), "Required spec.accessModes", "Required spec.resources[storage]", "Invalid spec.storageClassName", "NotSupported spec.volumeMode")
	apitesting.ExpectFieldErrors(t, ValidatePersistentVolumeClaim(pvc(func(p *corev1.PersistentVolumeClaim) {
		p.Spec.Resources.Requests[corev1.ResourceStorage] = q("0")
		p.Spec.DataSource = &corev1.TypedLocalObjectReference{Kind: "Snapshot", Name: "s"}
	})), "Invalid spec.resources[storage]", "Invalid spec.dataSource")

	// Binding and setting a class on a class-less claim are allowed.
	apitesting.ExpectFieldErrors(t, ValidatePersistentVolumeClaimUpdate(pvc(func(p *corev1.PersistentVolumeClaim) {
		p.Spec.VolumeName = "pv-1"
		p.Spec.StorageClassName = ptr.To("standard")
	}), pvc(nil)))
	errs := ValidatePersistentVolumeClaimUpdate(pvc(func(p *corev1.PersistentVolumeClaim) {
		p.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
	}), pvc(nil))
	apitesting.ExpectFieldErrors(t, errs, "Forbidden spec")
	apitesting.ExpectErrorDetail(t, errs, "spec is immutable after creation")
	// Bound claims may grow, not shrink below their capacity.
	bound := pvc(func(p *corev1.PersistentVolumeClaim) {
		p.Status.Phase = corev1.ClaimBound
		p.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: q("1Gi")}
	})
	apitesting.ExpectFieldErrors(t, ValidatePersistentVolumeClaimUpdate(pvc(func(p *corev1.PersistentVolumeClaim) {
		p.Status = bound.Status
		p.Spec.Resources.Requests[corev1.ResourceStorage] = q("2Gi")
	}), bound))
	apitesting.ExpectFieldErrors(t, ValidatePersistentVolumeClaimUpdate(pvc(func(p *corev1.PersistentVolumeClaim) {
		p.Status = bound.Status
		p.Spec.Resources.Requests[corev1.ResourceStorage] = q("512Mi")
	}), bound), "Forbidden spec.resources.requests.storage")
}

func TestHooks(t *testing.T) {
	create := ForCreate(ValidateConfigMap)
	if errs := create(&corev1.Secret{}); len(errs) != 1 || errs[0].Type != "InternalError" {
		t.Errorf("wrong type: %v", errs)
	}
	apitesting.ExpectFieldErrors(t, create(&corev1.ConfigMap{Data: map[string]string{"a b": ""}}), "Invalid data[a b]")
	update := ForUpdate(ValidateConfigMapUpdate)
	apitesting.ExpectFieldErrors(t, update(&corev1.ConfigMap{}, &corev1.ConfigMap{}))
	if errs := update(&corev1.ConfigMap{}, &corev1.Secret{}); len(errs) != 1 {
		t.Errorf("wrong type: %v", errs)
	}
}
