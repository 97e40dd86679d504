package interpodaffinity

import (
	"context"
	"fmt"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

const preFilterStateKey framework.StateKey = "PreFilter" + Name

// Filter's reasons, upstream's texts.
const (
	ErrReasonExistingAntiAffinityRulesNotMatch = "node(s) didn't satisfy existing pods anti-affinity rules"
	ErrReasonAffinityRulesNotMatch             = "node(s) didn't match pod affinity rules"
	ErrReasonAntiAffinityRulesNotMatch         = "node(s) didn't match pod anti-affinity rules"
)

type topologyPair struct{ key, value string }

// topologyCounts: matching pods (or terms) per topology domain.
type topologyCounts map[topologyPair]int64

func (m topologyCounts) clone() topologyCounts {
	c := make(topologyCounts, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func (m topologyCounts) merge(o topologyCounts) {
	for k, v := range o {
		m[k] += v
	}
}

// add counts value in node's domain of key; a node without the key is in
// no domain.
func (m topologyCounts) add(node *v1.Node, key string, value int64) {
	if tv, ok := node.Labels[key]; ok {
		p := topologyPair{key, tv}
		m[p] += value
		if m[p] == 0 {
			delete(m, p)
		}
	}
}

// addAffinity counts pod in each term's domain if it matches all of them
// (affinity terms are ANDed).
func (m topologyCounts) addAffinity(terms []affinityTerm, pod *v1.Pod, node *v1.Node, value int64) {
	if podMatchesAllTerms(terms, pod) {
		for i := range terms {
			m.add(node, terms[i].topologyKey, value)
		}
	}
}

// addAntiAffinity counts each term pod matches (anti-affinity terms are
// each a constraint of their own).
func (m topologyCounts) addAntiAffinity(terms []affinityTerm, pod *v1.Pod, nsLabels labels.Set, node *v1.Node, value int64) {
	for i := range terms {
		if terms[i].matches(pod, nsLabels) {
			m.add(node, terms[i].topologyKey, value)
		}
	}
}

// preFilterState is the cycle's precomputation.
type preFilterState struct {
	// existingAntiAffinity: domains where an existing pod's required
	// anti-affinity term matches the incoming pod.
	existingAntiAffinity topologyCounts
	// affinity: domains with pods matching all the incoming pod's required
	// affinity terms; antiAffinity: domains with pods matching one of its
	// required anti-affinity terms.
	affinity     topologyCounts
	antiAffinity topologyCounts
	pod          *v1.Pod
	terms        *podTerms
	// namespaceLabels: the incoming pod's namespace's labels, for the
	// existing pods' namespaceSelectors.
	namespaceLabels labels.Set
	cache           *termCache
}

func (s *preFilterState) Clone() framework.StateData {
	if s == nil {
		return nil
	}
	c := *s
	c.existingAntiAffinity = s.existingAntiAffinity.clone()
	c.affinity = s.affinity.clone()
	c.antiAffinity = s.antiAffinity.clone()
	return &c
}

// updateWithPod adds (1) or removes (-1) an existing pod on node, for
// preemption's what-ifs.
func (s *preFilterState) updateWithPod(pi *framework.PodInfo, node *v1.Node, mult int64) {
	if s == nil || node == nil {
		return
	}
	s.existingAntiAffinity.addAntiAffinity(s.cache.get(pi.Pod).requiredAntiAffinity, s.pod, s.namespaceLabels, node, mult)
	s.affinity.addAffinity(s.terms.requiredAffinity, pi.Pod, node, mult)
	s.antiAffinity.addAntiAffinity(s.terms.requiredAntiAffinity, pi.Pod, nil, node, mult)
}

// mergeNamespaceSelector turns a term's namespaceSelector into the names
// of the namespaces it selects now, as upstream does for the incoming
// pod's terms.
func (pl *InterPodAffinity) mergeNamespaceSelector(t *affinityTerm) error {
	if t.nsSelector.Empty() {
		return nil
	}
	nss, err := pl.nsLister.List(t.nsSelector)
	if err != nil {
		return err
	}
	ns := t.namespaces.Clone()
	for _, n := range nss {
		ns.Insert(n.Name)
	}
	t.namespaces = ns
	t.nsSelector = labels.Nothing()
	return nil
}

// incomingTerms parses the incoming pod's terms (never cached: the
// namespaceSelectors resolve against the namespaces of this moment).
func (pl *InterPodAffinity) incomingTerms(pod *v1.Pod) (*podTerms, error) {
	t, err := parsePodTerms(pod)
	if err != nil {
		return nil, err
	}
	for _, list := range [][]affinityTerm{t.requiredAffinity, t.requiredAntiAffinity} {
		for i := range list {
			if err := pl.mergeNamespaceSelector(&list[i]); err != nil {
				return nil, err
			}
		}
	}
	for _, list := range [][]weightedTerm{t.preferredAffinity, t.preferredAntiAffinity} {
		for i := range list {
			if err := pl.mergeNamespaceSelector(&list[i].affinityTerm); err != nil {
				return nil, err
			}
		}
	}
	return t, nil
}

func (pl *InterPodAffinity) namespaceLabels(ctx context.Context, ns string) labels.Set {
	n, err := pl.nsLister.Get(ns)
	if err != nil {
		framework.Logger(ctx).V(3).Info("Getting namespace, assuming no labels", "namespace", ns, "err", err)
		return nil
	}
	return labels.Merge(n.Labels, nil)
}

// PreFilter counts, over the snapshot, the domains the incoming pod's
// required terms and the existing pods' required anti-affinity care about.
func (pl *InterPodAffinity) PreFilter(ctx context.Context, cs *framework.CycleState, pod *v1.Pod, allNodes []*framework.NodeInfo) (*framework.PreFilterResult, *framework.Status) {
	terms, err := pl.incomingTerms(pod)
	if err != nil {
		return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable, fmt.Sprintf("parsing pod: %+v", err))
	}
	withAnti, err := pl.handle.SnapshotSharedLister().NodeInfos().HavePodsWithRequiredAntiAffinityList()
	if err != nil {
		return nil, framework.AsStatus(fmt.Errorf("failed to list NodeInfos with pods with affinity: %w", err))
	}
	s := &preFilterState{pod: pod, terms: terms, cache: &pl.cache, namespaceLabels: pl.namespaceLabels(ctx, pod.Namespace)}
	s.existingAntiAffinity = pl.existingAntiAffinityCounts(ctx, pod, s.namespaceLabels, withAnti)
	s.affinity, s.antiAffinity = pl.incomingCounts(ctx, terms, allNodes)

	if len(s.existingAntiAffinity) == 0 && len(terms.requiredAffinity) == 0 && len(terms.requiredAntiAffinity) == 0 {
		return nil, framework.NewStatus(framework.Skip)
	}
	cs.Write(preFilterStateKey, s)
	return nil, nil
}

// existingAntiAffinityCounts: per domain, the existing pods' required
// anti-affinity terms that match the incoming pod.
func (pl *InterPodAffinity) existingAntiAffinityCounts(ctx context.Context, pod *v1.Pod, nsLabels labels.Set, nodes []*framework.NodeInfo) topologyCounts {
	var mu sync.Mutex
	out := topologyCounts{}
	pl.handle.Parallelizer().Until(ctx, len(nodes), func(i int) {
		ni := nodes[i]
		node := ni.Node()
		if node == nil {
			return
		}
		local := topologyCounts{}
		for _, existing := range ni.PodsWithRequiredAntiAffinity {
			local.addAntiAffinity(pl.cache.get(existing.Pod).requiredAntiAffinity, pod, nsLabels, node, 1)
		}
		if len(local) > 0 {
			mu.Lock()
			out.merge(local)
			mu.Unlock()
		}
	}, Name)
	return out
}

// incomingCounts: per domain, the existing pods matching the incoming
// pod's required affinity (all terms) and anti-affinity (each term).
func (pl *InterPodAffinity) incomingCounts(ctx context.Context, terms *podTerms, nodes []*framework.NodeInfo) (topologyCounts, topologyCounts) {
	aff, anti := topologyCounts{}, topologyCounts{}
	if len(terms.requiredAffinity) == 0 && len(terms.requiredAntiAffinity) == 0 {
		return aff, anti
	}
	var mu sync.Mutex
	pl.handle.Parallelizer().Until(ctx, len(nodes), func(i int) {
		ni := nodes[i]
		node := ni.Node()
		if node == nil {
			return
		}
		la, lanti := topologyCounts{}, topologyCounts{}
		for _, existing := range ni.Pods {
			la.addAffinity(terms.requiredAffinity, existing.Pod, node, 1)
			lanti.addAntiAffinity(terms.requiredAntiAffinity, existing.Pod, nil, node, 1)
		}
		if len(la) > 0 || len(lanti) > 0 {
			mu.Lock()
			aff.merge(la)
			anti.merge(lanti)
			mu.Unlock()
		}
	}, Name)
	return aff, anti
}

// PreFilterExtensions: preemption adds and removes pods.
func (pl *InterPodAffinity) PreFilterExtensions() framework.PreFilterExtensions { return pl }

// AddPod counts podInfoToAdd as if it ran on nodeInfo.
func (pl *InterPodAffinity) AddPod(_ context.Context, cs *framework.CycleState, _ *v1.Pod, podInfoToAdd *framework.PodInfo, nodeInfo *framework.NodeInfo) *framework.Status {
	s, err := getPreFilterState(cs)
	if err != nil {
		return framework.AsStatus(err)
	}
	s.updateWithPod(podInfoToAdd, nodeInfo.Node(), 1)
	return nil
}

// RemovePod uncounts podInfoToRemove from nodeInfo.
func (pl *InterPodAffinity) RemovePod(_ context.Context, cs *framework.CycleState, _ *v1.Pod, podInfoToRemove *framework.PodInfo, nodeInfo *framework.NodeInfo) *framework.Status {
	s, err := getPreFilterState(cs)
	if err != nil {
		return framework.AsStatus(err)
	}
	s.updateWithPod(podInfoToRemove, nodeInfo.Node(), -1)
	return nil
}

func getPreFilterState(cs *framework.CycleState) (*preFilterState, error) {
	c, err := cs.Read(preFilterStateKey)
	if err != nil {
		return nil, fmt.Errorf("error reading %q from cycleState: %w", preFilterStateKey, err)
	}
	s, ok := c.(*preFilterState)
	if !ok {
		return nil, fmt.Errorf("%+v  convert to interpodaffinity.state error", c)
	}
	return s, nil
}

// satisfyExistingPodsAntiAffinity: no existing pod's anti-affinity
// forbids the incoming pod in any of node's domains.
func satisfyExistingPodsAntiAffinity(s *preFilterState, node *v1.Node) bool {
	if len(s.existingAntiAffinity) == 0 {
		return true
	}
	for k, v := range node.Labels {
		if s.existingAntiAffinity[topologyPair{k, v}] > 0 {
			return false
		}
	}
	return true
}

// satisfyPodAntiAffinity: no pod the incoming pod's anti-affinity selects
// is in node's domain of that term.
func satisfyPodAntiAffinity(s *preFilterState, node *v1.Node) bool {
	if len(s.antiAffinity) == 0 {
		return true
	}
	for i := range s.terms.requiredAntiAffinity {
		t := &s.terms.requiredAntiAffinity[i]
		if v, ok := node.Labels[t.topologyKey]; ok && s.antiAffinity[topologyPair{t.topologyKey, v}] > 0 {
			return false
		}
	}
	return true
}

// satisfyPodAffinity: node has every term's topology key and each of its
// domains holds a matching pod — or no pod matches anywhere and the pod
// matches its own terms (the first pod of a group that wants to be
// together).
func satisfyPodAffinity(s *preFilterState, node *v1.Node) bool {
	podsExist := true
	for i := range s.terms.requiredAffinity {
		t := &s.terms.requiredAffinity[i]
		v, ok := node.Labels[t.topologyKey]
		if !ok {
			return false
		}
		if s.affinity[topologyPair{t.topologyKey, v}] <= 0 {
			podsExist = false
		}
	}
	if !podsExist {
		return len(s.affinity) == 0 && podMatchesAllTerms(s.terms.requiredAffinity, s.pod)
	}
	return true
}

// Filter checks the node against the PreFilter counts.
func (pl *InterPodAffinity) Filter(_ context.Context, cs *framework.CycleState, _ *v1.Pod, nodeInfo *framework.NodeInfo) *framework.Status {
	s, err := getPreFilterState(cs)
	if err != nil {
		return framework.AsStatus(err)
	}
	node := nodeInfo.Node()
	if node == nil {
		return framework.NewStatus(framework.Error, "node not found")
	}
	if !satisfyPodAffinity(s, node) {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonAffinityRulesNotMatch)
	}
	if !satisfyPodAntiAffinity(s, node) {
		return framework.NewStatus(framework.Unschedulable, ErrReasonAntiAffinityRulesNotMatch)
	}
	if !satisfyExistingPodsAntiAffinity(s, node) {
		return framework.NewStatus(framework.Unschedulable, ErrReasonExistingAntiAffinityRulesNotMatch)
	}
	return nil
}
