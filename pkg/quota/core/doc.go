// Package core holds upstream's quota evaluators for the core resources that
// need more than an object count: pods (count, compute requests and limits,
// the Terminating/NotTerminating/BestEffort/NotBestEffort/PriorityClass/
// CrossNamespacePodAffinity scopes), services (count, load balancers, node
// ports) and persistentvolumeclaims (count, requests.storage, per storage
// class), plus the legacy object-count aliases (configmaps, secrets,
// replicationcontrollers, resourcequotas). Every other resource is counted
// as count/<resource>.<group> by k8s.io/apiserver's generic evaluator.
package core

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	quota "k8s.io/apiserver/pkg/quota/v1"
	"k8s.io/apiserver/pkg/quota/v1/generic"
	"k8s.io/utils/clock"
)

// legacyObjectCountAliases are the short names of object-count quotas.
var legacyObjectCountAliases = map[schema.GroupVersionResource]corev1.ResourceName{
	corev1.SchemeGroupVersion.WithResource("configmaps"):             corev1.ResourceConfigMaps,
	corev1.SchemeGroupVersion.WithResource("resourcequotas"):         corev1.ResourceQuotas,
	corev1.SchemeGroupVersion.WithResource("replicationcontrollers"): corev1.ResourceReplicationControllers,
	corev1.SchemeGroupVersion.WithResource("secrets"):                corev1.ResourceSecrets,
}

// NewEvaluators returns the evaluators of the core resources; f lists the
// objects for usage stats (nil in admission, which only measures the
// incoming object).
func NewEvaluators(f quota.ListerForResourceFunc) []quota.Evaluator {
	result := []quota.Evaluator{
		NewPodEvaluator(f, clock.RealClock{}),
		NewServiceEvaluator(f),
		NewPersistentVolumeClaimEvaluator(f),
	}
	for gvr, alias := range legacyObjectCountAliases {
		result = append(result, generic.NewObjectCountEvaluator(gvr.GroupResource(), generic.ListResourceUsingListerFunc(f, gvr), alias))
	}
	return result
}

// IgnoredResources are never quota'd (upstream's list for admission).
var IgnoredResources = map[schema.GroupResource]struct{}{
	{Group: "", Resource: "events"}: {},
}

// NewConfiguration is the quota configuration of the admission plugin.
func NewConfiguration() quota.Configuration {
	return generic.NewConfiguration(NewEvaluators(nil), IgnoredResources)
}

// scopeSelector turns a scope selector requirement into a label selector
// over the scope's name.
func scopeSelector(ssr corev1.ScopedResourceSelectorRequirement) (labels.Selector, error) {
	var op selection.Operator
	switch ssr.Operator {
	case corev1.ScopeSelectorOpIn:
		op = selection.In
	case corev1.ScopeSelectorOpNotIn:
		op = selection.NotIn
	case corev1.ScopeSelectorOpExists:
		op = selection.Exists
	case corev1.ScopeSelectorOpDoesNotExist:
		op = selection.DoesNotExist
	default:
		return nil, fmt.Errorf("%q is not a valid scope selector operator", ssr.Operator)
	}
	r, err := labels.NewRequirement(string(ssr.ScopeName), op, ssr.Values)
	if err != nil {
		return nil, err
	}
	return labels.NewSelector().Add(*r), nil
}

// uncovered are the limited scopes no matched quota scope covers.
func uncovered(limited, matched []corev1.ScopedResourceSelectorRequirement) []corev1.ScopedResourceSelectorRequirement {
	out := []corev1.ScopedResourceSelectorRequirement{}
	for _, l := range limited {
		covered := false
		for _, m := range matched {
			if m.ScopeName == l.ScopeName {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, l)
		}
	}
	return out
}
