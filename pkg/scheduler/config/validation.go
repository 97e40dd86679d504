package config

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	configv1 "k8s.io/kube-scheduler/config/v1"
)

// removedPlugins were dropped before v1; naming one is an error.
var removedPlugins = sets.New("AzureDiskLimits", "CinderLimits", "EBSLimits", "GCEPDLimits")

// MaxWeight bounds a score plugin's weight so that the weighted sum cannot
// overflow (upstream's MaxTotalScore / MaxCustomPriorityScore).
const MaxWeight = int64(1<<63-1) / MaxCustomPriorityScore

// Validate checks a defaulted configuration as upstream's
// ValidateKubeSchedulerConfiguration; every problem is reported.
func Validate(cfg *configv1.KubeSchedulerConfiguration) error {
	var errs field.ErrorList
	le := cfg.LeaderElection
	lePath := field.NewPath("leaderElection")
	if le.LeaderElect != nil && *le.LeaderElect {
		if le.ResourceLock != "leases" {
			errs = append(errs, field.Invalid(lePath.Child("resourceLock"), le.ResourceLock, `resourceLock value must be "leases"`))
		}
		if le.LeaseDuration.Duration <= 0 {
			errs = append(errs, field.Invalid(lePath.Child("leaseDuration"), le.LeaseDuration, "must be greater than zero"))
		}
		if le.RenewDeadline.Duration <= 0 {
			errs = append(errs, field.Invalid(lePath.Child("renewDeadline"), le.RenewDeadline, "must be greater than zero"))
		}
		if le.RetryPeriod.Duration <= 0 {
			errs = append(errs, field.Invalid(lePath.Child("retryPeriod"), le.RetryPeriod, "must be greater than zero"))
		}
		if le.LeaseDuration.Duration <= le.RenewDeadline.Duration {
			errs = append(errs, field.Invalid(lePath.Child("leaseDuration"), le.RenewDeadline, "LeaseDuration must be greater than RenewDeadline"))
		}
	}
	if cfg.ClientConnection.Burst < 0 {
		errs = append(errs, field.Invalid(field.NewPath("clientConnection", "burst"), cfg.ClientConnection.Burst, "must be non-negative"))
	}
	if *cfg.Parallelism <= 0 {
		errs = append(errs, field.Invalid(field.NewPath("parallelism"), *cfg.Parallelism, "should be an integer value greater than zero"))
	}
	profilesPath := field.NewPath("profiles")
	if len(cfg.Profiles) == 0 {
		errs = append(errs, field.Required(profilesPath, ""))
	} else {
		seen := map[string]int{}
		for i := range cfg.Profiles {
			p := &cfg.Profiles[i]
			path := profilesPath.Index(i)
			errs = append(errs, validateProfile(path, p)...)
			name := ptrString(p.SchedulerName)
			if j, ok := seen[name]; ok {
				errs = append(errs, field.Duplicate(path.Child("schedulerName"), profilesPath.Index(j).Child("schedulerName").String()))
			}
			seen[name] = i
		}
		errs = append(errs, validateCommonQueueSort(profilesPath, cfg.Profiles)...)
	}
	errs = append(errs, validatePercentage(field.NewPath("percentageOfNodesToScore"), cfg.PercentageOfNodesToScore)...)
	if *cfg.PodInitialBackoffSeconds <= 0 {
		errs = append(errs, field.Invalid(field.NewPath("podInitialBackoffSeconds"), *cfg.PodInitialBackoffSeconds, "must be greater than 0"))
	}
	if *cfg.PodMaxBackoffSeconds < *cfg.PodInitialBackoffSeconds {
		errs = append(errs, field.Invalid(field.NewPath("podMaxBackoffSeconds"), *cfg.PodMaxBackoffSeconds, "must be greater than or equal to PodInitialBackoffSeconds"))
	}
	if len(cfg.Extenders) > 0 {
		errs = append(errs, field.Forbidden(field.NewPath("extenders"), "scheduler extenders are not supported by skiff"))
	}
	return utilerrors.Flatten(errs.ToAggregate())
}

func ptrString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func validatePercentage(path *field.Path, p *int32) field.ErrorList {
	if p != nil && (*p < 0 || *p > 100) {
		return field.ErrorList{field.Invalid(path, *p, "not in valid range [0-100]")}
	}
	return nil
}

func validateProfile(path *field.Path, p *configv1.KubeSchedulerProfile) field.ErrorList {
	var errs field.ErrorList
	if ptrString(p.SchedulerName) == "" {
		errs = append(errs, field.Required(path.Child("schedulerName"), ""))
	}
	errs = append(errs, validatePercentage(path.Child("percentageOfNodesToScore"), p.PercentageOfNodesToScore)...)
	for point, set := range ExtensionPoints(p.Plugins) {
		for i, pl := range set.Enabled {
			pp := path.Child("plugins", point, "enabled").Index(i)
			if removedPlugins.Has(pl.Name) {
				errs = append(errs, field.Invalid(pp, pl.Name, fmt.Sprintf("was invalid in version %q (KubeSchedulerConfiguration is version %q)", configv1.SchemeGroupVersion, configv1.SchemeGroupVersion)))
			}
			if pl.Weight != nil && (*pl.Weight < 0 || int64(*pl.Weight) > MaxWeight) {
				errs = append(errs, field.Invalid(pp.Child("weight"), *pl.Weight, fmt.Sprintf("must be in the range [0, %d]", MaxWeight)))
			}
		}
	}
	seen := sets.New[string]()
	for i, pc := range p.PluginConfig {
		pp := path.Child("pluginConfig").Index(i)
		if seen.Has(pc.Name) {
			errs = append(errs, field.Duplicate(pp, pc.Name))
		}
		seen.Insert(pc.Name)
		if removedPlugins.Has(pc.Name) {
			errs = append(errs, field.Invalid(pp, pc.Name, fmt.Sprintf("was invalid in version %q (KubeSchedulerConfiguration is version %q)", configv1.SchemeGroupVersion, configv1.SchemeGroupVersion)))
			continue
		}
		errs = append(errs, validateArgs(pp.Child("args"), pc)...)
	}
	return errs
}

func validateCommonQueueSort(path *field.Path, profiles []configv1.KubeSchedulerProfile) field.ErrorList {
	var errs field.ErrorList
	canon := profiles[0].Plugins.QueueSort
	if n := len(canon.Enabled); n > 1 {
		errs = append(errs, field.Invalid(path.Index(0).Child("plugins", "queueSort", "Enabled"), n, "only one queue sort plugin can be enabled"))
	}
	for i := 1; i < len(profiles); i++ {
		if cur := profiles[i].Plugins.QueueSort; !apiequality.Semantic.DeepEqual(canon, cur) {
			errs = append(errs, field.Invalid(path.Index(i).Child("plugins", "queueSort"), cur, "must be the same for all profiles"))
		}
	}
	return errs
}

// validateArgs validates one plugin's args as upstream's Validate*Args.
func validateArgs(path *field.Path, pc configv1.PluginConfig) field.ErrorList {
	obj := pc.Args.Object
	if obj == nil {
		return nil
	}
	if want := pc.Name + "Args"; obj.GetObjectKind().GroupVersionKind().Kind != "" && obj.GetObjectKind().GroupVersionKind().Kind != want {
		return field.ErrorList{field.Invalid(path, obj.GetObjectKind().GroupVersionKind().Kind, "has to match plugin args")}
	}
	var errs field.ErrorList
	switch a := obj.(type) {
	case *configv1.DefaultPreemptionArgs:
		pct, abs := *a.MinCandidateNodesPercentage, *a.MinCandidateNodesAbsolute
		if pct < 0 || pct > 100 {
			errs = append(errs, field.Invalid(path.Child("minCandidateNodesPercentage"), pct, "not in valid range [0, 100]"))
		}
		if abs < 0 {
			errs = append(errs, field.Invalid(path.Child("minCandidateNodesAbsolute"), abs, "not in valid range [0, inf)"))
		}
		if pct == 0 && abs == 0 {
			errs = append(errs,
				field.Invalid(path.Child("minCandidateNodesPercentage"), pct, "cannot be zero at the same time as minCandidateNodesAbsolute"),
				field.Invalid(path.Child("minCandidateNodesAbsolute"), abs, "cannot be zero at the same time as minCandidateNodesPercentage"))
		}
	case *configv1.InterPodAffinityArgs:
		if w := *a.HardPodAffinityWeight; w < 0 || w > 100 {
			errs = append(errs, field.Invalid(path.Child("hardPodAffinityWeight"), w, "not in valid range [0, 100]"))
		}
	case *configv1.NodeResourcesBalancedAllocationArgs:
		for i, r := range a.Resources {
			if r.Weight != 1 {
				errs = append(errs, field.Invalid(path.Child("resources").Index(i).Child("weight"), r.Weight, "must be 1"))
			}
		}
	case *configv1.NodeResourcesFitArgs:
		errs = append(errs, validateFitArgs(path, a)...)
	case *configv1.PodTopologySpreadArgs:
		errs = append(errs, validateSpreadArgs(path, a)...)
	case *configv1.VolumeBindingArgs:
		if *a.BindTimeoutSeconds < 0 {
			errs = append(errs, field.Invalid(path.Child("bindTimeoutSeconds"), *a.BindTimeoutSeconds, "invalid BindTimeoutSeconds, should not be a negative value"))
		}
		errs = append(errs, validateShape(path.Child("shape"), a.Shape)...)
	case *configv1.DynamicResourcesArgs:
		if a.FilterTimeout != nil && a.FilterTimeout.Duration < 0 {
			errs = append(errs, field.Invalid(path.Child("filterTimeout"), a.FilterTimeout, "must be zero or positive"))
		}
	}
	return errs
}

func validateFitArgs(path *field.Path, a *configv1.NodeResourcesFitArgs) field.ErrorList {
	var errs field.ErrorList
	for i, r := range a.IgnoredResources {
		if len(validation.IsQualifiedName(r)) > 0 {
			errs = append(errs, field.Invalid(path.Child("ignoredResources").Index(i), r, "is an invalid resource name"))
		}
	}
	for i, g := range a.IgnoredResourceGroups {
		if strings.Contains(g, "/") {
			errs = append(errs, field.Invalid(path.Child("ignoredResourceGroups").Index(i), g, "resource group name can't contain '/'"))
		}
	}
	sp := path.Child("scoringStrategy")
	s := a.ScoringStrategy
	if s == nil {
		return append(errs, field.Required(sp, "ScoringStrategy field is required"))
	}
	types := []string{string(configv1.LeastAllocated), string(configv1.MostAllocated), string(configv1.RequestedToCapacityRatio)}
	if !sets.New(types...).Has(string(s.Type)) {
		errs = append(errs, field.NotSupported(sp.Child("type"), s.Type, types))
	}
	errs = append(errs, validateResources(sp.Child("resources"), s.Resources)...)
	if s.Type == configv1.RequestedToCapacityRatio {
		if s.RequestedToCapacityRatio == nil {
			errs = append(errs, field.Required(sp.Child("requestedToCapacityRatio"), "must be specified when type is RequestedToCapacityRatio"))
		} else {
			errs = append(errs, validateShape(sp.Child("requestedToCapacityRatio", "shape"), s.RequestedToCapacityRatio.Shape)...)
		}
	} else if s.RequestedToCapacityRatio != nil {
		errs = append(errs, field.Forbidden(sp.Child("requestedToCapacityRatio"), "must be nil when type is not RequestedToCapacityRatio"))
	}
	return errs
}

func validateResources(path *field.Path, rs []configv1.ResourceSpec) field.ErrorList {
	var errs field.ErrorList
	for i, r := range rs {
		if r.Weight <= 0 || r.Weight > 100 {
			errs = append(errs, field.Invalid(path.Index(i).Child("weight"), r.Weight, "resource weight of "+r.Name+" not in valid range (0, 100]"))
		}
	}
	return errs
}

func validateShape(path *field.Path, shape []configv1.UtilizationShapePoint) field.ErrorList {
	var errs field.ErrorList
	if len(shape) == 0 {
		return append(errs, field.Required(path, "at least one point must be specified"))
	}
	for i, p := range shape {
		if i > 0 && shape[i-1].Utilization >= p.Utilization {
			errs = append(errs, field.Invalid(path.Index(i).Child("utilization"), p.Utilization, "values must be sorted in increasing order"))
		}
		if p.Utilization < 0 || p.Utilization > 100 {
			errs = append(errs, field.Invalid(path.Index(i).Child("utilization"), p.Utilization, "not in valid range [0, 100]"))
		}
		if p.Score < 0 || p.Score > MaxCustomPriorityScore {
			errs = append(errs, field.Invalid(path.Index(i).Child("score"), p.Score, fmt.Sprintf("not in valid range [0, %d]", MaxCustomPriorityScore)))
		}
	}
	return errs
}

func validateSpreadArgs(path *field.Path, a *configv1.PodTopologySpreadArgs) field.ErrorList {
	var errs field.ErrorList
	dp := path.Child("defaultConstraints")
	for i, c := range a.DefaultConstraints {
		p := dp.Index(i)
		if c.MaxSkew <= 0 {
			errs = append(errs, field.Invalid(p.Child("maxSkew"), c.MaxSkew, "not in valid range (0, inf)"))
		}
		if c.TopologyKey == "" {
			errs = append(errs, field.Required(p.Child("topologyKey"), "can not be empty"))
		}
		actions := []string{string(v1.DoNotSchedule), string(v1.ScheduleAnyway)}
		if c.WhenUnsatisfiable == "" {
			errs = append(errs, field.Required(p.Child("whenUnsatisfiable"), "can not be empty"))
		} else if !sets.New(actions...).Has(string(c.WhenUnsatisfiable)) {
			errs = append(errs, field.NotSupported(p.Child("whenUnsatisfiable"), c.WhenUnsatisfiable, actions))
		}
		if c.LabelSelector != nil {
			errs = append(errs, field.Forbidden(p.Child("labelSelector"), "constraint must not define a selector, as they deduced for each pod"))
		}
	}
	types := []string{string(configv1.SystemDefaulting), string(configv1.ListDefaulting)}
	switch a.DefaultingType {
	case configv1.ListDefaulting:
	case configv1.SystemDefaulting:
		if len(a.DefaultConstraints) > 0 {
			errs = append(errs, field.Invalid(path.Child("defaultingType"), a.DefaultingType, "when .defaultConstraints are not empty"))
		}
	default:
		errs = append(errs, field.NotSupported(path.Child("defaultingType"), a.DefaultingType, types))
	}
	return errs
}
