package core

// Defaulting of the core/v1 kinds, as upstream Kubernetes v1.37 does it in
// pkg/apis/core/v1 (defaults.go and the generated zz_generated.defaults.go,
// which walks every nested struct that has a defaulter). Feature-gated
// branches follow the v1.37 gate defaults:
//   - ImageVolume (GA): image volumes get a pull policy.
//   - PodLevelResourcesFixDefaulting (beta, on): pod-level resources are
//     defaulted by the pod strategy's PrepareForCreate, not here.
//   - H2CContainerProbe (alpha, off): no httpGet.protocol default.
//   - PodLogsQuerySplitStreams (alpha, off): no PodLogOptions.stream default.
//
// Defaults that upstream applies in the REST layer or in admission (Service
// clusterIP/ipFamilies/ipFamilyPolicy, nodePorts, the namespace finalizer,
// serviceAccountName, priority, ...) do not belong here.

import (
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// AddDefaulters registers set as the defaulter of obj (whose Go type is *T)
// and a defaulter of list (*L) that applies set to every item.
func AddDefaulters[T any, L any](scheme *runtime.Scheme, obj, list runtime.Object, items func(*L) []T, set func(*T)) {
	scheme.AddTypeDefaultingFunc(obj, func(o interface{}) { set(o.(*T)) })
	scheme.AddTypeDefaultingFunc(list, func(o interface{}) {
		l := items(o.(*L))
		for i := range l {
			set(&l[i])
		}
	})
}

// RegisterDefaults adds the core/v1 defaulters to scheme. Event,
// ServiceAccount and the other core kinds without a defaulter upstream get
// none.
func RegisterDefaults(scheme *runtime.Scheme) {
	AddDefaulters(scheme, &corev1.Pod{}, &corev1.PodList{},
		func(l *corev1.PodList) []corev1.Pod { return l.Items }, SetObjectDefaultsPod)
	AddDefaulters(scheme, &corev1.PodTemplate{}, &corev1.PodTemplateList{},
		func(l *corev1.PodTemplateList) []corev1.PodTemplate { return l.Items },
		func(t *corev1.PodTemplate) { SetPodTemplateSpecDefaults(&t.Template) })
	AddDefaulters(scheme, &corev1.ReplicationController{}, &corev1.ReplicationControllerList{},
		func(l *corev1.ReplicationControllerList) []corev1.ReplicationController { return l.Items },
		setObjectDefaultsReplicationController)
	AddDefaulters(scheme, &corev1.Service{}, &corev1.ServiceList{},
		func(l *corev1.ServiceList) []corev1.Service { return l.Items }, setDefaultsService)
	AddDefaulters(scheme, &corev1.Secret{}, &corev1.SecretList{},
		func(l *corev1.SecretList) []corev1.Secret { return l.Items }, setDefaultsSecret)
	AddDefaulters(scheme, &corev1.ConfigMap{}, &corev1.ConfigMapList{},
		func(l *corev1.ConfigMapList) []corev1.ConfigMap { return l.Items }, setDefaultsConfigMap)
	AddDefaulters(scheme, &corev1.Namespace{}, &corev1.NamespaceList{},
		func(l *corev1.NamespaceList) []corev1.Namespace { return l.Items }, setDefaultsNamespace)
	AddDefaulters(scheme, &corev1.Node{}, &corev1.NodeList{},
		func(l *corev1.NodeList) []corev1.Node { return l.Items }, setDefaultsNode)
	AddDefaulters(scheme, &corev1.PersistentVolume{}, &corev1.PersistentVolumeList{},
		func(l *corev1.PersistentVolumeList) []corev1.PersistentVolume { return l.Items }, setDefaultsPersistentVolume)
	AddDefaulters(scheme, &corev1.PersistentVolumeClaim{}, &corev1.PersistentVolumeClaimList{},
		func(l *corev1.PersistentVolumeClaimList) []corev1.PersistentVolumeClaim { return l.Items },
		SetPersistentVolumeClaimDefaults)
	AddDefaulters(scheme, &corev1.Endpoints{}, &corev1.EndpointsList{},
		func(l *corev1.EndpointsList) []corev1.Endpoints { return l.Items }, setDefaultsEndpoints)
	AddDefaulters(scheme, &corev1.LimitRange{}, &corev1.LimitRangeList{},
		func(l *corev1.LimitRangeList) []corev1.LimitRange { return l.Items }, setDefaultsLimitRange)
	AddDefaulters(scheme, &corev1.ResourceQuota{}, &corev1.ResourceQuotaList{},
		func(l *corev1.ResourceQuotaList) []corev1.ResourceQuota { return l.Items }, setDefaultsResourceQuota)
}

// --- Pods and pod templates -------------------------------------------------

// SetObjectDefaultsPod defaults a Pod: the Pod-only rules (requests from
// limits, enableServiceLinks, host ports under hostNetwork, a negative grace
// period raised to 1), then everything a pod template gets, then the status.
func SetObjectDefaultsPod(pod *corev1.Pod) {
	setPodOnlyDefaults(pod)
	SetPodSpecDefaults(&pod.Spec)

	st := &pod.Status
	setPodStatusDefaults(st)
	for _, statuses := range [][]corev1.ContainerStatus{st.InitContainerStatuses, st.ContainerStatuses, st.EphemeralContainerStatuses} {
		for i := range statuses {
			roundResourceList(statuses[i].AllocatedResources)
			if r := statuses[i].Resources; r != nil {
				roundResourceList(r.Limits)
				roundResourceList(r.Requests)
			}
		}
	}
	roundResourceList(st.AllocatedResources)
	if st.Resources != nil {
		roundResourceList(st.Resources.Limits)
		roundResourceList(st.Resources.Requests)
	}
}

// SetPodTemplateSpecDefaults defaults the pod template of a PodTemplate,
// ReplicationController, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job
// or CronJob. Templates do not get the Pod-only defaults.
func SetPodTemplateSpecDefaults(t *corev1.PodTemplateSpec) {
	SetPodSpecDefaults(&t.Spec)
}

// SetPodSpecDefaults is upstream's SetDefaults_PodSpec plus the generated walk
// over volumes, containers, overhead and pod-level resources.
func SetPodSpecDefaults(spec *corev1.PodSpec) {
	// serviceAccount is the deprecated alias of serviceAccountName; the two
	// are kept in sync, serviceAccountName winning.
	if spec.ServiceAccountName == "" {
		spec.ServiceAccountName = spec.DeprecatedServiceAccount
	}
	spec.DeprecatedServiceAccount = spec.ServiceAccountName
	if spec.DNSPolicy == "" {
		spec.DNSPolicy = corev1.DNSClusterFirst
	}
	if spec.RestartPolicy == "" {
		spec.RestartPolicy = corev1.RestartPolicyAlways
	}
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	if spec.TerminationGracePeriodSeconds == nil {
		spec.TerminationGracePeriodSeconds = ptr.To[int64](corev1.DefaultTerminationGracePeriodSeconds)
	}
	if spec.SchedulerName == "" {
		spec.SchedulerName = corev1.DefaultSchedulerName
	}

	for i := range spec.Volumes {
		setVolumeDefaults(&spec.Volumes[i])
	}
	for i := range spec.InitContainers {
		setContainerDefaults(&spec.InitContainers[i])
	}
	for i := range spec.Containers {
		setContainerDefaults(&spec.Containers[i])
	}
	for i := range spec.EphemeralContainers {
		// EphemeralContainerCommon has exactly Container's fields.
		setContainerDefaults((*corev1.Container)(&spec.EphemeralContainers[i].EphemeralContainerCommon))
	}
	roundResourceList(spec.Overhead)
	if spec.Resources != nil {
		roundResourceList(spec.Resources.Limits)
		roundResourceList(spec.Resources.Requests)
	}
}

// setPodOnlyDefaults is upstream's SetDefaults_Pod with the v1.37 gates.
func setPodOnlyDefaults(pod *corev1.Pod) {
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil && *g < 0 {
		pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](1)
	}
	// Requests default to limits, on Pods only (not on templates).
	for _, containers := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range containers {
			r := &containers[i].Resources
			if r.Limits == nil {
				continue
			}
			if r.Requests == nil {
				r.Requests = corev1.ResourceList{}
			}
			for name, limit := range r.Limits {
				if _, ok := r.Requests[name]; !ok {
					r.Requests[name] = limit.DeepCopy()
				}
			}
		}
	}
	// Pod-level resources: with PodLevelResourcesFixDefaulting on (the v1.37
	// default) upstream defaults them in the pod strategy, not here.
	if pod.Spec.EnableServiceLinks == nil {
		pod.Spec.EnableServiceLinks = ptr.To(corev1.DefaultEnableServiceLinks)
	}
	if pod.Spec.HostNetwork {
		for _, containers := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
			for i := range containers {
				for j := range containers[i].Ports {
					if p := &containers[i].Ports[j]; p.HostPort == 0 {
						p.HostPort = p.ContainerPort
					}
				}
			}
		}
	}
}

// setPodStatusDefaults keeps podIP and podIPs in sync, podIP authoritative.
func setPodStatusDefaults(st *corev1.PodStatus) {
	hasIP, hasIPs := st.PodIP != "", len(st.PodIPs) > 0
	switch {
	case hasIP && !hasIPs:
		st.PodIPs = []corev1.PodIP{{IP: st.PodIP}}
	case !hasIP && hasIPs:
		st.PodIP = st.PodIPs[0].IP
	case hasIP && hasIPs && st.PodIPs[0].IP != st.PodIP:
		st.PodIPs = []corev1.PodIP{{IP: st.PodIP}}
	}
}

func setContainerDefaults(c *corev1.Container) {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = defaultPullPolicy(c.Image)
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = corev1.TerminationMessagePathDefault
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
	for i := range c.Ports {
		if c.Ports[i].Protocol == "" {
			c.Ports[i].Protocol = corev1.ProtocolTCP
		}
	}
	for i := range c.Env {
		if from := c.Env[i].ValueFrom; from != nil {
			if from.FieldRef != nil {
				setObjectFieldSelectorDefaults(from.FieldRef)
			}
			if from.FileKeyRef != nil && from.FileKeyRef.Optional == nil {
				from.FileKeyRef.Optional = ptr.To(false)
			}
		}
	}
	roundResourceList(c.Resources.Limits)
	roundResourceList(c.Resources.Requests)
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
		if p != nil {
			setProbeDefaults(p)
		}
	}
	if l := c.Lifecycle; l != nil {
		for _, h := range []*corev1.LifecycleHandler{l.PostStart, l.PreStop} {
			if h != nil && h.HTTPGet != nil {
				setHTTPGetDefaults(h.HTTPGet)
			}
		}
	}
}

func setProbeDefaults(p *corev1.Probe) {
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = 1
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = 10
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = 3
	}
	if p.HTTPGet != nil {
		setHTTPGetDefaults(p.HTTPGet)
	}
	if p.GRPC != nil && p.GRPC.Service == nil {
		p.GRPC.Service = ptr.To("")
	}
}

func setHTTPGetDefaults(a *corev1.HTTPGetAction) {
	if a.Path == "" {
		a.Path = "/"
	}
	if a.Scheme == "" {
		a.Scheme = corev1.URISchemeHTTP
	}
}

func setObjectFieldSelectorDefaults(s *corev1.ObjectFieldSelector) {
	if s.APIVersion == "" {
		s.APIVersion = "v1"
	}
}

func setVolumeDefaults(v *corev1.Volume) {
	// A volume with no source is an emptyDir.
	if ptr.AllPtrFieldsNil(&v.VolumeSource) {
		v.VolumeSource = corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	}
	src := &v.VolumeSource
	if src.Image != nil && src.Image.PullPolicy == "" {
		src.Image.PullPolicy = defaultPullPolicy(src.Image.Reference)
	}
	if src.HostPath != nil {
		setHostPathDefaults(src.HostPath)
	}
	if src.Secret != nil && src.Secret.DefaultMode == nil {
		src.Secret.DefaultMode = ptr.To(corev1.SecretVolumeSourceDefaultMode)
	}
	if src.ISCSI != nil {
		setISCSIDefaults(&src.ISCSI.ISCSIInterface)
	}
	if src.RBD != nil {
		setRBDDefaults(&src.RBD.RBDPool, &src.RBD.RadosUser, &src.RBD.Keyring)
	}
	if src.DownwardAPI != nil {
		if src.DownwardAPI.DefaultMode == nil {
			src.DownwardAPI.DefaultMode = ptr.To(corev1.DownwardAPIVolumeSourceDefaultMode)
		}
		setDownwardAPIFileDefaults(src.DownwardAPI.Items)
	}
	if src.ConfigMap != nil && src.ConfigMap.DefaultMode == nil {
		src.ConfigMap.DefaultMode = ptr.To(corev1.ConfigMapVolumeSourceDefaultMode)
	}
	if src.AzureDisk != nil {
		setAzureDiskDefaults(src.AzureDisk)
	}
	if p := src.Projected; p != nil {
		if p.DefaultMode == nil {
			p.DefaultMode = ptr.To(corev1.ProjectedVolumeSourceDefaultMode)
		}
		for i := range p.Sources {
			s := &p.Sources[i]
			if s.DownwardAPI != nil {
				setDownwardAPIFileDefaults(s.DownwardAPI.Items)
			}
			if s.ServiceAccountToken != nil && s.ServiceAccountToken.ExpirationSeconds == nil {
				s.ServiceAccountToken.ExpirationSeconds = ptr.To(int64(time.Hour.Seconds()))
			}
		}
	}
	if src.ScaleIO != nil {
		setScaleIODefaults(&src.ScaleIO.StorageMode, &src.ScaleIO.FSType)
	}
	if src.Ephemeral != nil && src.Ephemeral.VolumeClaimTemplate != nil {
		setPersistentVolumeClaimSpecDefaults(&src.Ephemeral.VolumeClaimTemplate.Spec)
	}
}

func setDownwardAPIFileDefaults(items []corev1.DownwardAPIVolumeFile) {
	for i := range items {
		if items[i].FieldRef != nil {
			setObjectFieldSelectorDefaults(items[i].FieldRef)
		}
	}
}

func setHostPathDefaults(h *corev1.HostPathVolumeSource) {
	if h.Type == nil {
		h.Type = ptr.To(corev1.HostPathUnset)
	}
}

func setISCSIDefaults(iface *string) {
	if *iface == "" {
		*iface = "default"
	}
}

func setRBDDefaults(pool, user, keyring *string) {
	if *pool == "" {
		*pool = "rbd"
	}
	if *user == "" {
		*user = "admin"
	}
	if *keyring == "" {
		*keyring = "/etc/ceph/keyring"
	}
}

func setAzureDiskDefaults(d *corev1.AzureDiskVolumeSource) {
	if d.CachingMode == nil {
		d.CachingMode = ptr.To(corev1.AzureDataDiskCachingReadWrite)
	}
	if d.FSType == nil {
		d.FSType = ptr.To("ext4")
	}
	if d.ReadOnly == nil {
		d.ReadOnly = ptr.To(false)
	}
	if d.Kind == nil {
		d.Kind = ptr.To(corev1.AzureSharedBlobDisk)
	}
}

func setScaleIODefaults(storageMode, fsType *string) {
	if *storageMode == "" {
		*storageMode = "ThinProvisioned"
	}
	if *fsType == "" {
		*fsType = "xfs"
	}
}

// roundResourceList rounds every quantity up to milli precision, as upstream's
// SetDefaults_ResourceList does for API compatibility.
func roundResourceList(l corev1.ResourceList) {
	for name, q := range l {
		q.RoundUp(resource.Milli)
		l[name] = q
	}
}

// --- Workload controllers ----------------------------------------------------

func setObjectDefaultsReplicationController(rc *corev1.ReplicationController) {
	if rc.Spec.Template != nil {
		if labels := rc.Spec.Template.Labels; labels != nil {
			if len(rc.Spec.Selector) == 0 {
				rc.Spec.Selector = labels
			}
			if len(rc.Labels) == 0 {
				rc.Labels = labels
			}
		}
	}
	if rc.Spec.Replicas == nil {
		rc.Spec.Replicas = ptr.To[int32](1)
	}
	if rc.Spec.Template != nil {
		SetPodTemplateSpecDefaults(rc.Spec.Template)
	}
}

// --- Services and endpoints --------------------------------------------------

func setDefaultsService(svc *corev1.Service) {
	spec := &svc.Spec
	if spec.SessionAffinity == "" {
		spec.SessionAffinity = corev1.ServiceAffinityNone
	}
	if spec.SessionAffinity == corev1.ServiceAffinityNone {
		spec.SessionAffinityConfig = nil
	}
	if spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		if c := spec.SessionAffinityConfig; c == nil || c.ClientIP == nil || c.ClientIP.TimeoutSeconds == nil {
			spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{
				ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To(corev1.DefaultClientIPServiceAffinitySeconds)},
			}
		}
	}
	if spec.Type == "" {
		spec.Type = corev1.ServiceTypeClusterIP
	}
	for i := range spec.Ports {
		p := &spec.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		if p.TargetPort == intstr.FromInt32(0) || p.TargetPort == intstr.FromString("") {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
	externallyAccessible := spec.Type == corev1.ServiceTypeLoadBalancer || spec.Type == corev1.ServiceTypeNodePort ||
		(spec.Type == corev1.ServiceTypeClusterIP && len(spec.ExternalIPs) > 0)
	if externallyAccessible && spec.ExternalTrafficPolicy == "" {
		spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	}
	if spec.InternalTrafficPolicy == nil {
		switch spec.Type {
		case corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeClusterIP:
			spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyCluster)
		}
	}
	if spec.Type == corev1.ServiceTypeLoadBalancer {
		if spec.AllocateLoadBalancerNodePorts == nil {
			spec.AllocateLoadBalancerNodePorts = ptr.To(true)
		}
		for i, ing := range svc.Status.LoadBalancer.Ingress {
			if ing.IP != "" && ing.IPMode == nil {
				svc.Status.LoadBalancer.Ingress[i].IPMode = ptr.To(corev1.LoadBalancerIPModeVIP)
			}
		}
	}
}

func setDefaultsEndpoints(ep *corev1.Endpoints) {
	for i := range ep.Subsets {
		for j := range ep.Subsets[i].Ports {
			if p := &ep.Subsets[i].Ports[j]; p.Protocol == "" {
				p.Protocol = corev1.ProtocolTCP
			}
		}
	}
}

// --- Configuration -----------------------------------------------------------

func setDefaultsSecret(s *corev1.Secret) {
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
	// Upstream merges the write-only stringData into data when converting
	// v1 to its internal type; skiff has no conversion, so decoding does it.
	if len(s.StringData) > 0 {
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
		s.StringData = nil
	}
}

func setDefaultsConfigMap(cm *corev1.ConfigMap) {
	// Invisible on the wire (data is omitempty) but kept for parity.
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
}

// --- Cluster-scoped objects and storage --------------------------------------

func setDefaultsNamespace(ns *corev1.Namespace) {
	// Nameless (generateName) namespaces are labelled by the strategy later.
	if ns.Name != "" {
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[corev1.LabelMetadataName] = ns.Name
	}
	if ns.Status.Phase == "" {
		ns.Status.Phase = corev1.NamespaceActive
	}
}

func setDefaultsNode(n *corev1.Node) {
	// Upstream's v1 conversion keeps podCIDR and podCIDRs in step.
	if n.Spec.PodCIDR != "" && len(n.Spec.PodCIDRs) == 0 {
		n.Spec.PodCIDRs = []string{n.Spec.PodCIDR}
	}
	if n.Spec.PodCIDR == "" && len(n.Spec.PodCIDRs) > 0 {
		n.Spec.PodCIDR = n.Spec.PodCIDRs[0]
	}
	if n.Status.Allocatable == nil && n.Status.Capacity != nil {
		n.Status.Allocatable = make(corev1.ResourceList, len(n.Status.Capacity))
		for name, q := range n.Status.Capacity {
			n.Status.Allocatable[name] = q.DeepCopy()
		}
	}
	roundResourceList(n.Status.Capacity)
	roundResourceList(n.Status.Allocatable)
}

func setDefaultsPersistentVolume(pv *corev1.PersistentVolume) {
	if pv.Status.Phase == "" {
		pv.Status.Phase = corev1.VolumePending
	}
	if pv.Spec.PersistentVolumeReclaimPolicy == "" {
		pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	}
	if pv.Spec.VolumeMode == nil {
		pv.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeFilesystem)
	}
	roundResourceList(pv.Spec.Capacity)
	src := &pv.Spec.PersistentVolumeSource
	if src.HostPath != nil {
		setHostPathDefaults(src.HostPath)
	}
	if src.RBD != nil {
		setRBDDefaults(&src.RBD.RBDPool, &src.RBD.RadosUser, &src.RBD.Keyring)
	}
	if src.ISCSI != nil {
		setISCSIDefaults(&src.ISCSI.ISCSIInterface)
	}
	if src.AzureDisk != nil {
		setAzureDiskDefaults(src.AzureDisk)
	}
	if src.ScaleIO != nil {
		setScaleIODefaults(&src.ScaleIO.StorageMode, &src.ScaleIO.FSType)
	}
}

// SetPersistentVolumeClaimDefaults defaults a PersistentVolumeClaim, also a
// StatefulSet's volumeClaimTemplates.
func SetPersistentVolumeClaimDefaults(pvc *corev1.PersistentVolumeClaim) {
	if pvc.Status.Phase == "" {
		pvc.Status.Phase = corev1.ClaimPending
	}
	setPersistentVolumeClaimSpecDefaults(&pvc.Spec)
	roundResourceList(pvc.Status.Capacity)
	roundResourceList(pvc.Status.AllocatedResources)
}

func setPersistentVolumeClaimSpecDefaults(spec *corev1.PersistentVolumeClaimSpec) {
	if spec.VolumeMode == nil {
		spec.VolumeMode = ptr.To(corev1.PersistentVolumeFilesystem)
	}
	roundResourceList(spec.Resources.Limits)
	roundResourceList(spec.Resources.Requests)
}

// --- Policy ------------------------------------------------------------------

func setDefaultsLimitRange(lr *corev1.LimitRange) {
	for i := range lr.Spec.Limits {
		item := &lr.Spec.Limits[i]
		if item.Type == corev1.LimitTypeContainer {
			if item.Default == nil {
				item.Default = corev1.ResourceList{}
			}
			if item.DefaultRequest == nil {
				item.DefaultRequest = corev1.ResourceList{}
			}
			// The default limit falls back to max; the default request to
			// the default limit, then to min.
			fillMissing(item.Default, item.Max)
			fillMissing(item.DefaultRequest, item.Default)
			fillMissing(item.DefaultRequest, item.Min)
		}
		roundResourceList(item.Max)
		roundResourceList(item.Min)
		roundResourceList(item.Default)
		roundResourceList(item.DefaultRequest)
		roundResourceList(item.MaxLimitRequestRatio)
	}
}

func fillMissing(dst, src corev1.ResourceList) {
	for name, q := range src {
		if _, ok := dst[name]; !ok {
			dst[name] = q.DeepCopy()
		}
	}
}

func setDefaultsResourceQuota(q *corev1.ResourceQuota) {
	roundResourceList(q.Spec.Hard)
	roundResourceList(q.Status.Hard)
	roundResourceList(q.Status.Used)
}

// --- Image pull policy ---------------------------------------------------------

// defaultPullPolicy is Always when the image is tagged :latest or carries
// neither tag nor digest, IfNotPresent otherwise (also when the reference
// does not parse: validation reports that). The parse is the one upstream
// does with github.com/distribution/reference's ParseNormalizedNamed.
func defaultPullPolicy(image string) corev1.PullPolicy {
	tag, digest, ok := parseImageReference(image)
	if ok && (tag == "latest" || (tag == "" && digest == "")) {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}

// The docker reference grammar (github.com/distribution/reference).
const (
	refAlnum     = `[a-z0-9]+`
	refSeparator = `(?:[._]|__|[-]+)`
	refDomComp   = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
	refDomain    = `(?:` + refDomComp + `(?:\.` + refDomComp + `)*` + `|\[(?:[a-fA-F0-9:]+)\])(?::[0-9]+)?`
	refComponent = refAlnum + `(?:` + refSeparator + refAlnum + `)*`
	refPath      = refComponent + `(?:/` + refComponent + `)*`
	refTag       = `[\w][\w.-]{0,127}`
	refDigest    = `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}`
)

var (
	referenceRegexp  = regexp.MustCompile(`^((?:` + refDomain + `/)?` + refPath + `)(?::(` + refTag + `))?(?:@(` + refDigest + `))?$`)
	nameRegexp       = regexp.MustCompile(`^(?:(` + refDomain + `)/)?(` + refPath + `)$`)
	identifierRegexp = regexp.MustCompile(`^[a-f0-9]{64}$`)
	lowerHexRegexp   = regexp.MustCompile(`^[a-f0-9]+$`)
	// The digest algorithms the kubelet and apiserver link in, with the
	// length of their hex encoding.
	digestHexLength = map[string]int{"sha256": 64, "sha384": 96, "sha512": 128}
)

// parseImageReference returns the tag and digest of a normalized image
// reference; ok is false when it does not parse.
func parseImageReference(image string) (tag, digest string, ok bool) {
	if identifierRegexp.MatchString(image) {
		return "", "", false
	}
	domain, remainder := splitDockerDomain(image)
	remote, _, _ := strings.Cut(remainder, ":")
	if strings.ToLower(remote) != remote {
		return "", "", false
	}
	m := referenceRegexp.FindStringSubmatch(domain + "/" + remainder)
	if m == nil {
		return "", "", false
	}
	path := m[1]
	if n := nameRegexp.FindStringSubmatch(m[1]); len(n) == 3 {
		path = n[2]
	}
	if len(path) > 255 {
		return "", "", false
	}
	if m[3] != "" {
		alg, hex, _ := strings.Cut(m[3], ":")
		if n, known := digestHexLength[alg]; !known || len(hex) != n || !lowerHexRegexp.MatchString(hex) {
			return "", "", false
		}
	}
	return m[2], m[3], true
}

func splitDockerDomain(name string) (domain, remote string) {
	const defaultDomain, official = "docker.io", "library/"
	maybeDomain, maybeRemote, found := strings.Cut(name, "/")
	if !found {
		return defaultDomain, official + name
	}
	switch {
	case maybeDomain == "localhost":
		domain, remote = maybeDomain, maybeRemote
	case maybeDomain == "index.docker.io":
		domain, remote = defaultDomain, maybeRemote
	case strings.ContainsAny(maybeDomain, ".:"), strings.ToLower(maybeDomain) != maybeDomain:
		domain, remote = maybeDomain, maybeRemote
	default:
		domain, remote = defaultDomain, name
	}
	if domain == defaultDomain && !strings.ContainsRune(remote, '/') {
		remote = official + remote
	}
	return domain, remote
}
