package namespace

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
)

// The deletion conditions upstream's namespace controller keeps, with the
// reason and message each has while nothing is wrong (status False).
var (
	conditionTypes = []corev1.NamespaceConditionType{
		corev1.NamespaceDeletionDiscoveryFailure,
		corev1.NamespaceDeletionGVParsingFailure,
		corev1.NamespaceDeletionContentFailure,
		corev1.NamespaceContentRemaining,
		corev1.NamespaceFinalizersRemaining,
	}
	okReasons = map[corev1.NamespaceConditionType]string{
		corev1.NamespaceDeletionDiscoveryFailure: "ResourcesDiscovered",
		corev1.NamespaceDeletionGVParsingFailure: "ParsedGroupVersions",
		corev1.NamespaceDeletionContentFailure:   "ContentDeleted",
		corev1.NamespaceContentRemaining:         "ContentRemoved",
		corev1.NamespaceFinalizersRemaining:      "ContentRemoved",
	}
	okMessages = map[corev1.NamespaceConditionType]string{
		corev1.NamespaceDeletionDiscoveryFailure: "All resources successfully discovered",
		corev1.NamespaceDeletionGVParsingFailure: "All legacy kube types successfully parsed",
		corev1.NamespaceDeletionContentFailure:   "All content successfully deleted, may be waiting on finalization",
		corev1.NamespaceContentRemaining:         "All content successfully removed",
		corev1.NamespaceFinalizersRemaining:      "All content successfully removed",
	}
)

// conditions are the failing conditions (status True) of the pass; the
// others are set to their ok variant by updateConditions.
func (d *deletion) conditions() []corev1.NamespaceCondition {
	var out []corev1.NamespaceCondition
	failing := func(t corev1.NamespaceConditionType, reason, message string) {
		out = append(out, corev1.NamespaceCondition{Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: message})
	}
	if d.discoveryErr != nil {
		message := d.discoveryErr.Error()
		var groups *discovery.ErrGroupDiscoveryFailed
		if errors.As(d.discoveryErr, &groups) {
			message = fmt.Sprintf("Discovery failed for some groups, %d failing: %v", len(groups.Groups), d.discoveryErr)
		}
		failing(corev1.NamespaceDeletionDiscoveryFailure, "DiscoveryFailed", message)
	}
	if d.parseErr != nil {
		failing(corev1.NamespaceDeletionGVParsingFailure, "GroupVersionParsingFailed", d.parseErr.Error())
	}
	if len(d.contentErrs) > 0 {
		msgs := make([]string, 0, len(d.contentErrs))
		for _, e := range d.contentErrs {
			msgs = append(msgs, e.Error())
		}
		sort.Strings(msgs)
		failing(corev1.NamespaceDeletionContentFailure, "ContentDeletionFailed",
			fmt.Sprintf("Failed to delete all resource types, %d remaining: %v", len(msgs), strings.Join(msgs, ", ")))
	}
	if d.waitingForPods {
		// Upstream returns before it totals the remaining content while pods
		// are still going: only failures show then.
		return out
	}
	if len(d.remainingByResource) > 0 {
		var left []string
		for gvr, n := range d.remainingByResource {
			left = append(left, fmt.Sprintf("%s.%s has %d resource instances", gvr.Resource, gvr.Group, n))
		}
		sort.Strings(left)
		failing(corev1.NamespaceContentRemaining, "SomeResourcesRemain", "Some resources are remaining: "+strings.Join(left, ", "))
	}
	if len(d.remainingByFinalizer) > 0 {
		var left []string
		for f, n := range d.remainingByFinalizer {
			left = append(left, fmt.Sprintf("%s in %d resource instances", f, n))
		}
		sort.Strings(left)
		failing(corev1.NamespaceFinalizersRemaining, "SomeFinalizerRemain", "Some finalizers are remaining: "+strings.Join(left, ", "))
	}
	return out
}

// updateConditions sets every deletion condition on status, failing or
// ok, and reports whether anything changed. The transition time moves only
// with the status, as upstream's.
func updateConditions(status *corev1.NamespaceStatus, failing []corev1.NamespaceCondition) bool {
	changed := false
	now := metav1.Now()
	for _, t := range conditionTypes {
		want := corev1.NamespaceCondition{Type: t, Status: corev1.ConditionFalse, Reason: okReasons[t], Message: okMessages[t]}
		for _, c := range failing {
			if c.Type == t {
				want = c
			}
		}
		want.LastTransitionTime = now
		i := slices.IndexFunc(status.Conditions, func(c corev1.NamespaceCondition) bool { return c.Type == t })
		if i < 0 {
			status.Conditions = append(status.Conditions, want)
			changed = true
			continue
		}
		old := &status.Conditions[i]
		if old.Status == want.Status && old.Reason == want.Reason && old.Message == want.Message {
			continue
		}
		if old.Status == want.Status {
			want.LastTransitionTime = old.LastTransitionTime
		}
		*old = want
		changed = true
	}
	return changed
}
