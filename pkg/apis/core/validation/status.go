package validation

import (
	"fmt"
	"math"
	"regexp"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"

	"github.com/skiff-dev/skiff/pkg/apis/core/helper"
)

// The validators of this file are those of upstream's status strategies
// (pods/status, services/status, ...): they see the whole object, whose spec
// the subresource kept as stored, and check what a status write may set.
// Metadata is validated by the registry strategy.

// ValidatePodStatusUpdate is upstream's ValidatePodStatusUpdate with the
// 1.37 default feature gates (ContainerRestartRules,
// RestartAllContainersOnContainerExits, ClearingNominatedNodeNameAfterBinding).
// As upstream it does not check container status names, restart counts or
// states beyond the terminated-to-running transition.
func ValidatePodStatusUpdate(pod, old *corev1.Pod) field.ErrorList {
	fldPath := field.NewPath("status")
	errs := validatePodConditions(pod.Status.Conditions, fldPath.Child("conditions"))
	if pod.Spec.NodeName != old.Spec.NodeName {
		errs = append(errs, field.Forbidden(fldPath.Child("nodeName"), "may not be changed directly"))
	}
	if nn := pod.Status.NominatedNodeName; nn != old.Status.NominatedNodeName && nn != "" {
		errs = append(errs, msgs(fldPath.Child("nominatedNodeName"), nn, apimachineryvalidation.NameIsDNSSubdomain(nn, false))...)
		if old.Spec.NodeName != "" {
			errs = append(errs, field.Forbidden(fldPath.Child("nominatedNodeName"), "may not be set on pods that are already bound to a node"))
		}
	}
	if pod.Status.ObservedGeneration < 0 {
		errs = append(errs, field.Invalid(fldPath.Child("observedGeneration"), pod.Status.ObservedGeneration, "must be a non-negative integer"))
	}
	errs = append(errs, ValidateImmutableField(pod.Status.QOSClass, old.Status.QOSClass, fldPath.Child("qosClass"))...)

	// Upstream checks the transitions against the stored spec.
	errs = append(errs, validateContainerStateTransition(pod.Status.ContainerStatuses, old.Status.ContainerStatuses, fldPath.Child("containerStatuses"), &old.Spec, old.Spec.Containers)...)
	errs = append(errs, validateContainerStateTransition(pod.Status.InitContainerStatuses, old.Status.InitContainerStatuses, fldPath.Child("initContainerStatuses"), &old.Spec, old.Spec.InitContainers)...)
	errs = append(errs, validateEphemeralContainerStateTransition(pod.Status.EphemeralContainerStatuses, old.Status.EphemeralContainerStatuses, fldPath.Child("ephemeralContainerStatuses"))...)
	errs = append(errs, validatePodResourceClaimStatuses(pod.Status.ResourceClaimStatuses, pod.Spec.ResourceClaims, fldPath.Child("resourceClaimStatuses"))...)

	errs = append(errs, validatePodIPs(pod, old)...)
	errs = append(errs, validateHostIPs(pod, old)...)

	errs = append(errs, validateContainerStatusUsers(pod.Status.ContainerStatuses, fldPath.Child("containerStatuses"), pod.Spec.OS)...)
	errs = append(errs, validateContainerStatusUsers(pod.Status.InitContainerStatuses, fldPath.Child("initContainerStatuses"), pod.Spec.OS)...)
	errs = append(errs, validateContainerStatusUsers(pod.Status.EphemeralContainerStatuses, fldPath.Child("ephemeralContainerStatuses"), pod.Spec.OS)...)
	for i, cs := range pod.Status.EphemeralContainerStatuses {
		if len(cs.AllocatedResourcesStatus) != 0 {
			errs = append(errs, field.Forbidden(fldPath.Child("ephemeralContainerStatuses").Index(i).Child("allocatedResourcesStatus"), "must not be specified in container status"))
		}
	}
	return errs
}

var systemPodConditions = sets.New(corev1.PodScheduled, corev1.PodReady, corev1.PodInitialized)

func validatePodConditions(conditions []corev1.PodCondition, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, c := range conditions {
		if c.ObservedGeneration < 0 {
			errs = append(errs, field.Invalid(fldPath.Index(i).Child("observedGeneration"), c.ObservedGeneration, "must be a non-negative integer"))
		}
		if systemPodConditions.Has(c.Type) {
			continue
		}
		// Upstream's path says "Type", capitalised.
		errs = append(errs, ValidateQualifiedName(string(c.Type), fldPath.Index(i).Child("Type"))...)
	}
	return errs
}

// validateContainerStateTransition forbids a terminated container (indexed
// in the old statuses) to run again unless its restart policy, rules
// included, restarts it (a restartable init container's Always does).
func validateContainerStateTransition(statuses, oldStatuses []corev1.ContainerStatus, fldPath *field.Path, spec *corev1.PodSpec, containers []corev1.Container) field.ErrorList {
	var errs field.ErrorList
	if allContainersCouldRestart(spec) {
		return nil
	}
	for i, o := range oldStatuses {
		if o.State.Terminated == nil {
			continue
		}
		for _, n := range statuses {
			if n.Name != o.Name || n.State.Terminated != nil {
				continue
			}
			allowed := false
			for _, c := range containers {
				if c.Name == o.Name {
					allowed = containerShouldRestart(&c, spec, o.State.Terminated.ExitCode)
					break
				}
			}
			if !allowed {
				errs = append(errs, field.Forbidden(fldPath.Index(i).Child("state"), "may not be transitioned to non-terminated state"))
			}
			break
		}
	}
	return errs
}

func validateEphemeralContainerStateTransition(statuses, oldStatuses []corev1.ContainerStatus, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, o := range oldStatuses {
		if o.State.Terminated == nil {
			continue
		}
		for _, n := range statuses {
			if o.Name == n.Name && n.State.Terminated == nil {
				errs = append(errs, field.Forbidden(fldPath.Index(i).Child("state"), "may not be transitioned to non-terminated state"))
			}
		}
	}
	return errs
}

// allContainersCouldRestart: a RestartAllContainers rule lets every
// container leave the terminated state.
func allContainersCouldRestart(spec *corev1.PodSpec) bool {
	for _, list := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range list {
			for _, r := range c.RestartPolicyRules {
				if r.Action == corev1.ContainerRestartRuleActionRestartAllContainers {
					return true
				}
			}
		}
	}
	return false
}

// containerShouldRestart: the container's restart rules, then its restart
// policy, then the pod's.
func containerShouldRestart(c *corev1.Container, spec *corev1.PodSpec, exitCode int32) bool {
	if c.RestartPolicy != nil {
		for _, r := range c.RestartPolicyRules {
			if r.ExitCodes == nil {
				continue
			}
			in := false
			for _, v := range r.ExitCodes.Values {
				in = in || v == exitCode
			}
			matched := (r.ExitCodes.Operator == corev1.ContainerRestartRuleOnExitCodesOpIn && in) ||
				(r.ExitCodes.Operator == corev1.ContainerRestartRuleOnExitCodesOpNotIn && !in)
			if !matched {
				continue
			}
			if r.Action == corev1.ContainerRestartRuleActionRestart || r.Action == corev1.ContainerRestartRuleActionRestartAllContainers {
				return true
			}
			break
		}
		switch *c.RestartPolicy {
		case corev1.ContainerRestartPolicyAlways:
			return true
		case corev1.ContainerRestartPolicyOnFailure:
			return exitCode != 0
		case corev1.ContainerRestartPolicyNever:
			return false
		}
	}
	switch spec.RestartPolicy {
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	case corev1.RestartPolicyNever:
		return false
	}
	return true
}

func validatePodResourceClaimStatuses(statuses []corev1.PodResourceClaimStatus, claims []corev1.PodResourceClaim, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := sets.New[string]()
	for i, s := range statuses {
		p := fldPath.Index(i)
		found := false
		for _, c := range claims {
			found = found || c.Name == s.Name
		}
		if !found {
			errs = append(errs, field.Invalid(p.Child("name"), s.Name, "must match the name of an entry in `spec.resourceClaims`"))
		}
		if names.Has(s.Name) {
			errs = append(errs, field.Duplicate(p.Child("name"), s.Name))
		} else {
			names.Insert(s.Name)
		}
		if s.ResourceClaimName != nil {
			for _, m := range apimachineryvalidation.NameIsDNSSubdomain(*s.ResourceClaimName, false) {
				errs = append(errs, field.Invalid(p.Child("resourceClaimName"), s.ResourceClaimName, m))
			}
		}
	}
	return errs
}

// validatePodIPs: valid IPs (stored invalid ones may stay), at most one per
// family, and podIP equal to podIPs[0].
func validatePodIPs(pod, old *corev1.Pod) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("status", "podIPs")
	var existing []string
	for _, ip := range old.Status.PodIPs {
		existing = append(existing, ip.IP)
	}
	ips := make([]string, 0, len(pod.Status.PodIPs))
	for i, ip := range pod.Status.PodIPs {
		errs = append(errs, validateIP(p.Index(i), ip.IP, existing)...)
		ips = append(ips, ip.IP)
	}
	if len(ips) > 1 {
		dual, err := netutils.IsDualStackIPStrings(ips)
		if err != nil {
			errs = append(errs, field.InternalError(p, fmt.Errorf("failed to check for dual stack with error:%v", err)))
		}
		if !dual || len(ips) > 2 {
			errs = append(errs, field.Invalid(p, pod.Status.PodIPs, "may specify no more than one IP for each IP family"))
		}
	}
	hasPodIP, hasPodIPs := pod.Status.PodIP != "", len(pod.Status.PodIPs) > 0
	switch {
	case hasPodIP != hasPodIPs:
		errs = append(errs, field.Invalid(p, pod.Status.PodIPs, "podIP and podIPs must either both be set or both be unset"))
	case hasPodIPs && pod.Status.PodIP != pod.Status.PodIPs[0].IP:
		errs = append(errs, field.Invalid(p.Index(0).Child("ip"), pod.Status.PodIPs[0].IP, "must be equal to `podIP`"))
	}
	return errs
}

// validateHostIPs: as podIPs, checked only when hostIPs is set.
func validateHostIPs(pod, old *corev1.Pod) field.ErrorList {
	if len(pod.Status.HostIPs) == 0 {
		return nil
	}
	var errs field.ErrorList
	p := field.NewPath("status", "hostIPs")
	if pod.Status.HostIP != pod.Status.HostIPs[0].IP {
		errs = append(errs, field.Invalid(p.Index(0).Child("ip"), pod.Status.HostIPs[0].IP, "must be equal to `hostIP`"))
	}
	var existing []string
	for _, ip := range old.Status.HostIPs {
		existing = append(existing, ip.IP)
	}
	ips := make([]string, 0, len(pod.Status.HostIPs))
	for i, ip := range pod.Status.HostIPs {
		errs = append(errs, validateIP(p.Index(i), ip.IP, existing)...)
		ips = append(ips, ip.IP)
	}
	if len(ips) > 1 {
		dual, err := netutils.IsDualStackIPStrings(ips)
		if err != nil {
			errs = append(errs, field.InternalError(p, fmt.Errorf("failed to check for dual stack with error:%v", err)))
		}
		if !dual || len(ips) > 2 {
			errs = append(errs, field.Invalid(p, pod.Status.HostIPs, "may specify no more than one IP for each IP family"))
		}
	}
	return errs
}

// validateContainerStatusUsers: the user a runtime reports fits the pod's OS.
func validateContainerStatusUsers(statuses []corev1.ContainerStatus, fldPath *field.Path, podOS *corev1.PodOS) field.ErrorList {
	var errs field.ErrorList
	osName := corev1.Linux
	if podOS != nil {
		osName = podOS.Name
	}
	for i, s := range statuses {
		if s.User == nil || s.User.Linux == nil {
			continue
		}
		p := fldPath.Index(i).Child("user", "linux")
		switch osName {
		case corev1.Windows:
			errs = append(errs, field.Forbidden(p, "cannot be set for a windows pod"))
		case corev1.Linux:
			u := s.User.Linux
			if u.UID < 0 || u.UID > math.MaxUint32 {
				errs = append(errs, field.Invalid(p.Child("uid"), u.UID, fmt.Sprintf("must be between 0 and %d, inclusive", int64(math.MaxUint32))))
			}
			errs = append(errs, msgs(p.Child("gid"), u.GID, validation.IsValidGroupID(u.GID))...)
			for g, gid := range u.SupplementalGroups {
				errs = append(errs, msgs(p.Child("supplementalGroups").Index(g), gid, validation.IsValidGroupID(gid))...)
			}
		}
	}
	return errs
}

var nodeDeclaredFeatureRegexp = regexp.MustCompile(`^[A-Z][a-zA-Z0-9]*(\/[a-zA-Z][a-zA-Z0-9]*)*$`)

// validateNodeDeclaredFeatures (NodeDeclaredFeatures is GA in 1.37): UpperCamelCase names, sorted, unique.
func validateNodeDeclaredFeatures(features []string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, f := range features {
		switch {
		case len(f) > validation.DNS1123SubdomainMaxLength:
			errs = append(errs, field.Invalid(fldPath.Index(i), f, fmt.Sprintf("invalid feature name %q: must be no more than %d characters", f, validation.DNS1123SubdomainMaxLength)))
		case !nodeDeclaredFeatureRegexp.MatchString(f):
			errs = append(errs, field.Invalid(fldPath.Index(i), f, fmt.Sprintf("invalid feature name %q: must start with an UpperCamelCase segment, with subsequent segments separated by '/' (e.g., MyFeature or MyFeature/mySubFeature), and contain only alphanumeric characters and slashes", f)))
		}
		if i+1 < len(features) {
			next := features[i+1]
			if f == next {
				errs = append(errs, field.Duplicate(fldPath.Index(i+1), next))
			} else if f > next {
				errs = append(errs, field.Invalid(fldPath.Index(i+1), next, "list must be sorted alphabetically"))
			}
		}
	}
	return errs
}

// ValidateServiceStatusUpdate checks status.loadBalancer.
func ValidateServiceStatusUpdate(svc, old *corev1.Service) field.ErrorList {
	return validateLoadBalancerStatus(&svc.Status.LoadBalancer, &old.Status.LoadBalancer, field.NewPath("status", "loadBalancer"), &svc.Spec)
}

var supportedLoadBalancerIPModes = sets.New(corev1.LoadBalancerIPModeVIP, corev1.LoadBalancerIPModeProxy)

func validateLoadBalancerStatus(status, old *corev1.LoadBalancerStatus, fldPath *field.Path, spec *corev1.ServiceSpec) field.ErrorList {
	var errs field.ErrorList
	p := fldPath.Child("ingress")
	if spec.Type != corev1.ServiceTypeLoadBalancer && len(status.Ingress) != 0 {
		return field.ErrorList{field.Forbidden(p, "may only be used when `spec.type` is 'LoadBalancer'")}
	}
	var existing []string
	for _, in := range old.Ingress {
		if in.IP != "" {
			existing = append(existing, in.IP)
		}
	}
	for i, in := range status.Ingress {
		ip := p.Index(i)
		if in.IP != "" {
			errs = append(errs, validateIP(ip.Child("ip"), in.IP, existing)...)
		}
		switch {
		case in.IPMode == nil:
			if in.IP != "" {
				errs = append(errs, field.Required(ip.Child("ipMode"), "must be specified when `ip` is set"))
			}
		case in.IP == "":
			errs = append(errs, field.Forbidden(ip.Child("ipMode"), "may not be specified when `ip` is not set"))
		case !supportedLoadBalancerIPModes.Has(*in.IPMode):
			errs = append(errs, field.NotSupported(ip.Child("ipMode"), in.IPMode, sets.List(supportedLoadBalancerIPModes)))
		}
		if in.Hostname != "" {
			errs = append(errs, msgs(ip.Child("hostname"), in.Hostname, validation.IsDNS1123Subdomain(in.Hostname))...)
			if netutils.ParseIPSloppy(in.Hostname) != nil {
				errs = append(errs, field.Invalid(ip.Child("hostname"), in.Hostname, "must be a DNS name, not an IP address"))
			}
		}
	}
	return errs
}

// ValidateReplicationControllerStatusUpdate: counts are non-negative and
// bounded by status.replicas.
func ValidateReplicationControllerStatusUpdate(rc, _ *corev1.ReplicationController) field.ErrorList {
	s, p := rc.Status, field.NewPath("status")
	errs := ValidateNonnegativeField(int64(s.Replicas), p.Child("replicas"))
	errs = append(errs, ValidateNonnegativeField(int64(s.FullyLabeledReplicas), p.Child("fullyLabeledReplicas"))...)
	errs = append(errs, ValidateNonnegativeField(int64(s.ReadyReplicas), p.Child("readyReplicas"))...)
	errs = append(errs, ValidateNonnegativeField(int64(s.AvailableReplicas), p.Child("availableReplicas"))...)
	errs = append(errs, ValidateNonnegativeField(s.ObservedGeneration, p.Child("observedGeneration"))...)
	const msg = "cannot be greater than status.replicas"
	if s.FullyLabeledReplicas > s.Replicas {
		errs = append(errs, field.Invalid(p.Child("fullyLabeledReplicas"), s.FullyLabeledReplicas, msg))
	}
	if s.ReadyReplicas > s.Replicas {
		errs = append(errs, field.Invalid(p.Child("readyReplicas"), s.ReadyReplicas, msg))
	}
	if s.AvailableReplicas > s.Replicas {
		errs = append(errs, field.Invalid(p.Child("availableReplicas"), s.AvailableReplicas, msg))
	}
	if s.AvailableReplicas > s.ReadyReplicas {
		errs = append(errs, field.Invalid(p.Child("availableReplicas"), s.AvailableReplicas, "cannot be greater than readyReplicas"))
	}
	return errs
}

// ValidateNamespaceStatusUpdate: the phase follows deletionTimestamp
// (upstream's path says "Phase").
func ValidateNamespaceStatusUpdate(ns, _ *corev1.Namespace) field.ErrorList {
	p := field.NewPath("status", "Phase")
	if ns.DeletionTimestamp.IsZero() {
		if ns.Status.Phase != corev1.NamespaceActive {
			return field.ErrorList{field.Invalid(p, ns.Status.Phase, "may only be 'Active' if `deletionTimestamp` is empty")}
		}
	} else if ns.Status.Phase != corev1.NamespaceTerminating {
		return field.ErrorList{field.Invalid(p, ns.Status.Phase, "may only be 'Terminating' if `deletionTimestamp` is not empty")}
	}
	return nil
}

// ValidateResourceQuotaStatusUpdate checks status.hard and status.used.
func ValidateResourceQuotaStatusUpdate(q, _ *corev1.ResourceQuota) field.ErrorList {
	var errs field.ErrorList
	if q.ResourceVersion == "" {
		errs = append(errs, field.Required(field.NewPath("resourceVersion"), ""))
	}
	for _, part := range []struct {
		name string
		list corev1.ResourceList
	}{{"hard", q.Status.Hard}, {"used", q.Status.Used}} {
		for k, v := range part.list {
			p := field.NewPath("status", part.name).Key(string(k))
			errs = append(errs, ValidateResourceQuotaResourceName(k, p)...)
			errs = append(errs, ValidateResourceQuantityValue(k, v, p)...)
		}
	}
	return errs
}

// ValidatePersistentVolumeStatusUpdate only needs a resourceVersion.
func ValidatePersistentVolumeStatusUpdate(pv, _ *corev1.PersistentVolume) field.ErrorList {
	if pv.ResourceVersion == "" {
		return field.ErrorList{field.Required(field.NewPath("resourceVersion"), "")}
	}
	return nil
}

var resizeStatuses = sets.New(corev1.PersistentVolumeClaimControllerResizeInProgress,
	corev1.PersistentVolumeClaimControllerResizeInfeasible,
	corev1.PersistentVolumeClaimNodeResizePending,
	corev1.PersistentVolumeClaimNodeResizeInProgress,
	corev1.PersistentVolumeClaimNodeResizeInfeasible)

// ValidatePersistentVolumeClaimStatusUpdate checks capacity, health and the
// resize fields (RecoverVolumeExpansionFailure is GA).
func ValidatePersistentVolumeClaimStatusUpdate(pvc, _ *corev1.PersistentVolumeClaim) field.ErrorList {
	var errs field.ErrorList
	if pvc.ResourceVersion == "" {
		errs = append(errs, field.Required(field.NewPath("resourceVersion"), ""))
	}
	if len(pvc.Spec.AccessModes) == 0 {
		// Upstream's path says "Spec".
		errs = append(errs, field.Required(field.NewPath("Spec", "accessModes"), ""))
	}
	capPath := field.NewPath("status", "capacity")
	for r, q := range pvc.Status.Capacity {
		errs = append(errs, validateBasicResource(q, capPath.Key(string(r)))...)
	}
	if hs := pvc.Status.HealthStatus; hs != nil {
		for i, c := range hs.HealthConditions {
			if c.Reason != "" {
				errs = append(errs, msgs(field.NewPath("status", "healthStatus", "healthConditions").Index(i).Child("reason"), c.Reason, metavalidation.IsValidConditionReason(c.Reason))...)
			}
		}
	}
	resizePath := field.NewPath("status", "allocatedResourceStatuses")
	for k, v := range pvc.Status.AllocatedResourceStatuses {
		errs = append(errs, validatePVCResourceKey(string(k), resizePath)...)
		if !resizeStatuses.Has(v) {
			errs = append(errs, field.NotSupported(resizePath, k, sets.List(resizeStatuses)))
		}
	}
	allocPath := field.NewPath("status", "allocatedResources")
	for r, q := range pvc.Status.AllocatedResources {
		if e := validatePVCResourceKey(string(r), allocPath); len(e) > 0 {
			errs = append(errs, e...)
			continue
		}
		if e := validateBasicResource(q, allocPath.Key(string(r))); len(e) > 0 {
			errs = append(errs, e...)
		} else {
			errs = append(errs, ValidateResourceQuantityValue(corev1.ResourceStorage, q, allocPath.Key(string(r)))...)
		}
	}
	return errs
}

func validateBasicResource(q resource.Quantity, fldPath *field.Path) field.ErrorList {
	if q.Value() < 0 {
		return field.ErrorList{field.Invalid(fldPath, q.Value(), "must be a valid resource quantity")}
	}
	return nil
}

// validatePVCResourceKey: a qualified name, and "storage" among the native
// resource names.
func validatePVCResourceKey(value string, fldPath *field.Path) field.ErrorList {
	if errs := msgs(fldPath, value, validation.IsQualifiedName(value)); len(errs) != 0 {
		return errs
	}
	if helper.IsNativeResource(corev1.ResourceName(value)) && corev1.ResourceName(value) != corev1.ResourceStorage {
		return field.ErrorList{field.NotSupported(fldPath, value, []corev1.ResourceName{corev1.ResourceStorage})}
	}
	return nil
}
