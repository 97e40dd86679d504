package noderesources

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	configv1 "k8s.io/kube-scheduler/config/v1"
)

// defaultResources: cpu and memory, weight 1 each (upstream's default for
// both plugins).
func defaultResources() []configv1.ResourceSpec {
	return []configv1.ResourceSpec{{Name: "cpu", Weight: 1}, {Name: "memory", Weight: 1}}
}

// fitArgs is args as *NodeResourcesFitArgs, defaulted as upstream's
// SetDefaults_NodeResourcesFitArgs (nil: all defaults) and validated.
func fitArgs(obj runtime.Object) (*configv1.NodeResourcesFitArgs, error) {
	var a *configv1.NodeResourcesFitArgs
	switch t := obj.(type) {
	case nil:
		a = &configv1.NodeResourcesFitArgs{}
	case *configv1.NodeResourcesFitArgs:
		a = t.DeepCopy()
	default:
		return nil, fmt.Errorf("want args to be of type NodeResourcesFitArgs, got %T", obj)
	}
	if a.ScoringStrategy == nil {
		a.ScoringStrategy = &configv1.ScoringStrategy{Type: configv1.LeastAllocated}
	}
	s := a.ScoringStrategy
	if s.Type == "" {
		s.Type = configv1.LeastAllocated
	}
	if len(s.Resources) == 0 {
		s.Resources = defaultResources()
	}
	for i := range s.Resources {
		if s.Resources[i].Weight == 0 {
			s.Resources[i].Weight = 1
		}
	}
	var errs []string
	for _, r := range a.IgnoredResources {
		if len(validation.IsQualifiedName(r)) > 0 {
			errs = append(errs, fmt.Sprintf("ignoredResources: Invalid value: %q: is an invalid resource name", r))
		}
	}
	for _, g := range a.IgnoredResourceGroups {
		if strings.Contains(g, "/") {
			errs = append(errs, fmt.Sprintf("ignoredResourceGroups: Invalid value: %q: resource group name can't contain '/'", g))
		}
	}
	switch s.Type {
	case configv1.LeastAllocated, configv1.MostAllocated:
		if s.RequestedToCapacityRatio != nil {
			errs = append(errs, "scoringStrategy.requestedToCapacityRatio: Forbidden: must be nil when type is not RequestedToCapacityRatio")
		}
	case configv1.RequestedToCapacityRatio:
		if s.RequestedToCapacityRatio == nil {
			errs = append(errs, "scoringStrategy.requestedToCapacityRatio: Required value: must be specified when type is RequestedToCapacityRatio")
		} else {
			errs = append(errs, validateShape(s.RequestedToCapacityRatio.Shape)...)
		}
	default:
		errs = append(errs, fmt.Sprintf("scoringStrategy.type: Unsupported value: %q", s.Type))
	}
	for _, r := range s.Resources {
		if r.Weight <= 0 || r.Weight > 100 {
			errs = append(errs, fmt.Sprintf("scoringStrategy.resources: Invalid value: %d: resource weight of %s not in valid range (0, 100]", r.Weight, r.Name))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, ", "))
	}
	return a, nil
}

func validateShape(shape []configv1.UtilizationShapePoint) []string {
	if len(shape) == 0 {
		return []string{"scoringStrategy.requestedToCapacityRatio.shape: Required value: at least one point must be specified"}
	}
	var errs []string
	for i, p := range shape {
		if i > 0 && shape[i-1].Utilization >= p.Utilization {
			errs = append(errs, fmt.Sprintf("shape[%d].utilization: Invalid value: %d: values must be sorted in increasing order", i, p.Utilization))
		}
		if p.Utilization < 0 || p.Utilization > 100 {
			errs = append(errs, fmt.Sprintf("shape[%d].utilization: Invalid value: %d: not in valid range [0, 100]", i, p.Utilization))
		}
		if p.Score < 0 || p.Score > maxCustomPriorityScore {
			errs = append(errs, fmt.Sprintf("shape[%d].score: Invalid value: %d: not in valid range [0, %d]", i, p.Score, maxCustomPriorityScore))
		}
	}
	return errs
}

// balancedArgs is args as *NodeResourcesBalancedAllocationArgs, defaulted
// and validated (every weight must be 1).
func balancedArgs(obj runtime.Object) (*configv1.NodeResourcesBalancedAllocationArgs, error) {
	var a *configv1.NodeResourcesBalancedAllocationArgs
	switch t := obj.(type) {
	case nil:
		a = &configv1.NodeResourcesBalancedAllocationArgs{}
	case *configv1.NodeResourcesBalancedAllocationArgs:
		a = t.DeepCopy()
	default:
		return nil, fmt.Errorf("want args to be of type NodeResourcesBalancedAllocationArgs, got %T", obj)
	}
	if len(a.Resources) == 0 {
		a.Resources = defaultResources()
	}
	for i := range a.Resources {
		if a.Resources[i].Weight == 0 {
			a.Resources[i].Weight = 1
		}
		if a.Resources[i].Weight != 1 {
			return nil, fmt.Errorf("resources[%d].weight: Invalid value: %d: must be 1", i, a.Resources[i].Weight)
		}
	}
	return a, nil
}
