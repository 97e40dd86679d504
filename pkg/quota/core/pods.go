package core

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/admission"
	quota "k8s.io/apiserver/pkg/quota/v1"
	"k8s.io/apiserver/pkg/quota/v1/generic"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/utils/clock"

	"github.com/skiff-dev/skiff/pkg/apis/core/helper"
)

var podGR = corev1.Resource("pods")

var podObjectCountName = generic.ObjectCountQuotaResourceNameFor(podGR)

// deviceClassPrefix marks DRA extended resources backed by a device class.
const deviceClassPrefix = "deviceclass.resource.kubernetes.io/"

var podResources = []corev1.ResourceName{
	podObjectCountName,
	corev1.ResourceCPU,
	corev1.ResourceMemory,
	corev1.ResourceEphemeralStorage,
	corev1.ResourceRequestsCPU,
	corev1.ResourceRequestsMemory,
	corev1.ResourceRequestsEphemeralStorage,
	corev1.ResourceLimitsCPU,
	corev1.ResourceLimitsMemory,
	corev1.ResourceLimitsEphemeralStorage,
	corev1.ResourcePods,
}

// podResourcePrefixes (hugepages) are quota'd by prefix.
var podResourcePrefixes = []string{corev1.ResourceHugePagesPrefix, corev1.ResourceRequestsHugePagesPrefix}

// validationSet: a quota on any of these requires every container to set
// it (upstream's backward-compatible mistake, kept).
var validationSet = sets.New(
	corev1.ResourceCPU, corev1.ResourceMemory,
	corev1.ResourceRequestsCPU, corev1.ResourceRequestsMemory,
	corev1.ResourceLimitsCPU, corev1.ResourceLimitsMemory,
)

// NewPodEvaluator measures pods: their count and compute resources while
// not terminal.
func NewPodEvaluator(f quota.ListerForResourceFunc, c clock.Clock) quota.Evaluator {
	return &podEvaluator{list: generic.ListResourceUsingListerFunc(f, corev1.SchemeGroupVersion.WithResource("pods")), clock: c}
}

type podEvaluator struct {
	list  generic.ListFuncByNamespace
	clock clock.Clock
}

var _ quota.Evaluator = &podEvaluator{}

func toPod(obj runtime.Object) (*corev1.Pod, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, fmt.Errorf("expect *api.Pod or *v1.Pod, got %T", obj)
	}
	return pod, nil
}

// Constraints requires each container to set the cpu/memory resources
// that a quota tracks, unless the pod sets pod-level resources.
func (e *podEvaluator) Constraints(required []corev1.ResourceName, item runtime.Object) error {
	pod, err := toPod(item)
	if err != nil {
		return err
	}
	if resourcehelper.IsPodLevelResourcesSet(pod) {
		return nil
	}
	requiredSet := sets.New(required...).Intersection(validationSet)
	missing := map[corev1.ResourceName]sets.Set[string]{}
	check := func(c *corev1.Container) {
		have := sets.New(quota.ResourceNames(podComputeUsage(c.Resources.Requests, c.Resources.Limits))...)
		for _, r := range sets.List(requiredSet.Difference(have)) {
			if missing[r] == nil {
				missing[r] = sets.New[string]()
			}
			missing[r].Insert(c.Name)
		}
	}
	for i := range pod.Spec.Containers {
		check(&pod.Spec.Containers[i])
	}
	for i := range pod.Spec.InitContainers {
		check(&pod.Spec.InitContainers[i])
	}
	if len(missing) == 0 {
		return nil
	}
	names := make([]string, 0, len(missing))
	for r := range missing {
		names = append(names, string(r))
	}
	sort.Strings(names)
	msgs := make([]string, 0, len(names))
	for _, r := range names {
		msgs = append(msgs, fmt.Sprintf("%s for: %s", r, strings.Join(sets.List(missing[corev1.ResourceName(r)]), ",")))
	}
	return fmt.Errorf("must specify %s", strings.Join(msgs, "; "))
}

func (e *podEvaluator) GroupResource() schema.GroupResource { return podGR }

// Handles creates, updates that change the Terminating scope, and resizes.
func (e *podEvaluator) Handles(a admission.Attributes) bool {
	op := a.GetOperation()
	switch a.GetSubresource() {
	case "":
		if op == admission.Update {
			pod, ok1 := a.GetObject().(*corev1.Pod)
			old, ok2 := a.GetOldObject().(*corev1.Pod)
			if !ok1 || !ok2 {
				return false
			}
			if IsTerminating(old) != IsTerminating(pod) {
				return true
			}
		}
		return op == admission.Create
	case "resize":
		return op == admission.Update
	}
	return false
}

func (e *podEvaluator) Matches(q *corev1.ResourceQuota, item runtime.Object) (bool, error) {
	return generic.Matches(q, item, e.MatchingResources, podMatchesScope)
}

func (e *podEvaluator) MatchingResources(input []corev1.ResourceName) []corev1.ResourceName {
	result := quota.Intersection(input, podResources)
	for _, r := range input {
		if quota.ContainsPrefix(podResourcePrefixes, r) || isExtendedResourceNameForQuota(r) {
			result = append(result, r)
		}
	}
	return result
}

func (e *podEvaluator) MatchingScopes(item runtime.Object, selectors []corev1.ScopedResourceSelectorRequirement) ([]corev1.ScopedResourceSelectorRequirement, error) {
	matched := []corev1.ScopedResourceSelectorRequirement{}
	for _, s := range selectors {
		ok, err := podMatchesScope(s, item)
		if err != nil {
			return []corev1.ScopedResourceSelectorRequirement{}, fmt.Errorf("error on matching scope %v: %v", s, err)
		}
		if ok {
			matched = append(matched, s)
		}
	}
	return matched, nil
}

func (e *podEvaluator) UncoveredQuotaScopes(limited, matched []corev1.ScopedResourceSelectorRequirement) ([]corev1.ScopedResourceSelectorRequirement, error) {
	return uncovered(limited, matched), nil
}

func (e *podEvaluator) Usage(item runtime.Object) (corev1.ResourceList, error) {
	return PodUsage(item, e.clock)
}

func (e *podEvaluator) UsageStats(options quota.UsageStatsOptions) (quota.UsageStats, error) {
	return generic.CalculateUsageStats(options, e.list, podMatchesScope, e.Usage)
}

// PodUsage is a pod's charge: always count/pods; its compute resources and
// `pods` only while it is not terminal (nor stuck past its deletion grace
// period).
func PodUsage(obj runtime.Object, c clock.Clock) (corev1.ResourceList, error) {
	pod, err := toPod(obj)
	if err != nil {
		return corev1.ResourceList{}, err
	}
	result := corev1.ResourceList{podObjectCountName: *resource.NewQuantity(1, resource.DecimalSI)}
	if !QuotaV1Pod(pod, c) {
		return result, nil
	}
	opts := resourcehelper.PodResourcesOptions{UseStatusResources: true}
	return quota.Add(result, podComputeUsage(resourcehelper.PodRequests(pod, opts), resourcehelper.PodLimits(pod, opts))), nil
}

func podComputeUsage(requests, limits corev1.ResourceList) corev1.ResourceList {
	result := corev1.ResourceList{corev1.ResourcePods: resource.MustParse("1")}
	if r, ok := requests[corev1.ResourceCPU]; ok {
		result[corev1.ResourceCPU] = r
		result[corev1.ResourceRequestsCPU] = r
	}
	if l, ok := limits[corev1.ResourceCPU]; ok {
		result[corev1.ResourceLimitsCPU] = l
	}
	if r, ok := requests[corev1.ResourceMemory]; ok {
		result[corev1.ResourceMemory] = r
		result[corev1.ResourceRequestsMemory] = r
	}
	if l, ok := limits[corev1.ResourceMemory]; ok {
		result[corev1.ResourceLimitsMemory] = l
	}
	if r, ok := requests[corev1.ResourceEphemeralStorage]; ok {
		result[corev1.ResourceEphemeralStorage] = r
		result[corev1.ResourceRequestsEphemeralStorage] = r
	}
	if l, ok := limits[corev1.ResourceEphemeralStorage]; ok {
		result[corev1.ResourceLimitsEphemeralStorage] = l
	}
	for name, r := range requests {
		if strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix) {
			result[name] = r
			result[corev1.ResourceName(corev1.DefaultResourceRequestsPrefix+string(name))] = r
		}
		if helper.IsExtendedResourceName(name) || strings.HasPrefix(string(name), deviceClassPrefix) {
			result[corev1.ResourceName(corev1.DefaultResourceRequestsPrefix+string(name))] = r
		}
	}
	return result
}

// isExtendedResourceNameForQuota: requests.<extended resource> (also the
// implicit requests.deviceclass.resource.kubernetes.io/<class>).
func isExtendedResourceNameForQuota(name corev1.ResourceName) bool {
	implicit := strings.HasPrefix(string(name), corev1.DefaultResourceRequestsPrefix+deviceClassPrefix)
	return (!helper.IsNativeResource(name) || implicit) && strings.HasPrefix(string(name), corev1.DefaultResourceRequestsPrefix)
}

func podMatchesScope(selector corev1.ScopedResourceSelectorRequirement, object runtime.Object) (bool, error) {
	pod, err := toPod(object)
	if err != nil {
		return false, err
	}
	switch selector.ScopeName {
	case corev1.ResourceQuotaScopeTerminating:
		return IsTerminating(pod), nil
	case corev1.ResourceQuotaScopeNotTerminating:
		return !IsTerminating(pod), nil
	case corev1.ResourceQuotaScopeBestEffort:
		return IsBestEffort(pod), nil
	case corev1.ResourceQuotaScopeNotBestEffort:
		return !IsBestEffort(pod), nil
	case corev1.ResourceQuotaScopePriorityClass:
		if selector.Operator == corev1.ScopeSelectorOpExists {
			return pod.Spec.PriorityClassName != "", nil
		}
		s, err := scopeSelector(selector)
		if err != nil {
			return false, fmt.Errorf("failed to parse and convert selector: %v", err)
		}
		var m labels.Set
		if pod.Spec.PriorityClassName != "" {
			m = labels.Set{string(corev1.ResourceQuotaScopePriorityClass): pod.Spec.PriorityClassName}
		}
		return s.Matches(m), nil
	case corev1.ResourceQuotaScopeCrossNamespacePodAffinity:
		return usesCrossNamespacePodAffinity(pod), nil
	}
	return false, nil
}

// IsTerminating: the pod has an activeDeadlineSeconds.
func IsTerminating(pod *corev1.Pod) bool {
	return pod.Spec.ActiveDeadlineSeconds != nil && *pod.Spec.ActiveDeadlineSeconds >= 0
}

// IsBestEffort: no container (or the pod level, when set) requests or
// limits cpu or memory.
func IsBestEffort(pod *corev1.Pod) bool {
	bestEffort := func(r *corev1.ResourceRequirements) bool {
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, lim := r.Requests[name], r.Limits[name]
			if !req.IsZero() || !lim.IsZero() {
				return false
			}
		}
		return true
	}
	if pod.Spec.Resources != nil && resourcehelper.IsPodLevelResourcesSet(pod) {
		return bestEffort(pod.Spec.Resources)
	}
	for i := range pod.Spec.InitContainers {
		if !bestEffort(&pod.Spec.InitContainers[i].Resources) {
			return false
		}
	}
	for i := range pod.Spec.Containers {
		if !bestEffort(&pod.Spec.Containers[i].Resources) {
			return false
		}
	}
	return true
}

func usesCrossNamespacePodAffinity(pod *corev1.Pod) bool {
	if pod.Spec.Affinity == nil {
		return false
	}
	cross := func(t *corev1.PodAffinityTerm) bool { return len(t.Namespaces) != 0 || t.NamespaceSelector != nil }
	check := func(required []corev1.PodAffinityTerm, preferred []corev1.WeightedPodAffinityTerm) bool {
		for i := range required {
			if cross(&required[i]) {
				return true
			}
		}
		for i := range preferred {
			if cross(&preferred[i].PodAffinityTerm) {
				return true
			}
		}
		return false
	}
	if a := pod.Spec.Affinity.PodAffinity; a != nil && check(a.RequiredDuringSchedulingIgnoredDuringExecution, a.PreferredDuringSchedulingIgnoredDuringExecution) {
		return true
	}
	if a := pod.Spec.Affinity.PodAntiAffinity; a != nil && check(a.RequiredDuringSchedulingIgnoredDuringExecution, a.PreferredDuringSchedulingIgnoredDuringExecution) {
		return true
	}
	return false
}

// QuotaV1Pod tells whether a pod is charged: not terminal, and not stuck
// past its deletion grace period.
func QuotaV1Pod(pod *corev1.Pod, c clock.Clock) bool {
	if pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded {
		return false
	}
	if pod.DeletionTimestamp != nil && pod.DeletionGracePeriodSeconds != nil {
		grace := time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
		if c.Now().After(pod.DeletionTimestamp.Add(grace)) {
			return false
		}
	}
	return true
}
