package config

import (
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	componentbaseconfigv1alpha1 "k8s.io/component-base/config/v1alpha1"
	"k8s.io/klog/v2"
	configv1 "k8s.io/kube-scheduler/config/v1"
	"k8s.io/utils/ptr"
)

// Upstream's defaults (pkg/scheduler/apis/config/v1 of v1.37).
const (
	DefaultParallelism              = 16
	DefaultPercentageOfNodesToScore = 0 // adaptive
	DefaultPodInitialBackoffSeconds = 1
	DefaultPodMaxBackoffSeconds     = 10
	// MaxCustomPriorityScore is the top of a utilization shape's scores.
	MaxCustomPriorityScore = 10
)

// NotImplemented are the plugins in upstream's default set that skiff
// does not have (yet); a framework built from the defaults leaves them
// out instead of failing.
var NotImplemented = sets.New("DynamicResources", "NodeDeclaredFeatures")

// DefaultPlugins is upstream v1.37's default MultiPoint set with the
// feature gates at their defaults: DynamicResources (DRA, GA) before
// DefaultPreemption and NodeDeclaredFeatures (GA) last.
func DefaultPlugins() *configv1.Plugins {
	w := func(n int32) *int32 { return &n }
	return &configv1.Plugins{MultiPoint: configv1.PluginSet{Enabled: []configv1.Plugin{
		{Name: "SchedulingGates"},
		{Name: "PrioritySort"},
		{Name: "NodeName"},
		{Name: "NodeUnschedulable"},
		{Name: "TaintToleration", Weight: w(3)},
		{Name: "NodeAffinity", Weight: w(2)},
		{Name: "NodePorts"},
		{Name: "NodeResourcesFit", Weight: w(1)},
		{Name: "VolumeRestrictions"},
		{Name: "NodeVolumeLimits"},
		{Name: "VolumeBinding"},
		{Name: "VolumeZone"},
		{Name: "PodTopologySpread", Weight: w(2)},
		{Name: "InterPodAffinity", Weight: w(2)},
		{Name: "DynamicResources", Weight: w(2)},
		{Name: "DefaultPreemption"},
		{Name: "NodeResourcesBalancedAllocation", Weight: w(1)},
		{Name: "ImageLocality", Weight: w(1)},
		{Name: "DefaultBinder"},
		{Name: "NodeDeclaredFeatures"},
	}}}
}

// SetDefaults fills cfg as upstream's SetDefaults_KubeSchedulerConfiguration.
func SetDefaults(cfg *configv1.KubeSchedulerConfiguration) {
	if cfg.Parallelism == nil {
		cfg.Parallelism = ptr.To[int32](DefaultParallelism)
	}
	if len(cfg.Profiles) == 0 {
		cfg.Profiles = append(cfg.Profiles, configv1.KubeSchedulerProfile{})
	}
	if len(cfg.Profiles) == 1 && cfg.Profiles[0].SchedulerName == nil {
		cfg.Profiles[0].SchedulerName = ptr.To(v1.DefaultSchedulerName)
	}
	for i := range cfg.Profiles {
		defaultProfile(&cfg.Profiles[i])
	}
	if cfg.PercentageOfNodesToScore == nil {
		cfg.PercentageOfNodesToScore = ptr.To[int32](DefaultPercentageOfNodesToScore)
	}
	le := &cfg.LeaderElection
	if le.ResourceLock == "" {
		le.ResourceLock = "leases"
	}
	if le.ResourceNamespace == "" {
		le.ResourceNamespace = configv1.SchedulerDefaultLockObjectNamespace
	}
	if le.ResourceName == "" {
		le.ResourceName = configv1.SchedulerDefaultLockObjectName
	}
	if cfg.ClientConnection.ContentType == "" {
		cfg.ClientConnection.ContentType = "application/vnd.kubernetes.protobuf"
	}
	if cfg.ClientConnection.QPS == 0 {
		cfg.ClientConnection.QPS = 50
	}
	if cfg.ClientConnection.Burst == 0 {
		cfg.ClientConnection.Burst = 100
	}
	componentbaseconfigv1alpha1.RecommendedDefaultLeaderElectionConfiguration(le)
	if cfg.PodInitialBackoffSeconds == nil {
		cfg.PodInitialBackoffSeconds = ptr.To[int64](DefaultPodInitialBackoffSeconds)
	}
	if cfg.PodMaxBackoffSeconds == nil {
		cfg.PodMaxBackoffSeconds = ptr.To[int64](DefaultPodMaxBackoffSeconds)
	}
	if cfg.EnableProfiling == nil {
		cfg.EnableProfiling = ptr.To(true)
	}
	if *cfg.EnableProfiling && cfg.EnableContentionProfiling == nil {
		cfg.EnableContentionProfiling = ptr.To(true)
	}
}

// defaultProfile merges the profile's plugins into the default set and
// adds defaulted args for every enabled plugin that takes some.
func defaultProfile(p *configv1.KubeSchedulerProfile) {
	p.Plugins = mergePlugins(DefaultPlugins(), p.Plugins)
	have := sets.New[string]()
	for i := range p.PluginConfig {
		have.Insert(p.PluginConfig[i].Name)
		if obj := p.PluginConfig[i].Args.Object; obj != nil {
			defaultArgs(obj)
		}
	}
	for _, name := range enabledNames(p.Plugins) {
		if have.Has(name) {
			continue
		}
		if args := NewArgs(name); args != nil {
			p.PluginConfig = append(p.PluginConfig, configv1.PluginConfig{Name: name, Args: runtime.RawExtension{Object: args}})
		}
	}
}

// ExtensionPoints are a Plugins' sets by the name configuration uses.
func ExtensionPoints(p *configv1.Plugins) map[string]*configv1.PluginSet {
	return map[string]*configv1.PluginSet{
		"multiPoint": &p.MultiPoint, "preEnqueue": &p.PreEnqueue, "queueSort": &p.QueueSort,
		"preFilter": &p.PreFilter, "filter": &p.Filter, "postFilter": &p.PostFilter,
		"preScore": &p.PreScore, "score": &p.Score, "reserve": &p.Reserve, "permit": &p.Permit,
		"preBind": &p.PreBind, "bind": &p.Bind, "postBind": &p.PostBind,
		"placementGenerate": &p.PlacementGenerate, "placementScore": &p.PlacementScore,
		"podGroupPostFilter": &p.PodGroupPostFilter,
	}
}

// enabledNames: every plugin enabled at some extension point, sorted.
func enabledNames(p *configv1.Plugins) []string {
	names := sets.New[string]()
	for _, set := range ExtensionPoints(p) {
		for _, pl := range set.Enabled {
			names.Insert(pl.Name)
		}
	}
	return sets.List(names)
}

// mergePlugins applies custom onto the defaults as upstream: per
// extension point, disabled names (or "*") drop defaults, a re-enabled
// default is replaced in place (keeping the order), others are appended.
func mergePlugins(defaults, custom *configv1.Plugins) *configv1.Plugins {
	if custom == nil {
		return defaults
	}
	d, c := ExtensionPoints(defaults), ExtensionPoints(custom)
	for point, set := range d {
		*set = mergePluginSet(*set, *c[point])
	}
	return defaults
}

func mergePluginSet(defaults, custom configv1.PluginSet) configv1.PluginSet {
	disabled := sets.New[string]()
	var disabledList []configv1.Plugin
	for _, p := range append(append([]configv1.Plugin(nil), custom.Disabled...), defaults.Disabled...) {
		disabledList = append(disabledList, configv1.Plugin{Name: p.Name})
		disabled.Insert(p.Name)
	}
	customIndex := map[string]int{}
	for i, p := range custom.Enabled {
		customIndex[p.Name] = i
	}
	replaced := sets.New[int]()
	var enabled []configv1.Plugin
	if !disabled.Has("*") {
		for _, p := range defaults.Enabled {
			if disabled.Has(p.Name) {
				continue
			}
			if i, ok := customIndex[p.Name]; ok {
				klog.V(2).InfoS("Default plugin is explicitly re-configured; overriding", "plugin", p.Name)
				p = custom.Enabled[i]
				replaced.Insert(i)
			}
			enabled = append(enabled, p)
		}
	}
	for i, p := range custom.Enabled {
		if !replaced.Has(i) {
			enabled = append(enabled, p)
		}
	}
	return configv1.PluginSet{Enabled: enabled, Disabled: disabledList}
}

var defaultResourceSpec = []configv1.ResourceSpec{{Name: string(v1.ResourceCPU), Weight: 1}, {Name: string(v1.ResourceMemory), Weight: 1}}

// defaultArgs defaults one plugin's args as upstream's SetDefaults_*Args
// with v1.37's default feature gates.
func defaultArgs(obj runtime.Object) {
	switch a := obj.(type) {
	case *configv1.DefaultPreemptionArgs:
		if a.MinCandidateNodesPercentage == nil {
			a.MinCandidateNodesPercentage = ptr.To[int32](10)
		}
		if a.MinCandidateNodesAbsolute == nil {
			a.MinCandidateNodesAbsolute = ptr.To[int32](100)
		}
	case *configv1.InterPodAffinityArgs:
		if a.HardPodAffinityWeight == nil {
			a.HardPodAffinityWeight = ptr.To[int32](1)
		}
	case *configv1.VolumeBindingArgs:
		if a.BindTimeoutSeconds == nil {
			a.BindTimeoutSeconds = ptr.To[int64](600)
		}
		// StorageCapacityScoring is beta and on in v1.37.
		if len(a.Shape) == 0 {
			a.Shape = []configv1.UtilizationShapePoint{{Utilization: 0, Score: MaxCustomPriorityScore}, {Utilization: 100, Score: 0}}
		}
	case *configv1.NodeResourcesBalancedAllocationArgs:
		if len(a.Resources) == 0 {
			a.Resources = append([]configv1.ResourceSpec(nil), defaultResourceSpec...)
		}
		for i := range a.Resources {
			if a.Resources[i].Weight == 0 {
				a.Resources[i].Weight = 1
			}
		}
	case *configv1.PodTopologySpreadArgs:
		if a.DefaultingType == "" {
			a.DefaultingType = configv1.SystemDefaulting
		}
	case *configv1.NodeResourcesFitArgs:
		if a.ScoringStrategy == nil {
			a.ScoringStrategy = &configv1.ScoringStrategy{Type: configv1.LeastAllocated}
		}
		if len(a.ScoringStrategy.Resources) == 0 {
			a.ScoringStrategy.Resources = append([]configv1.ResourceSpec(nil), defaultResourceSpec...)
		}
		for i := range a.ScoringStrategy.Resources {
			if a.ScoringStrategy.Resources[i].Weight == 0 {
				a.ScoringStrategy.Resources[i].Weight = 1
			}
		}
	case *configv1.DynamicResourcesArgs:
		// DRASchedulerFilterTimeout and DRADeviceBindingConditions are on.
		if a.FilterTimeout == nil {
			a.FilterTimeout = &metav1.Duration{Duration: configv1.DynamicResourcesFilterTimeoutDefault}
		}
		if a.BindingTimeout == nil {
			a.BindingTimeout = &metav1.Duration{Duration: configv1.DynamicResourcesBindingTimeoutDefault}
		}
	}
}

// BackoffDurations are the queue's initial and maximum pod backoff.
func BackoffDurations(cfg *configv1.KubeSchedulerConfiguration) (time.Duration, time.Duration) {
	return time.Duration(*cfg.PodInitialBackoffSeconds) * time.Second, time.Duration(*cfg.PodMaxBackoffSeconds) * time.Second
}
