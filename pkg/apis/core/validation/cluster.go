package validation

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"
)

var standardFinalizers = sets.New(string(corev1.FinalizerKubernetes), "foregroundDeletion", "orphan")

// ValidateNamespace checks spec.finalizers names.
func ValidateNamespace(ns *corev1.Namespace) field.ErrorList {
	var errs field.ErrorList
	for _, f := range ns.Spec.Finalizers {
		p := field.NewPath("spec", "finalizers")
		errs = append(errs, apimachineryvalidation.ValidateFinalizerName(string(f), p)...)
		if !strings.Contains(string(f), "/") && !standardFinalizers.Has(string(f)) {
			errs = append(errs, field.Invalid(p, string(f), "name is neither a standard finalizer name nor is it fully qualified"))
		}
	}
	return errs
}

// ValidateNode checks taints, pod CIDRs, status quantities and declared
// features (nodes/status runs it too, through ValidateNodeUpdate).
func ValidateNode(node *corev1.Node) field.ErrorList {
	// Upstream reports spec.taints under metadata.taints.
	errs := validateNodeTaints(node.Spec.Taints, field.NewPath("metadata").Child("taints"))
	for k, v := range node.Status.Capacity {
		errs = append(errs, ValidateResourceQuantityValue(k, v, field.NewPath("status", "capacity", string(k)))...)
	}
	for k, v := range node.Status.Allocatable {
		errs = append(errs, ValidateResourceQuantityValue(k, v, field.NewPath("status", "allocatable", string(k)))...)
	}
	errs = append(errs, validateNodeDeclaredFeatures(node.Status.DeclaredFeatures, field.NewPath("status", "declaredFeatures"))...)
	if cidrs := node.Spec.PodCIDRs; len(cidrs) > 0 {
		p := field.NewPath("spec", "podCIDRs")
		for i, c := range cidrs {
			errs = append(errs, validateCIDR(p.Index(i), c, nil)...)
		}
		if len(cidrs) > 1 {
			if dual, err := netutils.IsDualStackCIDRStrings(cidrs); err != nil || !dual || len(cidrs) > 2 {
				errs = append(errs, field.Invalid(p, cidrs, "may specify no more than one CIDR for each IP family"))
			}
		}
	}
	return errs
}

// ValidateNodeUpdate: podCIDRs and providerID may be set once; addresses are
// unique.
func ValidateNodeUpdate(node, old *corev1.Node) field.ErrorList {
	errs := ValidateNode(node)
	seen := map[corev1.NodeAddress]bool{}
	for i, a := range node.Status.Addresses {
		if seen[a] {
			errs = append(errs, field.Duplicate(field.NewPath("status", "addresses").Index(i), a))
		}
		seen[a] = true
	}
	if len(old.Spec.PodCIDRs) > 0 && !apiequality.Semantic.DeepEqual(old.Spec.PodCIDRs, node.Spec.PodCIDRs) {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "podCIDRs"), "node updates may not change podCIDR except from \"\" to valid"))
	}
	if old.Spec.ProviderID != "" {
		if node.Spec.ProviderID == "" {
			errs = append(errs, field.Invalid(field.NewPath("spec", "providerID"), nil, "field cannot be cleared once set"))
		} else if node.Spec.ProviderID != old.Spec.ProviderID {
			errs = append(errs, field.Invalid(field.NewPath("spec", "providerID"), nil, "field cannot be modified once set"))
		}
	}
	if node.Spec.DoNotUseExternalID != old.Spec.DoNotUseExternalID {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "externalID"), "may not be updated"))
	}
	return errs
}

func validateNodeTaints(taints []corev1.Taint, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	unique := map[corev1.TaintEffect]sets.Set[string]{}
	for i, t := range taints {
		p := fldPath.Index(i)
		errs = append(errs, metavalidation.ValidateLabelName(t.Key, p.Child("key"))...)
		if m := labelValueErrors(t.Value); m != "" {
			errs = append(errs, field.Invalid(p.Child("value"), t.Value, m))
		}
		errs = append(errs, validateTaintEffect(t.Effect, false, p.Child("effect"))...)
		if unique[t.Effect].Has(t.Key) {
			e := field.Duplicate(p, t)
			e.Detail = "taints must be unique by key and effect pair"
			errs = append(errs, e)
			continue
		}
		if unique[t.Effect] == nil {
			unique[t.Effect] = sets.New[string]()
		}
		unique[t.Effect].Insert(t.Key)
	}
	return errs
}

// ValidateEndpoints checks addresses and ports of each subset.
func ValidateEndpoints(ep *corev1.Endpoints) field.ErrorList {
	var errs field.ErrorList
	for i := range ep.Subsets {
		ss := &ep.Subsets[i]
		p := field.NewPath("subsets").Index(i)
		if len(ss.Addresses) == 0 && len(ss.NotReadyAddresses) == 0 {
			errs = append(errs, field.Required(p, "must specify `addresses` or `notReadyAddresses`"))
		}
		for j := range ss.Addresses {
			errs = append(errs, validateEndpointAddress(&ss.Addresses[j], p.Child("addresses").Index(j))...)
		}
		for j := range ss.NotReadyAddresses {
			errs = append(errs, validateEndpointAddress(&ss.NotReadyAddresses[j], p.Child("notReadyAddresses").Index(j))...)
		}
		for j := range ss.Ports {
			errs = append(errs, validateEndpointPort(&ss.Ports[j], len(ss.Ports) > 1, p.Child("ports").Index(j))...)
		}
	}
	return errs
}

// ValidateEndpointsUpdate tolerates unchanged subsets that older rules let in.
func ValidateEndpointsUpdate(ep, old *corev1.Endpoints) field.ErrorList {
	if apiequality.Semantic.DeepEqual(ep.Subsets, old.Subsets) {
		return nil
	}
	return ValidateEndpoints(ep)
}

func validateEndpointAddress(a *corev1.EndpointAddress, fldPath *field.Path) field.ErrorList {
	errs := validateIP(fldPath.Child("ip"), a.IP, nil)
	if a.Hostname != "" {
		errs = append(errs, ValidateDNS1123Label(a.Hostname, fldPath.Child("hostname"))...)
	}
	if a.NodeName != nil {
		errs = append(errs, validateName(apimachineryvalidation.NameIsDNSSubdomain, *a.NodeName, fldPath.Child("nodeName"))...)
	}
	return append(errs, ValidateEndpointIP(a.IP, fldPath.Child("ip"))...)
}

func validateEndpointPort(port *corev1.EndpointPort, requireName bool, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if requireName && port.Name == "" {
		errs = append(errs, field.Required(fldPath.Child("name"), ""))
	} else if port.Name != "" {
		errs = append(errs, ValidateDNS1123Label(port.Name, fldPath.Child("name"))...)
	}
	errs = append(errs, msgs(fldPath.Child("port"), port.Port, validation.IsValidPortNum(int(port.Port)))...)
	if port.Protocol == "" {
		errs = append(errs, field.Required(fldPath.Child("protocol"), ""))
	} else if !supportedPortProtocols.Has(port.Protocol) {
		errs = append(errs, field.NotSupported(fldPath.Child("protocol"), port.Protocol, sets.List(supportedPortProtocols)))
	}
	if port.AppProtocol != nil {
		errs = append(errs, ValidateQualifiedName(*port.AppProtocol, fldPath.Child("appProtocol"))...)
	}
	return errs
}

var (
	standardQuotaScopes = sets.New(corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating,
		corev1.ResourceQuotaScopeBestEffort, corev1.ResourceQuotaScopeNotBestEffort, corev1.ResourceQuotaScopePriorityClass,
		corev1.ResourceQuotaScopeVolumeAttributesClass, corev1.ResourceQuotaScopeCrossNamespacePodAffinity)
	conflictingScopes = [][2]corev1.ResourceQuotaScope{
		{corev1.ResourceQuotaScopeBestEffort, corev1.ResourceQuotaScopeNotBestEffort},
		{corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating},
	}
	podObjectCountResources = sets.New(corev1.ResourcePods)
	podComputeResources     = sets.New(corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceLimitsCPU,
		corev1.ResourceLimitsMemory, corev1.ResourceRequestsCPU, corev1.ResourceRequestsMemory)
)

// scopeAppliesTo: which resources a quota scope may constrain.
func scopeAppliesTo(scope corev1.ResourceQuotaScope, r corev1.ResourceName) bool {
	switch scope {
	case corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating, corev1.ResourceQuotaScopeNotBestEffort,
		corev1.ResourceQuotaScopePriorityClass, corev1.ResourceQuotaScopeCrossNamespacePodAffinity:
		return podObjectCountResources.Has(r) || podComputeResources.Has(r)
	case corev1.ResourceQuotaScopeBestEffort:
		return podObjectCountResources.Has(r)
	case corev1.ResourceQuotaScopeVolumeAttributesClass:
		return r == corev1.ResourcePersistentVolumeClaims || r == corev1.ResourceRequestsStorage
	}
	return true
}

// ValidateResourceQuota checks resource names, quantities and scopes.
func ValidateResourceQuota(q *corev1.ResourceQuota) field.ErrorList {
	specPath := field.NewPath("spec")
	var errs field.ErrorList
	for k, v := range q.Spec.Hard {
		p := specPath.Child("hard").Key(string(k))
		errs = append(errs, ValidateResourceQuotaResourceName(k, p)...)
		errs = append(errs, ValidateResourceQuantityValue(k, v, p)...)
	}
	hard := sets.List(sets.KeySet(q.Spec.Hard))
	checkScopes := func(scopes []corev1.ResourceQuotaScope, p *field.Path, value interface{}) {
		set := sets.New[corev1.ResourceQuotaScope]()
		for _, s := range scopes {
			if !standardQuotaScopes.Has(s) {
				errs = append(errs, field.Invalid(p, value, "unsupported scope"))
			}
			for _, r := range hard {
				if standardQuotaResources.Has(r) && !scopeAppliesTo(s, r) {
					errs = append(errs, field.Invalid(p, value, "unsupported scope applied to resource"))
				}
			}
			set.Insert(s)
		}
		for _, pair := range conflictingScopes {
			if set.HasAll(pair[0], pair[1]) {
				errs = append(errs, field.Invalid(p, q.Spec.Scopes, "conflicting scopes"))
			}
		}
	}
	checkScopes(q.Spec.Scopes, specPath.Child("scopes"), q.Spec.Scopes)
	if sel := q.Spec.ScopeSelector; sel != nil {
		p := specPath.Child("scopeSelector", "matchExpressions")
		var scopes []corev1.ResourceQuotaScope
		for _, req := range sel.MatchExpressions {
			scopes = append(scopes, req.ScopeName)
			switch req.ScopeName {
			case corev1.ResourceQuotaScopeBestEffort, corev1.ResourceQuotaScopeNotBestEffort, corev1.ResourceQuotaScopeTerminating,
				corev1.ResourceQuotaScopeNotTerminating, corev1.ResourceQuotaScopeCrossNamespacePodAffinity:
				if req.Operator != corev1.ScopeSelectorOpExists {
					errs = append(errs, field.Invalid(p.Child("operator"), req.Operator,
						"must be 'Exists' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity"))
				}
			}
			switch req.Operator {
			case corev1.ScopeSelectorOpIn, corev1.ScopeSelectorOpNotIn:
				if len(req.Values) == 0 {
					errs = append(errs, field.Required(p.Child("values"), "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector"))
				}
			case corev1.ScopeSelectorOpExists, corev1.ScopeSelectorOpDoesNotExist:
				if len(req.Values) != 0 {
					errs = append(errs, field.Invalid(p.Child("values"), req.Values, "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector"))
				}
			default:
				errs = append(errs, field.Invalid(p.Child("operator"), req.Operator, "not a valid selector operator"))
			}
		}
		checkScopes(scopes, p, sel)
	}
	return errs
}

// ValidateResourceQuotaUpdate: scopes are immutable.
func ValidateResourceQuotaUpdate(q, old *corev1.ResourceQuota) field.ErrorList {
	errs := ValidateResourceQuota(q)
	newScopes, oldScopes := sets.New(q.Spec.Scopes...), sets.New(old.Spec.Scopes...)
	if !newScopes.Equal(oldScopes) {
		errs = append(errs, field.Invalid(field.NewPath("spec", "scopes"), q.Spec.Scopes, apimachineryvalidation.FieldImmutableErrorMsg))
	}
	return errs
}

var resourceOne = resource.NewQuantity(1, resource.DecimalSI)

var standardLimitTypes = sets.New(corev1.LimitTypePod, corev1.LimitTypeContainer, corev1.LimitTypePersistentVolumeClaim)

// ValidateLimitRange checks types, resource names and min <= default <= max.
func ValidateLimitRange(lr *corev1.LimitRange) field.ErrorList {
	var errs field.ErrorList
	types := sets.New[corev1.LimitType]()
	fldPath := field.NewPath("spec", "limits")
	for i := range lr.Spec.Limits {
		p := fldPath.Index(i)
		limit := &lr.Spec.Limits[i]
		if e := ValidateQualifiedName(string(limit.Type), p.Child("type")); len(e) != 0 {
			errs = append(errs, e...)
		} else if !strings.Contains(string(limit.Type), "/") && !standardLimitTypes.Has(limit.Type) {
			errs = append(errs, field.Invalid(p.Child("type"), limit.Type, "must be a standard limit type or fully qualified"))
		}
		if types.Has(limit.Type) {
			errs = append(errs, field.Duplicate(p.Child("type"), limit.Type))
		}
		types.Insert(limit.Type)

		nameFn := validateResourceName
		if limit.Type == corev1.LimitTypePod || limit.Type == corev1.LimitTypeContainer {
			nameFn = ValidateContainerResourceName
		}
		keys := sets.New[corev1.ResourceName]()
		lists := []struct {
			name string
			list corev1.ResourceList
		}{{"max", limit.Max}, {"min", limit.Min}, {"default", limit.Default}, {"defaultRequest", limit.DefaultRequest}, {"maxLimitRequestRatio", limit.MaxLimitRequestRatio}}
		for _, l := range lists {
			if limit.Type == corev1.LimitTypePod && (l.name == "default" || l.name == "defaultRequest") {
				if len(l.list) > 0 {
					errs = append(errs, field.Forbidden(p.Child(l.name), "may not be specified when `type` is 'Pod'"))
				}
				continue
			}
			for _, k := range sets.List(sets.KeySet(l.list)) {
				errs = append(errs, nameFn(k, p.Child(l.name).Key(string(k)))...)
				keys.Insert(k)
			}
		}
		if limit.Type == corev1.LimitTypePersistentVolumeClaim {
			_, hasMin := limit.Min[corev1.ResourceStorage]
			_, hasMax := limit.Max[corev1.ResourceStorage]
			if !hasMin && !hasMax {
				errs = append(errs, field.Required(p.Child("limits"), "either minimum or maximum storage value is required, but neither was provided"))
			}
		}
		for _, k := range sets.List(keys) {
			key := string(k)
			minQ, hasMin := limit.Min[k]
			maxQ, hasMax := limit.Max[k]
			defQ, hasDef := limit.Default[k]
			reqQ, hasReq := limit.DefaultRequest[k]
			ratio, hasRatio := limit.MaxLimitRequestRatio[k]
			if limit.Type == corev1.LimitTypePod {
				hasDef, hasReq = false, false
			}
			if hasMin && hasMax && minQ.Cmp(maxQ) > 0 {
				errs = append(errs, field.Invalid(p.Child("min").Key(key), minQ, fmt.Sprintf("min value %s is greater than max value %s", minQ.String(), maxQ.String())))
			}
			if hasReq && hasMin && minQ.Cmp(reqQ) > 0 {
				errs = append(errs, field.Invalid(p.Child("defaultRequest").Key(key), reqQ, fmt.Sprintf("min value %s is greater than default request value %s", minQ.String(), reqQ.String())))
			}
			if hasReq && hasMax && reqQ.Cmp(maxQ) > 0 {
				errs = append(errs, field.Invalid(p.Child("defaultRequest").Key(key), reqQ, fmt.Sprintf("default request value %s is greater than max value %s", reqQ.String(), maxQ.String())))
			}
			if hasReq && hasDef && reqQ.Cmp(defQ) > 0 {
				errs = append(errs, field.Invalid(p.Child("defaultRequest").Key(key), reqQ, fmt.Sprintf("default request value %s is greater than default limit value %s", reqQ.String(), defQ.String())))
			}
			if hasDef && hasMin && minQ.Cmp(defQ) > 0 {
				errs = append(errs, field.Invalid(p.Child("default").Key(key), minQ, fmt.Sprintf("min value %s is greater than default value %s", minQ.String(), defQ.String())))
			}
			if hasDef && hasMax && defQ.Cmp(maxQ) > 0 {
				errs = append(errs, field.Invalid(p.Child("default").Key(key), maxQ, fmt.Sprintf("default value %s is greater than max value %s", defQ.String(), maxQ.String())))
			}
			if hasRatio && ratio.Cmp(*resourceOne) < 0 {
				errs = append(errs, field.Invalid(p.Child("maxLimitRequestRatio").Key(key), ratio, fmt.Sprintf("ratio %s is less than 1", ratio.String())))
			}
			if hasRatio && hasMin && hasMax && minQ.MilliValue() > 0 {
				limitRatio := float64(maxQ.MilliValue()) / float64(minQ.MilliValue())
				if float64(ratio.MilliValue())/1000 > limitRatio {
					errs = append(errs, field.Invalid(p.Child("maxLimitRequestRatio").Key(key), ratio, fmt.Sprintf("ratio %s is greater than max/min = %f", ratio.String(), limitRatio)))
				}
			}
			if !isOvercommitAllowed(k) && hasDef && hasReq && defQ.Cmp(reqQ) != 0 {
				errs = append(errs, field.Invalid(p.Child("defaultRequest").Key(key), reqQ, fmt.Sprintf("default value %s must equal to defaultRequest value %s in %s", defQ.String(), reqQ.String(), key)))
			}
		}
	}
	return errs
}

// ValidateReplicationController: a non-empty selector matching the
// template's labels, replicas >= 0, a template that always restarts.
func ValidateReplicationController(rc *corev1.ReplicationController) field.ErrorList {
	specPath := field.NewPath("spec")
	spec := &rc.Spec
	errs := ValidateNonnegativeField(int64(spec.MinReadySeconds), specPath.Child("minReadySeconds"))
	if len(spec.Selector) == 0 {
		errs = append(errs, field.Required(specPath.Child("selector"), ""))
	}
	if spec.Replicas == nil {
		errs = append(errs, field.Required(specPath.Child("replicas"), ""))
	} else {
		errs = append(errs, ValidateNonnegativeField(int64(*spec.Replicas), specPath.Child("replicas"))...)
	}
	tp := specPath.Child("template")
	if spec.Template == nil {
		return append(errs, field.Required(tp, ""))
	}
	if len(spec.Selector) > 0 && !selectorMatches(spec.Selector, spec.Template.Labels) {
		errs = append(errs, field.Invalid(tp.Child("metadata", "labels"), spec.Template.Labels, "`selector` does not match template `labels`"))
	}
	errs = append(errs, ValidatePodTemplateSpec(spec.Template, tp)...)
	if spec.Template.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		errs = append(errs, field.NotSupported(tp.Child("spec", "restartPolicy"), spec.Template.Spec.RestartPolicy, []corev1.RestartPolicy{corev1.RestartPolicyAlways}))
	}
	if spec.Template.Spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Forbidden(tp.Child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in ReplicationController is not Supported"))
	}
	return errs
}

func selectorMatches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}
