package podtopologyspread

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

const preScoreStateKey framework.StateKey = "PreScore" + Name

// invalidScore marks ignored nodes between Score and NormalizeScore.
const invalidScore = -1

type preScoreState struct {
	constraints []constraint
	// ignoredNodes: feasible nodes missing a constraint's key; they score
	// 0.
	ignoredNodes sets.Set[string]
	// topologyValueToPodCounts[i]: matching pods per domain of constraint
	// i (not kept for hostname: Score counts the node itself).
	topologyValueToPodCounts []map[string]*int64
	// topologyNormalizingWeight[i]: log(domains + 2), so constraints with
	// many domains do not outweigh those with few.
	topologyNormalizingWeight []float64
}

// Clone: read-only after PreScore.
func (s *preScoreState) Clone() framework.StateData { return s }

func (pl *PodTopologySpread) initPreScoreState(s *preScoreState, pod *v1.Pod, filtered []*framework.NodeInfo, requireAllTopologies bool) error {
	var err error
	if s.constraints, err = pl.getConstraints(pod, v1.ScheduleAnyway); err != nil {
		return fmt.Errorf("obtaining pod's soft topology spread constraints: %w", err)
	}
	if len(s.constraints) == 0 {
		return nil
	}
	s.topologyValueToPodCounts = make([]map[string]*int64, len(s.constraints))
	for i := range s.constraints {
		s.topologyValueToPodCounts[i] = map[string]*int64{}
	}
	topoSize := make([]int, len(s.constraints))
	for _, ni := range filtered {
		node := ni.Node()
		if requireAllTopologies && !nodeLabelsMatchSpreadConstraints(node.Labels, s.constraints) {
			s.ignoredNodes.Insert(node.Name)
			continue
		}
		for i, c := range s.constraints {
			if c.topologyKey == v1.LabelHostname {
				continue
			}
			v := node.Labels[c.topologyKey]
			if s.topologyValueToPodCounts[i][v] == nil {
				s.topologyValueToPodCounts[i][v] = new(int64)
				topoSize[i]++
			}
		}
	}
	s.topologyNormalizingWeight = make([]float64, len(s.constraints))
	for i, c := range s.constraints {
		sz := topoSize[i]
		if c.topologyKey == v1.LabelHostname {
			sz = len(filtered) - len(s.ignoredNodes)
		}
		s.topologyNormalizingWeight[i] = math.Log(float64(sz + 2))
	}
	return nil
}

// PreScore counts, over all nodes, the matching pods in each domain of the
// feasible nodes.
func (pl *PodTopologySpread) PreScore(ctx context.Context, cs *framework.CycleState, pod *v1.Pod, filtered []*framework.NodeInfo) *framework.Status {
	all, err := pl.handle.SnapshotSharedLister().NodeInfos().List()
	if err != nil {
		return framework.AsStatus(fmt.Errorf("getting all nodes: %w", err))
	}
	if len(all) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	state := &preScoreState{ignoredNodes: sets.New[string]()}
	// System defaults spread over whatever domains exist; the pod's own or
	// configured constraints need every key.
	requireAll := len(pod.Spec.TopologySpreadConstraints) > 0 || !pl.systemDefaulted
	if err := pl.initPreScoreState(state, pod, filtered, requireAll); err != nil {
		return framework.AsStatus(fmt.Errorf("calculating preScoreState: %w", err))
	}
	if len(state.constraints) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	logger := klog.FromContext(ctx)
	req := nodeaffinity.GetRequiredNodeAffinity(pod)
	pl.handle.Parallelizer().Until(ctx, len(all), func(n int) {
		ni := all[n]
		node := ni.Node()
		if node == nil || requireAll && !nodeLabelsMatchSpreadConstraints(node.Labels, state.constraints) {
			return
		}
		for i := range state.constraints {
			c := &state.constraints[i]
			if !c.matchNodeInclusionPolicies(logger, pod, node, req) {
				continue
			}
			cnt := state.topologyValueToPodCounts[i][node.Labels[c.topologyKey]]
			if cnt == nil {
				continue
			}
			atomic.AddInt64(cnt, int64(countPodsMatchSelector(ni.Pods, c.selector, pod.Namespace)))
		}
	}, Name)
	cs.Write(preScoreStateKey, state)
	return nil
}

// Score: more matching pods in the node's domains, higher (worse) score;
// NormalizeScore inverts it.
func (pl *PodTopologySpread) Score(_ context.Context, cs *framework.CycleState, pod *v1.Pod, nodeInfo *framework.NodeInfo) (int64, *framework.Status) {
	node := nodeInfo.Node()
	if node == nil {
		return 0, framework.NewStatus(framework.Error, "node not found")
	}
	s, err := getPreScoreState(cs)
	if err != nil {
		return 0, framework.AsStatus(err)
	}
	if s.ignoredNodes.Has(node.Name) {
		return 0, nil
	}
	var score float64
	for i, c := range s.constraints {
		v, ok := node.Labels[c.topologyKey]
		if !ok {
			continue
		}
		var cnt int64
		if c.topologyKey == v1.LabelHostname {
			cnt = int64(countPodsMatchSelector(nodeInfo.Pods, c.selector, pod.Namespace))
		} else if p := s.topologyValueToPodCounts[i][v]; p != nil {
			cnt = *p
		}
		score += float64(cnt)*s.topologyNormalizingWeight[i] + float64(c.maxSkew-1)
	}
	return int64(math.Round(score)), nil
}

// NormalizeScore: MaxNodeScore * (max + min - score) / max; ignored nodes
// 0.
func (pl *PodTopologySpread) NormalizeScore(_ context.Context, cs *framework.CycleState, _ *v1.Pod, scores framework.NodeScoreList) *framework.Status {
	s, err := getPreScoreState(cs)
	if err != nil {
		return framework.AsStatus(err)
	}
	if s == nil {
		return nil
	}
	var lo int64 = math.MaxInt64
	var hi int64
	for i, sc := range scores {
		if s.ignoredNodes.Has(sc.Name) {
			scores[i].Score = invalidScore
			continue
		}
		lo = min(lo, sc.Score)
		hi = max(hi, sc.Score)
	}
	for i := range scores {
		if scores[i].Score == invalidScore {
			scores[i].Score = 0
			continue
		}
		if hi == 0 {
			scores[i].Score = framework.MaxNodeScore
			continue
		}
		scores[i].Score = framework.MaxNodeScore * (hi + lo - scores[i].Score) / hi
	}
	return nil
}

// ScoreExtensions: NormalizeScore.
func (pl *PodTopologySpread) ScoreExtensions() framework.ScoreExtensions { return pl }

func getPreScoreState(cs *framework.CycleState) (*preScoreState, error) {
	c, err := cs.Read(preScoreStateKey)
	if err != nil {
		return nil, fmt.Errorf("error reading %q from cycleState: %w", preScoreStateKey, err)
	}
	s, ok := c.(*preScoreState)
	if !ok {
		return nil, fmt.Errorf("%+v  convert to podtopologyspread.preScoreState error", c)
	}
	return s, nil
}
