package nodelifecycle

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The NoExecute taints for a node not Ready: mutually exclusive, as the
// Ready condition's values.
var (
	unreachableTaint = corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}
	notReadyTaint    = corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}
)

// conditionTaints is, per condition and status, the NoSchedule taint's
// key (upstream's TaintNodesByCondition).
var conditionTaints = map[corev1.NodeConditionType]map[corev1.ConditionStatus]string{
	corev1.NodeReady: {
		corev1.ConditionFalse:   corev1.TaintNodeNotReady,
		corev1.ConditionUnknown: corev1.TaintNodeUnreachable,
	},
	corev1.NodeMemoryPressure:     {corev1.ConditionTrue: corev1.TaintNodeMemoryPressure},
	corev1.NodeDiskPressure:       {corev1.ConditionTrue: corev1.TaintNodeDiskPressure},
	corev1.NodeNetworkUnavailable: {corev1.ConditionTrue: corev1.TaintNodeNetworkUnavailable},
	corev1.NodePIDPressure:        {corev1.ConditionTrue: corev1.TaintNodePIDPressure},
}

// conditionTaintKeys are the keys of conditionTaints' taints.
var conditionTaintKeys = func() map[string]bool {
	keys := map[string]bool{}
	for _, m := range conditionTaints {
		for _, k := range m {
			keys[k] = true
		}
	}
	return keys
}()

// noScheduleTaints are the NoSchedule taints the node's conditions and
// spec.unschedulable call for.
func noScheduleTaints(node *corev1.Node) []corev1.Taint {
	var taints []corev1.Taint
	for _, c := range node.Status.Conditions {
		if key, ok := conditionTaints[c.Type][c.Status]; ok {
			taints = append(taints, corev1.Taint{Key: key, Effect: corev1.TaintEffectNoSchedule})
		}
	}
	if node.Spec.Unschedulable {
		taints = append(taints, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule})
	}
	return taints
}

// managedNoSchedule says whether t is one of the NoSchedule taints this
// controller keeps in line with the node.
func managedNoSchedule(t *corev1.Taint) bool {
	return t.Effect == corev1.TaintEffectNoSchedule && (t.Key == corev1.TaintNodeUnschedulable || conditionTaintKeys[t.Key])
}

// noScheduleDiff is what to add to and remove from the node's taints for
// its NoSchedule taints to be those its state calls for.
func noScheduleDiff(node *corev1.Node) (add, remove []corev1.Taint) {
	want := noScheduleTaints(node)
	var have []corev1.Taint
	for i := range node.Spec.Taints {
		if managedNoSchedule(&node.Spec.Taints[i]) {
			have = append(have, node.Spec.Taints[i])
		}
	}
	for i := range want {
		if !hasTaint(have, &want[i]) {
			add = append(add, want[i])
		}
	}
	for i := range have {
		if !hasTaint(want, &have[i]) {
			remove = append(remove, have[i])
		}
	}
	return add, remove
}

func hasTaint(taints []corev1.Taint, t *corev1.Taint) bool {
	for i := range taints {
		if taints[i].MatchTaint(t) {
			return true
		}
	}
	return false
}

// withTaints is taints without those matching remove (key and effect) and
// with those of add that have no match, added now; changed says whether
// that differs.
func withTaints(taints, add, remove []corev1.Taint, now metav1.Time) (out []corev1.Taint, changed bool) {
	for i := range taints {
		if hasTaint(remove, &taints[i]) {
			changed = true
			continue
		}
		out = append(out, taints[i])
	}
	for _, t := range add {
		// A taint already there keeps its timeAdded, which deadlines
		// count from (tainteviction).
		if hasTaint(out, &t) {
			continue
		}
		t.TimeAdded = now.DeepCopy()
		out = append(out, t)
		changed = true
	}
	return out, changed
}

// swapTaints adds taints (stamped with the time) and removes others on the
// node, starting from the given copy and reading the API's on a conflict.
// The patch carries the resourceVersion: spec.taints has no merge key, so
// only a whole list written over the one read is safe.
func (c *Controller) swapTaints(ctx context.Context, node *corev1.Node, add, remove []corev1.Taint) error {
	cur := node
	first := true
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		if !first {
			cur = &corev1.Node{}
			if err := c.APIReader.Get(ctx, client.ObjectKey{Name: node.Name}, cur); err != nil {
				return err
			}
		}
		first = false
		taints, changed := withTaints(cur.Spec.Taints, add, remove, metav1.NewTime(c.Clock.Now()))
		if !changed {
			return nil
		}
		var list any = taints
		if len(taints) == 0 {
			list = nil
		}
		data, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"resourceVersion": cur.ResourceVersion},
			"spec":     map[string]any{"taints": list},
		})
		if err != nil {
			return err
		}
		target := cur.DeepCopy()
		if err := c.Client.Patch(ctx, target, client.RawPatch(types.MergePatchType, data)); err != nil {
			return fmt.Errorf("patching the taints of node %s: %w", node.Name, err)
		}
		return nil
	})
}
