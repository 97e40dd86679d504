package daemonset

import (
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	intstrutil "k8s.io/apimachinery/pkg/util/intstr"
	v1helper "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/controllers/podutil"
)

// Labels of daemon pods (upstream's extensions constants).
const (
	// TemplateGenerationLabel is the DaemonSet's template generation
	// (its deprecated.daemonset.template.generation annotation).
	TemplateGenerationLabel = "pod-template-generation"
	// HashLabel is the pod's revision: the hash of the template.
	HashLabel = appsv1.DefaultDaemonSetUniqueLabelKey
)

// templateGeneration is the DaemonSet's
// deprecated.daemonset.template.generation annotation, nil if it has none
// or an invalid one.
func templateGeneration(ds *appsv1.DaemonSet) *int64 {
	v, ok := ds.Annotations[appsv1.DeprecatedTemplateGeneration]
	if !ok {
		return nil
	}
	g, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil
	}
	return &g
}

// addOrUpdateToleration is upstream's AddOrUpdateTolerationInPodSpec: t
// replaces the toleration it matches (key, operator, value, effect), else
// is appended.
func addOrUpdateToleration(spec *corev1.PodSpec, t corev1.Toleration) {
	var out []corev1.Toleration
	updated := false
	for i := range spec.Tolerations {
		if t.MatchToleration(&spec.Tolerations[i]) {
			if equality.Semantic.DeepEqual(t, spec.Tolerations[i]) {
				return
			}
			out = append(out, t)
			updated = true
			continue
		}
		out = append(out, spec.Tolerations[i])
	}
	if !updated {
		out = append(out, t)
	}
	spec.Tolerations = out
}

// AddDaemonTolerations adds the tolerations every daemon pod gets:
// not-ready and unreachable NoExecute (forever), disk, memory and PID
// pressure and unschedulable NoSchedule, and network-unavailable
// NoSchedule for host-network pods.
func AddDaemonTolerations(spec *corev1.PodSpec) {
	exists := func(key string, effect corev1.TaintEffect) corev1.Toleration {
		return corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: effect}
	}
	addOrUpdateToleration(spec, exists(corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute))
	addOrUpdateToleration(spec, exists(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute))
	addOrUpdateToleration(spec, exists(corev1.TaintNodeDiskPressure, corev1.TaintEffectNoSchedule))
	addOrUpdateToleration(spec, exists(corev1.TaintNodeMemoryPressure, corev1.TaintEffectNoSchedule))
	addOrUpdateToleration(spec, exists(corev1.TaintNodePIDPressure, corev1.TaintEffectNoSchedule))
	addOrUpdateToleration(spec, exists(corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule))
	if spec.HostNetwork {
		addOrUpdateToleration(spec, exists(corev1.TaintNodeNetworkUnavailable, corev1.TaintEffectNoSchedule))
	}
}

// podTemplate is the template of the DaemonSet's new pods: its own, with
// the daemon tolerations and the generation and hash labels.
func podTemplate(ds *appsv1.DaemonSet, hash string) corev1.PodTemplateSpec {
	t := *ds.Spec.Template.DeepCopy()
	AddDaemonTolerations(&t.Spec)
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	if g := templateGeneration(ds); g != nil {
		t.Labels[TemplateGenerationLabel] = fmt.Sprint(*g)
	}
	if hash != "" {
		t.Labels[HashLabel] = hash
	}
	return t
}

// setNodeAffinity makes the affinity require the node by metadata.name
// (replacing the required node selector terms, keeping the rest).
func setNodeAffinity(affinity *corev1.Affinity, node string) *corev1.Affinity {
	selector := &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchFields: []corev1.NodeSelectorRequirement{{Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
	}}}
	switch {
	case affinity == nil:
		return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: selector}}
	case affinity.NodeAffinity == nil:
		affinity.NodeAffinity = &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: selector}
	default:
		affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = selector
	}
	return affinity
}

// targetNode is the node a daemon pod is on, or is meant for by its
// required matchFields affinity.
func targetNode(pod *corev1.Pod) (string, error) {
	if pod.Spec.NodeName != "" {
		return pod.Spec.NodeName, nil
	}
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return "", fmt.Errorf("no spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution for pod %s/%s", pod.Namespace, pod.Name)
	}
	terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) < 1 {
		return "", fmt.Errorf("no nodeSelectorTerms in requiredDuringSchedulingIgnoredDuringExecution of pod %s/%s", pod.Namespace, pod.Name)
	}
	for _, term := range terms {
		for _, exp := range term.MatchFields {
			if exp.Key == metav1.ObjectNameField && exp.Operator == corev1.NodeSelectorOpIn {
				if len(exp.Values) != 1 {
					return "", fmt.Errorf("the matchFields value of '%s' is not unique for pod %s/%s", metav1.ObjectNameField, pod.Namespace, pod.Name)
				}
				return exp.Values[0], nil
			}
		}
	}
	return "", fmt.Errorf("no node name found for pod %s/%s", pod.Namespace, pod.Name)
}

// isPodUpdated: the pod has the hash, or the template generation.
func isPodUpdated(pod *corev1.Pod, hash string, generation *int64) bool {
	return (hash != "" && pod.Labels[HashLabel] == hash) ||
		(generation != nil && pod.Labels[TemplateGenerationLabel] == fmt.Sprint(*generation))
}

func surgeCount(ds *appsv1.DaemonSet, n int) (int, error) {
	r := ds.Spec.UpdateStrategy.RollingUpdate
	if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType || r == nil || r.MaxSurge == nil {
		return 0, nil
	}
	return intstrutil.GetScaledValueFromIntOrPercent(r.MaxSurge, n, true)
}

func unavailableCount(ds *appsv1.DaemonSet, n int) (int, error) {
	r := ds.Spec.UpdateStrategy.RollingUpdate
	if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType || r == nil {
		return 0, nil
	}
	return intstrutil.GetScaledValueFromIntOrPercent(r.MaxUnavailable, n, true)
}

func allowsSurge(ds *appsv1.DaemonSet) bool {
	n, err := surgeCount(ds, 1)
	return err == nil && n > 0
}

// placement is what decides where a DaemonSet's pods run.
type placement struct {
	ds          *appsv1.DaemonSet
	tolerations []corev1.Toleration
	affinity    nodeaffinity.RequiredNodeAffinity
}

func newPlacement(ds *appsv1.DaemonSet) placement {
	spec := ds.Spec.Template.Spec
	spec.Tolerations = append([]corev1.Toleration(nil), spec.Tolerations...)
	AddDaemonTolerations(&spec)
	return placement{ds: ds, tolerations: spec.Tolerations,
		affinity: nodeaffinity.NewRequiredNodeAffinity(ds.Spec.Template.Spec.NodeSelector, ds.Spec.Template.Spec.Affinity)}
}

// shouldRun is upstream's nodeShouldRunDaemonPod: whether a daemon pod
// should be created on the node (its nodeName, node selector and affinity
// match, its NoSchedule and NoExecute taints are tolerated), and whether
// one already there should stay (also when only NoSchedule taints are
// not tolerated).
func (p placement) shouldRun(logger klog.Logger, node *corev1.Node) (shouldRun, shouldContinueRunning bool) {
	if name := p.ds.Spec.Template.Spec.NodeName; name != "" && name != node.Name {
		return false, false
	}
	if ok, _ := p.affinity.Match(node); !ok {
		return false, false
	}
	_, untolerated := v1helper.FindMatchingUntoleratedTaint(logger, node.Spec.Taints, p.tolerations, func(t *corev1.Taint) bool {
		return t.Effect == corev1.TaintEffectNoExecute || t.Effect == corev1.TaintEffectNoSchedule
	}, false)
	if !untolerated {
		return true, true
	}
	_, untoleratedNoExecute := v1helper.FindMatchingUntoleratedTaint(logger, node.Spec.Taints, p.tolerations, func(t *corev1.Taint) bool {
		return t.Effect == corev1.TaintEffectNoExecute
	}, false)
	return false, !untoleratedNoExecute
}

// podPrefix is the generateName of the DaemonSet's pods: "<name>-", or
// the name if that is no valid prefix.
func podPrefix(name string) string {
	if prefix := name + "-"; len(apivalidation.NameIsDNSSubdomain(prefix, true)) == 0 {
		return prefix
	}
	return name
}

// isPodAvailable: ready for more than minReadySeconds at now. Strictly
// more, unlike podutil.IsPodAvailable (upstream's, where exactly
// minReadySeconds counts): kept as it was; only the instant differs.
func isPodAvailable(pod *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	c := podutil.GetPodReadyCondition(pod)
	if c == nil || c.Status != corev1.ConditionTrue {
		return false
	}
	return minReadySeconds == 0 || (!c.LastTransitionTime.IsZero() && c.LastTransitionTime.Add(time.Duration(minReadySeconds)*time.Second).Before(now))
}

// byCreation orders pods on a node before those not, then oldest first,
// then by name (upstream's podByCreationTimestampAndPhase).
func byCreation(a, b *corev1.Pod) int {
	switch {
	case a.Spec.NodeName != "" && b.Spec.NodeName == "":
		return -1
	case a.Spec.NodeName == "" && b.Spec.NodeName != "":
		return 1
	case a.CreationTimestamp.Equal(&b.CreationTimestamp):
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	case a.CreationTimestamp.Before(&b.CreationTimestamp):
		return -1
	}
	return 1
}
