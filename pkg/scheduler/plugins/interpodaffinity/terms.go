package interpodaffinity

import (
	"sync"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/sets"
)

// affinityTerm is a parsed v1.PodAffinityTerm: which pods (by labels and
// namespace) it selects, over which topology key.
type affinityTerm struct {
	namespaces  sets.Set[string]
	selector    labels.Selector
	topologyKey string
	// nsSelector: namespaces by label; Nothing when the term has none.
	nsSelector labels.Selector
}

// matches: pod is selected by the term; nsLabels are the labels of pod's
// namespace (nil when only the term's namespace list matters).
func (t *affinityTerm) matches(pod *v1.Pod, nsLabels labels.Set) bool {
	if t.namespaces.Has(pod.Namespace) || t.nsSelector.Matches(nsLabels) {
		return t.selector.Matches(labels.Set(pod.Labels))
	}
	return false
}

type weightedTerm struct {
	affinityTerm
	weight int32
}

// podTerms are one pod's four kinds of terms, parsed once.
type podTerms struct {
	requiredAffinity      []affinityTerm
	requiredAntiAffinity  []affinityTerm
	preferredAffinity     []weightedTerm
	preferredAntiAffinity []weightedTerm
}

func (p *podTerms) empty() bool {
	return len(p.requiredAffinity) == 0 && len(p.requiredAntiAffinity) == 0 &&
		len(p.preferredAffinity) == 0 && len(p.preferredAntiAffinity) == 0
}

// newAffinityTerm parses a term of pod. matchLabelKeys and
// mismatchLabelKeys are merged into the selector with the pod's own label
// values, as upstream's API server does at creation (skiff's does not, so
// the scheduler does it; merging twice changes nothing).
func newAffinityTerm(pod *v1.Pod, term *v1.PodAffinityTerm) (affinityTerm, error) {
	sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
	if err != nil {
		return affinityTerm{}, err
	}
	if term.LabelSelector != nil {
		for _, k := range term.MatchLabelKeys {
			if v, ok := pod.Labels[k]; ok {
				r, err := labels.NewRequirement(k, selection.In, []string{v})
				if err != nil {
					return affinityTerm{}, err
				}
				sel = sel.Add(*r)
			}
		}
		for _, k := range term.MismatchLabelKeys {
			if v, ok := pod.Labels[k]; ok {
				r, err := labels.NewRequirement(k, selection.NotIn, []string{v})
				if err != nil {
					return affinityTerm{}, err
				}
				sel = sel.Add(*r)
			}
		}
	}
	nsSel, err := metav1.LabelSelectorAsSelector(term.NamespaceSelector)
	if err != nil {
		return affinityTerm{}, err
	}
	ns := sets.New[string]()
	if len(term.Namespaces) == 0 && term.NamespaceSelector == nil {
		ns.Insert(pod.Namespace)
	} else {
		ns.Insert(term.Namespaces...)
	}
	return affinityTerm{namespaces: ns, selector: sel, topologyKey: term.TopologyKey, nsSelector: nsSel}, nil
}

func parseTerms(pod *v1.Pod, in []v1.PodAffinityTerm) ([]affinityTerm, error) {
	var out []affinityTerm
	for i := range in {
		t, err := newAffinityTerm(pod, &in[i])
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func parseWeighted(pod *v1.Pod, in []v1.WeightedPodAffinityTerm) ([]weightedTerm, error) {
	var out []weightedTerm
	for i := range in {
		t, err := newAffinityTerm(pod, &in[i].PodAffinityTerm)
		if err != nil {
			return nil, err
		}
		out = append(out, weightedTerm{affinityTerm: t, weight: in[i].Weight})
	}
	return out, nil
}

// parsePodTerms parses all of pod's pod (anti-)affinity terms.
func parsePodTerms(pod *v1.Pod) (*podTerms, error) {
	p := &podTerms{}
	a := pod.Spec.Affinity
	if a == nil {
		return p, nil
	}
	var err error
	if a.PodAffinity != nil {
		if p.requiredAffinity, err = parseTerms(pod, a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution); err != nil {
			return nil, err
		}
		if p.preferredAffinity, err = parseWeighted(pod, a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution); err != nil {
			return nil, err
		}
	}
	if a.PodAntiAffinity != nil {
		if p.requiredAntiAffinity, err = parseTerms(pod, a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution); err != nil {
			return nil, err
		}
		if p.preferredAntiAffinity, err = parseWeighted(pod, a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// termCache keeps the parsed terms of existing pods, so a cycle does not
// parse every pod with anti-affinity again. Pods are never mutated in
// place (an update is a new object), so the pointer is the key; the cache
// is dropped whole when it grows past maxCached.
type termCache struct {
	mu    sync.RWMutex
	terms map[*v1.Pod]*podTerms
}

const maxCached = 20000

// emptyTerms stands for a pod whose terms do not parse: as upstream, whose
// cache never admits such a pod, it constrains nothing.
var emptyTerms = &podTerms{}

func (c *termCache) get(pod *v1.Pod) *podTerms {
	c.mu.RLock()
	t, ok := c.terms[pod]
	c.mu.RUnlock()
	if ok {
		return t
	}
	t, err := parsePodTerms(pod)
	if err != nil {
		t = emptyTerms
	}
	c.mu.Lock()
	if c.terms == nil || len(c.terms) >= maxCached {
		c.terms = map[*v1.Pod]*podTerms{}
	}
	c.terms[pod] = t
	c.mu.Unlock()
	return t
}

// podMatchesAllTerms: pod is selected by every term (false for none).
func podMatchesAllTerms(terms []affinityTerm, pod *v1.Pod) bool {
	if len(terms) == 0 {
		return false
	}
	for i := range terms {
		if !terms[i].matches(pod, nil) {
			return false
		}
	}
	return true
}

func podMatchesAnyTerm(terms []affinityTerm, pod *v1.Pod) bool {
	for i := range terms {
		if terms[i].matches(pod, nil) {
			return true
		}
	}
	return false
}
