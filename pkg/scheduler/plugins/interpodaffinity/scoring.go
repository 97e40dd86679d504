package interpodaffinity

import (
	"context"
	"fmt"
	"math"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

const preScoreStateKey framework.StateKey = "PreScore" + Name

// scoreMap: topology key → value → summed weight.
type scoreMap map[string]map[string]int64

func (m scoreMap) processTerm(t *affinityTerm, weight int32, pod *v1.Pod, nsLabels labels.Set, node *v1.Node, mult int32) {
	if !t.matches(pod, nsLabels) {
		return
	}
	v, ok := node.Labels[t.topologyKey]
	if !ok {
		return
	}
	if m[t.topologyKey] == nil {
		m[t.topologyKey] = map[string]int64{}
	}
	m[t.topologyKey][v] += int64(weight * mult)
}

func (m scoreMap) processTerms(terms []weightedTerm, pod *v1.Pod, nsLabels labels.Set, node *v1.Node, mult int32) {
	for i := range terms {
		m.processTerm(&terms[i].affinityTerm, terms[i].weight, pod, nsLabels, node, mult)
	}
}

func (m scoreMap) append(o scoreMap) {
	for k, vs := range o {
		if m[k] == nil {
			m[k] = vs
			continue
		}
		for v, n := range vs {
			m[k][v] += n
		}
	}
}

type preScoreState struct {
	topologyScore scoreMap
}

// Clone: the state is read-only after PreScore.
func (s *preScoreState) Clone() framework.StateData { return s }

// processExistingPod adds what one existing pod contributes to the
// domains of its node: the incoming pod's preferred terms matching it,
// and its own required (hardPodAffinityWeight) and preferred terms
// matching the incoming pod.
func (pl *InterPodAffinity) processExistingPod(in *podTerms, nsLabels labels.Set, existing *framework.PodInfo, node *v1.Node, pod *v1.Pod, m scoreMap) {
	if len(node.Labels) == 0 {
		return
	}
	m.processTerms(in.preferredAffinity, existing.Pod, nil, node, 1)
	m.processTerms(in.preferredAntiAffinity, existing.Pod, nil, node, -1)
	if !existing.HasAffinity() {
		return
	}
	et := pl.cache.get(existing.Pod)
	if pl.hardPodAffinityWeight > 0 {
		for i := range et.requiredAffinity {
			m.processTerm(&et.requiredAffinity[i], pl.hardPodAffinityWeight, pod, nsLabels, node, 1)
		}
	}
	m.processTerms(et.preferredAffinity, pod, nsLabels, node, 1)
	m.processTerms(et.preferredAntiAffinity, pod, nsLabels, node, -1)
}

// PreScore sums the weights per topology domain over all nodes (only the
// nodes with pods with affinity when the incoming pod has no preferred
// terms).
func (pl *InterPodAffinity) PreScore(ctx context.Context, cs *framework.CycleState, pod *v1.Pod, _ []*framework.NodeInfo) *framework.Status {
	a := pod.Spec.Affinity
	hasConstraints := a != nil && (a.PodAffinity != nil && len(a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution) > 0 ||
		a.PodAntiAffinity != nil && len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) > 0)
	if pl.ignorePreferredTermsOfExistingPods && !hasConstraints {
		return framework.NewStatus(framework.Skip)
	}
	lister := pl.handle.SnapshotSharedLister().NodeInfos()
	var nodes []*framework.NodeInfo
	var err error
	if hasConstraints {
		if nodes, err = lister.List(); err != nil {
			return framework.AsStatus(fmt.Errorf("failed to get all nodes from shared lister: %w", err))
		}
	} else if nodes, err = lister.HavePodsWithAffinityList(); err != nil {
		return framework.AsStatus(fmt.Errorf("failed to get pods with affinity list: %w", err))
	}
	in, err := pl.incomingTerms(pod)
	if err != nil {
		return framework.AsStatus(fmt.Errorf("failed to parse pod: %w", err))
	}
	nsLabels := pl.namespaceLabels(ctx, pod.Namespace)

	state := &preScoreState{topologyScore: scoreMap{}}
	var mu sync.Mutex
	pl.handle.Parallelizer().Until(ctx, len(nodes), func(i int) {
		ni := nodes[i]
		node := ni.Node()
		if node == nil {
			return
		}
		pods := ni.PodsWithAffinity
		if hasConstraints {
			pods = ni.Pods
		}
		local := scoreMap{}
		for _, existing := range pods {
			pl.processExistingPod(in, nsLabels, existing, node, pod, local)
		}
		if len(local) > 0 {
			mu.Lock()
			state.topologyScore.append(local)
			mu.Unlock()
		}
	}, Name)
	if len(state.topologyScore) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	cs.Write(preScoreStateKey, state)
	return nil
}

func getPreScoreState(cs *framework.CycleState) (*preScoreState, error) {
	c, err := cs.Read(preScoreStateKey)
	if err != nil {
		return nil, fmt.Errorf("failed to read %q from cycleState: %w", preScoreStateKey, err)
	}
	s, ok := c.(*preScoreState)
	if !ok {
		return nil, fmt.Errorf("%+v  convert to interpodaffinity.preScoreState error", c)
	}
	return s, nil
}

// Score sums the weights of node's domains.
func (pl *InterPodAffinity) Score(_ context.Context, cs *framework.CycleState, _ *v1.Pod, nodeInfo *framework.NodeInfo) (int64, *framework.Status) {
	s, err := getPreScoreState(cs)
	if err != nil {
		return 0, framework.AsStatus(err)
	}
	node := nodeInfo.Node()
	if node == nil {
		return 0, framework.NewStatus(framework.Error, "node not found")
	}
	var score int64
	for k, vs := range s.topologyScore {
		if v, ok := node.Labels[k]; ok {
			score += vs[v]
		}
	}
	return score, nil
}

// NormalizeScore maps [min, max] onto [0, MaxNodeScore].
func (pl *InterPodAffinity) NormalizeScore(_ context.Context, cs *framework.CycleState, _ *v1.Pod, scores framework.NodeScoreList) *framework.Status {
	s, err := getPreScoreState(cs)
	if err != nil {
		return framework.AsStatus(err)
	}
	if len(s.topologyScore) == 0 {
		return nil
	}
	var lo, hi int64 = math.MaxInt64, math.MinInt64
	for _, sc := range scores {
		lo = min(lo, sc.Score)
		hi = max(hi, sc.Score)
	}
	diff := hi - lo
	for i := range scores {
		f := float64(0)
		if diff > 0 {
			f = float64(framework.MaxNodeScore) * (float64(scores[i].Score-lo) / float64(diff))
		}
		scores[i].Score = int64(f)
	}
	return nil
}

// ScoreExtensions: NormalizeScore.
func (pl *InterPodAffinity) ScoreExtensions() framework.ScoreExtensions { return pl }
