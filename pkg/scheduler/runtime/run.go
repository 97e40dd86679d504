package runtime

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

// RunPreEnqueuePlugins: the first non-success status, with its plugin.
func (f *Framework) RunPreEnqueuePlugins(ctx context.Context, pod *v1.Pod) *framework.Status {
	for _, pl := range f.preEnqueue {
		if s := pl.PreEnqueue(ctx, pod); !s.IsSuccess() {
			return s.WithPlugin(pl.Name())
		}
	}
	return nil
}

// RunPreFilterPlugins runs every PreFilter plugin: a rejection or error
// ends it; Skip marks the plugin's Filter as skipped; the results are
// intersected. narrowing are the plugins whose result narrowed the nodes.
func (f *Framework) RunPreFilterPlugins(ctx context.Context, state *framework.CycleState, pod *v1.Pod, nodes []*framework.NodeInfo) (result *framework.PreFilterResult, status *framework.Status, narrowing sets.Set[string]) {
	skip := sets.New[string]()
	narrowing = sets.New[string]()
	for _, pl := range f.preFilter {
		r, s := pl.PreFilter(ctx, state, pod, nodes)
		if s.IsSkip() {
			skip.Insert(pl.Name())
			continue
		}
		if !s.IsSuccess() {
			s.WithPlugin(pl.Name())
			if s.IsRejected() {
				return nil, s, narrowing
			}
			return nil, framework.AsStatus(fmt.Errorf("running PreFilter plugin %q: %w", pl.Name(), s.AsError())).WithPlugin(pl.Name()), narrowing
		}
		if !r.AllNodes() {
			narrowing.Insert(pl.Name())
		}
		result = result.Merge(r)
		if !result.AllNodes() && result.NodeNames.Len() == 0 {
			msg := fmt.Sprintf("node(s) didn't satisfy plugin(s) %v simultaneously", sets.List(narrowing))
			if narrowing.Len() == 1 {
				msg = "node(s) didn't satisfy plugin " + sets.List(narrowing)[0]
			}
			return result, framework.NewStatus(framework.UnschedulableAndUnresolvable, msg), narrowing
		}
	}
	state.SkipFilterPlugins = skip
	return result, nil, narrowing
}

// RunPreFilterExtensionAddPod runs every PreFilter plugin's AddPod.
func (f *Framework) RunPreFilterExtensionAddPod(ctx context.Context, state *framework.CycleState, podToSchedule *v1.Pod, podInfoToAdd *framework.PodInfo, nodeInfo *framework.NodeInfo) *framework.Status {
	for _, pl := range f.preFilter {
		ext := pl.PreFilterExtensions()
		if ext == nil || state.SkipFilterPlugins.Has(pl.Name()) {
			continue
		}
		if s := ext.AddPod(ctx, state, podToSchedule, podInfoToAdd, nodeInfo); !s.IsSuccess() {
			return framework.AsStatus(fmt.Errorf("running AddPod on PreFilter plugin %q: %w", pl.Name(), s.AsError()))
		}
	}
	return nil
}

// RunPreFilterExtensionRemovePod runs every PreFilter plugin's RemovePod.
func (f *Framework) RunPreFilterExtensionRemovePod(ctx context.Context, state *framework.CycleState, podToSchedule *v1.Pod, podInfoToRemove *framework.PodInfo, nodeInfo *framework.NodeInfo) *framework.Status {
	for _, pl := range f.preFilter {
		ext := pl.PreFilterExtensions()
		if ext == nil || state.SkipFilterPlugins.Has(pl.Name()) {
			continue
		}
		if s := ext.RemovePod(ctx, state, podToSchedule, podInfoToRemove, nodeInfo); !s.IsSuccess() {
			return framework.AsStatus(fmt.Errorf("running RemovePod on PreFilter plugin %q: %w", pl.Name(), s.AsError()))
		}
	}
	return nil
}

// RunFilterPlugins: the first plugin that rejects the node, or an error.
func (f *Framework) RunFilterPlugins(ctx context.Context, state *framework.CycleState, pod *v1.Pod, nodeInfo *framework.NodeInfo) *framework.Status {
	for _, pl := range f.filter {
		if state.SkipFilterPlugins.Has(pl.Name()) {
			continue
		}
		if s := pl.Filter(ctx, state, pod, nodeInfo); !s.IsSuccess() {
			if !s.IsRejected() {
				return framework.AsStatus(fmt.Errorf("running %q filter plugin: %w", pl.Name(), s.AsError())).WithPlugin(pl.Name())
			}
			return s.WithPlugin(pl.Name())
		}
	}
	return nil
}

// RunFilterPluginsWithNominatedPods filters as if the nominated pods of
// equal or higher priority were on the node, and (if they made a
// difference) again without them, as upstream: both must pass.
func (f *Framework) RunFilterPluginsWithNominatedPods(ctx context.Context, state *framework.CycleState, pod *v1.Pod, info *framework.NodeInfo) *framework.Status {
	added, stateWith, infoWith, err := f.addNominatedPods(ctx, pod, state, info)
	if err != nil {
		return framework.AsStatus(err)
	}
	s := f.RunFilterPlugins(ctx, stateWith, pod, infoWith)
	if !added || !s.IsSuccess() {
		return s
	}
	return f.RunFilterPlugins(ctx, state, pod, info)
}

func (f *Framework) addNominatedPods(ctx context.Context, pod *v1.Pod, state *framework.CycleState, info *framework.NodeInfo) (bool, *framework.CycleState, *framework.NodeInfo, error) {
	if f.opts.Nominator == nil || info.Node() == nil {
		return false, state, info, nil
	}
	nominated := f.opts.Nominator.NominatedPodsForNode(info.Node().Name)
	if len(nominated) == 0 {
		return false, state, info, nil
	}
	infoOut, stateOut := info.Clone(), state.Clone()
	added := false
	prio := podPriority(pod)
	for _, pi := range nominated {
		if podPriority(pi.Pod) < prio || pi.Pod.UID == pod.UID {
			continue
		}
		infoOut.AddPodInfo(pi)
		if s := f.RunPreFilterExtensionAddPod(ctx, stateOut, pod, pi, infoOut); !s.IsSuccess() {
			return false, state, info, s.AsError()
		}
		added = true
	}
	return added, stateOut, infoOut, nil
}

func podPriority(p *v1.Pod) int32 {
	if p.Spec.Priority != nil {
		return *p.Spec.Priority
	}
	return 0
}

// RunPostFilterPlugins runs PostFilter plugins until one succeeds (or
// fails with an error); otherwise the rejections' reasons together.
func (f *Framework) RunPostFilterPlugins(ctx context.Context, state *framework.CycleState, pod *v1.Pod, filtered *framework.NodeToStatus) (*framework.PostFilterResult, *framework.Status) {
	var reasons []string
	var result *framework.PostFilterResult
	rejector := ""
	for _, pl := range f.postFilter {
		r, s := pl.PostFilter(ctx, state, pod, filtered)
		if s.IsSuccess() {
			return r, s
		}
		if s.Code() == framework.UnschedulableAndUnresolvable {
			return r, s.WithPlugin(pl.Name())
		}
		if !s.IsRejected() {
			return nil, framework.AsStatus(s.AsError()).WithPlugin(pl.Name())
		}
		if r != nil && r.NominatedNodeName != "" {
			result = r
		}
		reasons = append(reasons, s.Reasons()...)
		if rejector == "" {
			rejector = pl.Name()
		}
	}
	return result, framework.NewStatus(framework.Unschedulable, reasons...).WithPlugin(rejector)
}

// RunPreScorePlugins runs PreScore; Skip marks the plugin's Score as
// skipped.
func (f *Framework) RunPreScorePlugins(ctx context.Context, state *framework.CycleState, pod *v1.Pod, nodes []*framework.NodeInfo) *framework.Status {
	skip := sets.New[string]()
	for _, pl := range f.preScore {
		s := pl.PreScore(ctx, state, pod, nodes)
		if s.IsSkip() {
			skip.Insert(pl.Name())
			continue
		}
		if !s.IsSuccess() {
			return framework.AsStatus(fmt.Errorf("running PreScore plugin %q: %w", pl.Name(), s.AsError()))
		}
	}
	state.SkipScorePlugins = skip
	return nil
}

// PluginScore is one plugin's weighted score of a node.
type PluginScore struct {
	Name  string
	Score int64
}

// NodePluginScores is a node's weighted scores and their sum.
type NodePluginScores struct {
	Name       string
	Scores     []PluginScore
	TotalScore int64
}

// RunScorePlugins scores every node with every (not skipped) Score
// plugin in parallel, normalises each plugin's scores, checks they lie in
// [MinNodeScore, MaxNodeScore] and weights them.
func (f *Framework) RunScorePlugins(ctx context.Context, state *framework.CycleState, pod *v1.Pod, nodes []*framework.NodeInfo) ([]NodePluginScores, *framework.Status) {
	var plugins []framework.ScorePlugin
	for _, pl := range f.score {
		if !state.SkipScorePlugins.Has(pl.Name()) {
			plugins = append(plugins, pl)
		}
	}
	all := make([]NodePluginScores, len(nodes))
	for i, n := range nodes {
		all[i] = NodePluginScores{Name: n.Node().Name, Scores: make([]PluginScore, len(plugins))}
	}
	if len(plugins) == 0 {
		return all, nil
	}
	scores := make([]framework.NodeScoreList, len(plugins))
	for j := range plugins {
		scores[j] = make(framework.NodeScoreList, len(nodes))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var once sync.Once
	var failed *framework.Status
	fail := func(s *framework.Status) {
		once.Do(func() { failed = s; cancel() })
	}
	f.parallelizer.Until(ctx, len(nodes), func(i int) {
		for j, pl := range plugins {
			s, st := pl.Score(ctx, state, pod, nodes[i])
			if !st.IsSuccess() {
				fail(framework.AsStatus(fmt.Errorf("running Score plugin %q: %w", pl.Name(), st.AsError())))
				return
			}
			scores[j][i] = framework.NodeScore{Name: nodes[i].Node().Name, Score: s}
		}
	}, "Score")
	if failed != nil {
		return nil, failed
	}
	f.parallelizer.Until(ctx, len(plugins), func(j int) {
		ext := plugins[j].ScoreExtensions()
		if ext == nil {
			return
		}
		if st := ext.NormalizeScore(ctx, state, pod, scores[j]); !st.IsSuccess() {
			fail(framework.AsStatus(fmt.Errorf("running Normalize on Score plugin %q: %w", plugins[j].Name(), st.AsError())))
		}
	}, "NormalizeScore")
	if failed != nil {
		return nil, failed
	}
	for j, pl := range plugins {
		w := f.scoreWeight[pl.Name()]
		for i := range nodes {
			s := scores[j][i].Score
			if s < framework.MinNodeScore || s > framework.MaxNodeScore {
				return nil, framework.AsStatus(fmt.Errorf("plugin %q returns an invalid score %v, it should in the range of [%v, %v] after normalizing", pl.Name(), s, framework.MinNodeScore, framework.MaxNodeScore))
			}
			all[i].Scores[j] = PluginScore{Name: pl.Name(), Score: s * w}
			all[i].TotalScore += s * w
		}
	}
	return all, nil
}

// RunReservePluginsReserve: the first failure, with its plugin.
func (f *Framework) RunReservePluginsReserve(ctx context.Context, state *framework.CycleState, pod *v1.Pod, nodeName string) *framework.Status {
	for _, pl := range f.reserve {
		if s := pl.Reserve(ctx, state, pod, nodeName); !s.IsSuccess() {
			if s.IsRejected() {
				return s.WithPlugin(pl.Name())
			}
			return framework.AsStatus(fmt.Errorf("running Reserve plugin %q: %w", pl.Name(), s.AsError())).WithPlugin(pl.Name())
		}
	}
	return nil
}

// RunReservePluginsUnreserve undoes Reserve, in reverse order.
func (f *Framework) RunReservePluginsUnreserve(ctx context.Context, state *framework.CycleState, pod *v1.Pod, nodeName string) {
	for i := len(f.reserve) - 1; i >= 0; i-- {
		f.reserve[i].Unreserve(ctx, state, pod, nodeName)
	}
}

// RunPermitPlugins: a rejection or error ends it; Wait holds the pod (the
// shortest timeout among the waiting plugins) until WaitOnPermit.
func (f *Framework) RunPermitPlugins(ctx context.Context, state *framework.CycleState, pod *v1.Pod, nodeName string) *framework.Status {
	waitFor := map[string]time.Duration{}
	for _, pl := range f.permit {
		s, timeout := pl.Permit(ctx, state, pod, nodeName)
		if s.IsSuccess() {
			continue
		}
		if s.IsWait() {
			if timeout > maxPermitTimeout {
				timeout = maxPermitTimeout
			}
			waitFor[pl.Name()] = timeout
			continue
		}
		if s.IsRejected() {
			return s.WithPlugin(pl.Name())
		}
		return framework.AsStatus(fmt.Errorf("running Permit plugin %q: %w", pl.Name(), s.AsError())).WithPlugin(pl.Name())
	}
	if len(waitFor) > 0 {
		f.waiting.add(newWaitingPod(pod, waitFor))
		return framework.NewStatus(framework.Wait)
	}
	return nil
}

// maxPermitTimeout is upstream's cap on a Permit plugin's wait.
const maxPermitTimeout = 15 * time.Minute

// WaitOnPermit blocks while the pod waits on Permit plugins.
func (f *Framework) WaitOnPermit(ctx context.Context, pod *v1.Pod) *framework.Status {
	wp := f.waiting.get(pod.UID)
	if wp == nil {
		return nil
	}
	defer f.waiting.remove(pod.UID)
	select {
	case s := <-wp.done:
		return s
	case <-ctx.Done():
		return framework.AsStatus(ctx.Err())
	}
}

// GetWaitingPod is a pod waiting on Permit, for plugins to Allow or
// Reject; nil if none.
func (f *Framework) GetWaitingPod(uid types.UID) *WaitingPod { return f.waiting.get(uid) }

// RunPreBindPreFlights: Success if a PreBind plugin has work for the
// pod, Skip if none has (those that said Skip are left out of
// RunPreBindPlugins), or the first error.
func (f *Framework) RunPreBindPreFlights(ctx context.Context, state *framework.CycleState, pod *v1.Pod, nodeName string) *framework.Status {
	skip := sets.New[string]()
	out := framework.NewStatus(framework.Skip)
	for _, pl := range f.preBind {
		s := pl.PreBindPreFlight(ctx, state, pod, nodeName)
		switch {
		case s.IsSuccess():
			out = nil
		case s.IsSkip():
			skip.Insert(pl.Name())
		case s.Code() == framework.Error:
			klog.FromContext(ctx).Error(s.AsError(), "Plugin failed", "plugin", pl.Name(), "pod", klog.KObj(pod), "node", nodeName)
			return framework.AsStatus(fmt.Errorf("running PreBindPreFlight %q: %w", pl.Name(), s.AsError())).WithPlugin(pl.Name())
		default:
			return framework.AsStatus(fmt.Errorf("PreBindPreFlight %s returned %q, which is unsupported. It is supposed to return Success, Skip, or Error status", pl.Name(), s.Code())).WithPlugin(pl.Name())
		}
	}
	state.SkipPreBindPlugins = skip
	return out
}

// RunPreBindPlugins: the first failure.
func (f *Framework) RunPreBindPlugins(ctx context.Context, state *framework.CycleState, pod *v1.Pod, nodeName string) *framework.Status {
	for _, pl := range f.preBind {
		if state.SkipPreBindPlugins.Has(pl.Name()) {
			continue
		}
		if s := pl.PreBind(ctx, state, pod, nodeName); !s.IsSuccess() {
			if s.IsRejected() {
				return s.WithPlugin(pl.Name())
			}
			return framework.AsStatus(fmt.Errorf("running PreBind plugin %q: %w", pl.Name(), s.AsError())).WithPlugin(pl.Name())
		}
	}
	return nil
}

// RunBindPlugins: the first Bind plugin that does not Skip binds.
func (f *Framework) RunBindPlugins(ctx context.Context, state *framework.CycleState, pod *v1.Pod, nodeName string) *framework.Status {
	for _, pl := range f.bind {
		s := pl.Bind(ctx, state, pod, nodeName)
		if s.IsSkip() {
			continue
		}
		if !s.IsSuccess() {
			if s.IsRejected() {
				return s.WithPlugin(pl.Name())
			}
			return framework.AsStatus(fmt.Errorf("running Bind plugin %q: %w", pl.Name(), s.AsError())).WithPlugin(pl.Name())
		}
		return s
	}
	return framework.NewStatus(framework.Skip, "")
}

// RunPostBindPlugins tells every PostBind plugin.
func (f *Framework) RunPostBindPlugins(ctx context.Context, state *framework.CycleState, pod *v1.Pod, nodeName string) {
	for _, pl := range f.postBind {
		pl.PostBind(ctx, state, pod, nodeName)
	}
}
