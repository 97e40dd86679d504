package podtopologyspread

import (
	"context"
	"fmt"
	"maps"
	"math"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

const preFilterStateKey framework.StateKey = "PreFilter" + Name

// Filter's reasons, upstream's texts.
const (
	ErrReasonConstraintsNotMatch = "node(s) didn't match pod topology spread constraints"
	ErrReasonNodeLabelNotMatch   = ErrReasonConstraintsNotMatch + " (missing required label)"
)

// criticalPaths: the two domains with the fewest matching pods, so the
// minimum survives one domain's count changing (preemption's what-ifs).
type criticalPaths [2]struct {
	value string
	num   int
}

func newCriticalPaths() *criticalPaths {
	return &criticalPaths{{num: math.MaxInt32}, {num: math.MaxInt32}}
}

func (p *criticalPaths) update(v string, num int) {
	i := -1
	if v == p[0].value {
		i = 0
	} else if v == p[1].value {
		i = 1
	}
	if i >= 0 {
		p[i].num = num
		if p[0].num > p[1].num {
			p[0], p[1] = p[1], p[0]
		}
		return
	}
	if num < p[0].num {
		p[1] = p[0]
		p[0].value, p[0].num = v, num
	} else if num < p[1].num {
		p[1].value, p[1].num = v, num
	}
}

// preFilterState: per DoNotSchedule constraint, matching pods per domain.
type preFilterState struct {
	constraints   []constraint
	criticalPaths []*criticalPaths
	// tpValueToMatchNum[i]: domain value → matching pods, for constraint i.
	tpValueToMatchNum []map[string]int
}

// minMatchNum: the smallest domain's count, 0 while there are fewer
// domains than minDomains.
func (s *preFilterState) minMatchNum(i int, minDomains int32) int {
	if len(s.tpValueToMatchNum[i]) < int(minDomains) {
		return 0
	}
	return s.criticalPaths[i][0].num
}

func (s *preFilterState) Clone() framework.StateData {
	if s == nil {
		return nil
	}
	c := &preFilterState{
		constraints:       s.constraints,
		criticalPaths:     make([]*criticalPaths, len(s.criticalPaths)),
		tpValueToMatchNum: make([]map[string]int, len(s.tpValueToMatchNum)),
	}
	for i, p := range s.criticalPaths {
		cp := *p
		c.criticalPaths[i] = &cp
	}
	for i, m := range s.tpValueToMatchNum {
		c.tpValueToMatchNum[i] = maps.Clone(m)
	}
	return c
}

// PreFilter counts matching pods per domain over the eligible nodes.
func (pl *PodTopologySpread) PreFilter(ctx context.Context, cs *framework.CycleState, pod *v1.Pod, nodes []*framework.NodeInfo) (*framework.PreFilterResult, *framework.Status) {
	s, err := pl.calPreFilterState(ctx, pod, nodes)
	if err != nil {
		return nil, framework.AsStatus(err)
	}
	if len(s.constraints) == 0 {
		return nil, framework.NewStatus(framework.Skip)
	}
	cs.Write(preFilterStateKey, s)
	return nil, nil
}

func (pl *PodTopologySpread) calPreFilterState(ctx context.Context, pod *v1.Pod, nodes []*framework.NodeInfo) (*preFilterState, error) {
	cons, err := pl.getConstraints(pod, v1.DoNotSchedule)
	if err != nil {
		return nil, fmt.Errorf("get constraints from pod: %w", err)
	}
	if len(cons) == 0 {
		return &preFilterState{}, nil
	}
	logger := klog.FromContext(ctx)
	s := &preFilterState{
		constraints:       cons,
		criticalPaths:     make([]*criticalPaths, len(cons)),
		tpValueToMatchNum: make([]map[string]int, len(cons)),
	}
	for i := range cons {
		s.tpValueToMatchNum[i] = map[string]int{}
	}
	req := nodeaffinity.GetRequiredNodeAffinity(pod)
	var mu sync.Mutex
	pl.handle.Parallelizer().Until(ctx, len(nodes), func(n int) {
		ni := nodes[n]
		node := ni.Node()
		if node == nil || !nodeLabelsMatchSpreadConstraints(node.Labels, cons) {
			return
		}
		for i := range cons {
			c := &cons[i]
			if !c.matchNodeInclusionPolicies(logger, pod, node, req) {
				continue
			}
			cnt := countPodsMatchSelector(ni.Pods, c.selector, pod.Namespace)
			mu.Lock()
			s.tpValueToMatchNum[i][node.Labels[c.topologyKey]] += cnt
			mu.Unlock()
		}
	}, Name)
	for i := range cons {
		s.criticalPaths[i] = newCriticalPaths()
		for v, n := range s.tpValueToMatchNum[i] {
			s.criticalPaths[i].update(v, n)
		}
	}
	return s, nil
}

// PreFilterExtensions: preemption adds and removes pods.
func (pl *PodTopologySpread) PreFilterExtensions() framework.PreFilterExtensions { return pl }

// AddPod counts podInfoToAdd on nodeInfo.
func (pl *PodTopologySpread) AddPod(ctx context.Context, cs *framework.CycleState, podToSchedule *v1.Pod, podInfoToAdd *framework.PodInfo, nodeInfo *framework.NodeInfo) *framework.Status {
	s, err := getPreFilterState(cs)
	if err != nil {
		return framework.AsStatus(err)
	}
	updateWithPod(klog.FromContext(ctx), s, podInfoToAdd.Pod, podToSchedule, nodeInfo.Node(), 1)
	return nil
}

// RemovePod uncounts podInfoToRemove from nodeInfo.
func (pl *PodTopologySpread) RemovePod(ctx context.Context, cs *framework.CycleState, podToSchedule *v1.Pod, podInfoToRemove *framework.PodInfo, nodeInfo *framework.NodeInfo) *framework.Status {
	s, err := getPreFilterState(cs)
	if err != nil {
		return framework.AsStatus(err)
	}
	updateWithPod(klog.FromContext(ctx), s, podInfoToRemove.Pod, podToSchedule, nodeInfo.Node(), -1)
	return nil
}

func updateWithPod(logger klog.Logger, s *preFilterState, updated, preemptor *v1.Pod, node *v1.Node, delta int) {
	if s == nil || node == nil || updated.Namespace != preemptor.Namespace || !nodeLabelsMatchSpreadConstraints(node.Labels, s.constraints) {
		return
	}
	req := nodeaffinity.GetRequiredNodeAffinity(preemptor)
	l := labels.Set(updated.Labels)
	for i := range s.constraints {
		c := &s.constraints[i]
		if !c.selector.Matches(l) || !c.matchNodeInclusionPolicies(logger, preemptor, node, req) {
			continue
		}
		v := node.Labels[c.topologyKey]
		s.tpValueToMatchNum[i][v] += delta
		s.criticalPaths[i].update(v, s.tpValueToMatchNum[i][v])
	}
}

func getPreFilterState(cs *framework.CycleState) (*preFilterState, error) {
	c, err := cs.Read(preFilterStateKey)
	if err != nil {
		return nil, fmt.Errorf("reading %q from cycleState: %w", preFilterStateKey, err)
	}
	s, ok := c.(*preFilterState)
	if !ok {
		return nil, fmt.Errorf("%+v convert to podtopologyspread.preFilterState error", c)
	}
	return s, nil
}

// Filter: placing the pod on node keeps every constraint's skew (its
// domain's count plus itself, minus the smallest domain's) within maxSkew.
func (pl *PodTopologySpread) Filter(ctx context.Context, cs *framework.CycleState, pod *v1.Pod, nodeInfo *framework.NodeInfo) *framework.Status {
	node := nodeInfo.Node()
	if node == nil {
		return framework.NewStatus(framework.Error, "node not found")
	}
	s, err := getPreFilterState(cs)
	if err != nil {
		return framework.AsStatus(err)
	}
	logger := klog.FromContext(ctx)
	l := labels.Set(pod.Labels)
	for i, c := range s.constraints {
		v, ok := node.Labels[c.topologyKey]
		if !ok {
			logger.V(5).Info("Node doesn't have required topology label for spread constraint", "node", klog.KObj(node), "topologyKey", c.topologyKey)
			return framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonNodeLabelNotMatch)
		}
		self := 0
		if c.selector.Matches(l) {
			self = 1
		}
		minNum := s.minMatchNum(i, c.minDomains)
		if skew := s.tpValueToMatchNum[i][v] + self - minNum; skew > int(c.maxSkew) {
			logger.V(5).Info("Node failed spreadConstraint: matchNum + selfMatchNum - minMatchNum > maxSkew", "node", klog.KObj(node),
				"topologyKey", c.topologyKey, "matchNum", s.tpValueToMatchNum[i][v], "selfMatchNum", self, "minMatchNum", minNum, "maxSkew", c.maxSkew)
			return framework.NewStatus(framework.Unschedulable, ErrReasonConstraintsNotMatch)
		}
	}
	return nil
}
