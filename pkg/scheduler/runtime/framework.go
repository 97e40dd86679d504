// Package runtime is the scheduling framework's runtime, after upstream's
// framework/runtime: it builds one profile's plugins from the registry
// and the profile's configuration (MultiPoint expanded into each
// extension point, explicit extension points first), runs the extension
// points (Filter and Score in parallel), and is the framework.Handle the
// plugins get.
package runtime

import (
	"context"
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	configv1 "k8s.io/kube-scheduler/config/v1"

	"github.com/skiff-dev/skiff/pkg/scheduler/config"
	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

// Options are what a Framework is built from besides its profile.
type Options struct {
	ClientSet       kubernetes.Interface
	InformerFactory informers.SharedInformerFactory
	EventRecorder   events.EventRecorder
	// Snapshot is the current cycle's snapshot (shared by all profiles).
	Snapshot  func() framework.SharedLister
	Nominator framework.PodNominator
	// Parallelism of Filter and Score.
	Parallelism int
	// PercentageOfNodesToScore is the configuration's, for profiles that
	// set none (0: adaptive).
	PercentageOfNodesToScore int32
}

// Framework is one profile's plugins.
type Framework struct {
	opts         Options
	profileName  string
	percentage   int32
	parallelizer Parallelizer

	pluginsMap map[string]framework.Plugin

	preEnqueue []framework.PreEnqueuePlugin
	queueSort  []framework.QueueSortPlugin
	preFilter  []framework.PreFilterPlugin
	filter     []framework.FilterPlugin
	postFilter []framework.PostFilterPlugin
	preScore   []framework.PreScorePlugin
	score      []framework.ScorePlugin
	reserve    []framework.ReservePlugin
	permit     []framework.PermitPlugin
	preBind    []framework.PreBindPlugin
	bind       []framework.BindPlugin
	postBind   []framework.PostBindPlugin

	scoreWeight map[string]int64
	waiting     *waitingPods
}

var _ framework.Handle = &Framework{}

// extensionPoint ties a configured set to the slice it fills.
type extensionPoint struct {
	set      *configv1.PluginSet
	slicePtr any
}

func (f *Framework) extensionPoints(p *configv1.Plugins) []extensionPoint {
	return []extensionPoint{
		{&p.PreEnqueue, &f.preEnqueue}, {&p.QueueSort, &f.queueSort},
		{&p.PreFilter, &f.preFilter}, {&p.Filter, &f.filter}, {&p.PostFilter, &f.postFilter},
		{&p.PreScore, &f.preScore}, {&p.Score, &f.score},
		{&p.Reserve, &f.reserve}, {&p.Permit, &f.permit},
		{&p.PreBind, &f.preBind}, {&p.Bind, &f.bind}, {&p.PostBind, &f.postBind},
	}
}

// New builds a profile's framework. Every plugin is built once, however
// many extension points it serves; a plugin missing from the registry is
// an error, except upstream default plugins skiff does not have
// (config.NotImplemented), which are left out.
func New(ctx context.Context, registry framework.Registry, profile *configv1.KubeSchedulerProfile, opts Options) (*Framework, error) {
	logger := klog.FromContext(ctx)
	f := &Framework{
		opts:         opts,
		profileName:  *profile.SchedulerName,
		percentage:   opts.PercentageOfNodesToScore,
		parallelizer: NewParallelizer(opts.Parallelism),
		pluginsMap:   map[string]framework.Plugin{},
		scoreWeight:  map[string]int64{},
		waiting:      newWaitingPods(),
	}
	if profile.PercentageOfNodesToScore != nil {
		f.percentage = *profile.PercentageOfNodesToScore
	}
	plugins := profile.Plugins.DeepCopy()
	missing := sets.New[string]()
	for _, set := range config.ExtensionPoints(plugins) {
		kept := set.Enabled[:0]
		for _, p := range set.Enabled {
			if _, ok := registry[p.Name]; !ok && config.NotImplemented.Has(p.Name) {
				missing.Insert(p.Name)
				continue
			}
			kept = append(kept, p)
		}
		set.Enabled = kept
	}
	if missing.Len() > 0 {
		logger.V(2).Info("Leaving out default plugins skiff does not implement", "profile", f.profileName, "plugins", sets.List(missing))
	}

	args := map[string]runtime.Object{}
	for _, pc := range profile.PluginConfig {
		args[pc.Name] = pc.Args.Object
	}
	// Weights: MultiPoint's, overridden by the Score extension point's;
	// an unset or zero weight is 1.
	for _, set := range []configv1.PluginSet{plugins.MultiPoint, plugins.Score} {
		for _, p := range set.Enabled {
			w := int64(1)
			if p.Weight != nil && *p.Weight != 0 {
				w = int64(*p.Weight)
			}
			f.scoreWeight[p.Name] = w
		}
	}
	names := sets.New[string]()
	for _, set := range config.ExtensionPoints(plugins) {
		for _, p := range set.Enabled {
			names.Insert(p.Name)
		}
	}
	for _, name := range sets.List(names) {
		factory, ok := registry[name]
		if !ok {
			return nil, fmt.Errorf("profile %q: plugin %q does not exist", f.profileName, name)
		}
		a := args[name]
		if a == nil {
			a = config.NewArgs(name)
		}
		pl, err := factory(ctx, a, f)
		if err != nil {
			return nil, fmt.Errorf("profile %q: initializing plugin %q: %w", f.profileName, name, err)
		}
		f.pluginsMap[name] = pl
	}
	for _, e := range f.extensionPoints(plugins) {
		if err := f.fill(e); err != nil {
			return nil, fmt.Errorf("profile %q: %w", f.profileName, err)
		}
	}
	if err := f.expandMultiPoint(logger, plugins); err != nil {
		return nil, fmt.Errorf("profile %q: %w", f.profileName, err)
	}
	if len(f.queueSort) != 1 {
		return nil, fmt.Errorf("profile %q: one queue sort plugin required, got %d", f.profileName, len(f.queueSort))
	}
	if len(f.bind) == 0 {
		return nil, fmt.Errorf("profile %q: at least one bind plugin is needed", f.profileName)
	}
	var total int64
	for _, s := range f.score {
		w := f.scoreWeight[s.Name()]
		if w > config.MaxWeight || total > framework.MaxTotalScore/framework.MaxNodeScore-w {
			return nil, fmt.Errorf("profile %q: total score of Score plugins could overflow", f.profileName)
		}
		total += w
	}
	return f, nil
}

// fill sets an extension point's slice from its explicitly enabled
// plugins; a plugin that does not implement the point is an error.
func (f *Framework) fill(e extensionPoint) error {
	slice := reflect.ValueOf(e.slicePtr).Elem()
	typ := slice.Type().Elem()
	seen := sets.New[string]()
	for _, p := range e.set.Enabled {
		pl := f.pluginsMap[p.Name]
		if !reflect.TypeOf(pl).Implements(typ) {
			return fmt.Errorf("plugin %q does not extend %s plugin", p.Name, typ.Name())
		}
		if seen.Has(p.Name) {
			return fmt.Errorf("plugin %q already registered as %q", p.Name, typ.Name())
		}
		seen.Insert(p.Name)
		slice.Set(reflect.Append(slice, reflect.ValueOf(pl)))
	}
	return nil
}

// expandMultiPoint adds the MultiPoint plugins to each point they
// implement, as upstream: explicitly re-configured ones first (in their
// point's order), then MultiPoint's, then the point's other plugins; a
// point's disabled list applies; "*" there skips the expansion.
func (f *Framework) expandMultiPoint(logger klog.Logger, plugins *configv1.Plugins) error {
	for _, e := range f.extensionPoints(plugins) {
		slice := reflect.ValueOf(e.slicePtr).Elem()
		typ := slice.Type().Elem()
		var enabled []string
		for _, p := range e.set.Enabled {
			enabled = append(enabled, p.Name)
		}
		enabledSet := sets.New(enabled...)
		disabled := sets.New[string]()
		for _, p := range e.set.Disabled {
			disabled.Insert(p.Name)
		}
		if disabled.Has("*") {
			continue
		}
		var multi []string
		override := sets.New[string]()
		seen := sets.New[string]()
		for _, p := range plugins.MultiPoint.Enabled {
			pl := f.pluginsMap[p.Name]
			if !reflect.TypeOf(pl).Implements(typ) || disabled.Has(p.Name) {
				continue
			}
			if enabledSet.Has(p.Name) {
				override.Insert(p.Name)
				logger.V(2).Info("MultiPoint plugin is explicitly re-configured; overriding", "plugin", p.Name)
				continue
			}
			if seen.Has(p.Name) {
				return fmt.Errorf("plugin %q already registered as %q", p.Name, typ.Name())
			}
			seen.Insert(p.Name)
			multi = append(multi, p.Name)
		}
		var order []string
		for _, n := range enabled {
			if override.Has(n) {
				order = append(order, n)
			}
		}
		order = append(order, multi...)
		for _, n := range enabled {
			if !override.Has(n) {
				order = append(order, n)
			}
		}
		out := reflect.MakeSlice(slice.Type(), 0, len(order))
		for _, n := range order {
			out = reflect.Append(out, reflect.ValueOf(f.pluginsMap[n]))
		}
		slice.Set(out)
	}
	return nil
}

// ProfileName is the profile's schedulerName.
func (f *Framework) ProfileName() string { return f.profileName }

// PercentageOfNodesToScore is the profile's (0: adaptive).
func (f *Framework) PercentageOfNodesToScore() int32 { return f.percentage }

// QueueSortLess is the QueueSort plugin's order.
func (f *Framework) QueueSortLess() func(a, b *framework.QueuedPodInfo) bool {
	return f.queueSort[0].Less
}

// PreEnqueuePlugins are the profile's PreEnqueue plugins.
func (f *Framework) PreEnqueuePlugins() []framework.PreEnqueuePlugin { return f.preEnqueue }

// HasFilterPlugins tells whether any Filter plugin is configured.
func (f *Framework) HasFilterPlugins() bool { return len(f.filter) > 0 }

// HasScorePlugins tells whether any Score plugin is configured.
func (f *Framework) HasScorePlugins() bool { return len(f.score) > 0 }

// HasPostFilterPlugins tells whether any PostFilter plugin is configured.
func (f *Framework) HasPostFilterPlugins() bool { return len(f.postFilter) > 0 }

// ListPlugins names each point's plugins in order (tests, logs).
func (f *Framework) ListPlugins() map[string][]string {
	out := map[string][]string{}
	add := func(point string, slice any) {
		v := reflect.ValueOf(slice)
		for i := 0; i < v.Len(); i++ {
			out[point] = append(out[point], v.Index(i).Interface().(framework.Plugin).Name())
		}
	}
	add("PreEnqueue", f.preEnqueue)
	add("QueueSort", f.queueSort)
	add("PreFilter", f.preFilter)
	add("Filter", f.filter)
	add("PostFilter", f.postFilter)
	add("PreScore", f.preScore)
	add("Score", f.score)
	add("Reserve", f.reserve)
	add("Permit", f.permit)
	add("PreBind", f.preBind)
	add("Bind", f.bind)
	add("PostBind", f.postBind)
	return out
}

// ScoreWeight is a score plugin's weight.
func (f *Framework) ScoreWeight(name string) int64 { return f.scoreWeight[name] }

// EventsToRegister is, for every plugin that can reject a pod (PreEnqueue,
// PreFilter, Filter, Reserve, Permit), the cluster events that may make
// it schedulable again: its EnqueueExtensions', or every event if it
// registers none.
func (f *Framework) EventsToRegister(ctx context.Context) (map[string][]framework.ClusterEventWithHint, error) {
	out := map[string][]framework.ClusterEventWithHint{}
	for name, pl := range f.pluginsMap {
		switch pl.(type) {
		case framework.PreEnqueuePlugin, framework.PreFilterPlugin, framework.FilterPlugin, framework.ReservePlugin, framework.PermitPlugin:
		default:
			continue
		}
		ext, ok := pl.(framework.EnqueueExtensions)
		if !ok {
			out[name] = []framework.ClusterEventWithHint{{Event: framework.ClusterEvent{Resource: framework.WildCard, ActionType: framework.All}}}
			continue
		}
		events, err := ext.EventsToRegister(ctx)
		if err != nil {
			return nil, fmt.Errorf("plugin %q: events to register: %w", name, err)
		}
		out[name] = events
	}
	return out, nil
}

// Handle.

// SnapshotSharedLister is the current cycle's snapshot.
func (f *Framework) SnapshotSharedLister() framework.SharedLister { return f.opts.Snapshot() }

// ClientSet is the scheduler's client.
func (f *Framework) ClientSet() kubernetes.Interface { return f.opts.ClientSet }

// SharedInformerFactory is the scheduler's informer factory.
func (f *Framework) SharedInformerFactory() informers.SharedInformerFactory {
	return f.opts.InformerFactory
}

// EventRecorder records events as the profile's scheduler.
func (f *Framework) EventRecorder() events.EventRecorder { return f.opts.EventRecorder }

// NominatedPodsForNode are the pods nominated to the node.
func (f *Framework) NominatedPodsForNode(nodeName string) []*framework.PodInfo {
	if f.opts.Nominator == nil {
		return nil
	}
	return f.opts.Nominator.NominatedPodsForNode(nodeName)
}

// Parallelizer runs work with the configured parallelism.
func (f *Framework) Parallelizer() framework.Parallelizer { return f.parallelizer }
