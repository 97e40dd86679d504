package replicaset

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/controllers/podutil"
)

// Reasons of the ReplicaFailure condition and of the pod events
// (upstream's).
const (
	ReasonFailedCreate     = "FailedCreate"
	ReasonSuccessfulCreate = "SuccessfulCreate"
	ReasonFailedDelete     = "FailedDelete"
	ReasonSuccessfulDelete = "SuccessfulDelete"
)

// calculateStatus is the status of rs with the active pods it controls and
// its terminating ones (nil: not counted), as upstream's: the
// ReplicaFailure condition is set at the first failure to create or delete
// (with its error as message) and removed by a sync without one.
func calculateStatus(rs *appsv1.ReplicaSet, active, terminating []*corev1.Pod, countTerminating bool, manageErr error, now time.Time) appsv1.ReplicaSetStatus {
	status := rs.Status
	template := labels.Set(rs.Spec.Template.Labels).AsSelectorPreValidated()
	var fullyLabeled, ready, available int32
	for _, p := range active {
		if template.Matches(labels.Set(p.Labels)) {
			fullyLabeled++
		}
		if podutil.IsPodReady(p) {
			ready++
			if podutil.IsPodAvailable(p, rs.Spec.MinReadySeconds, now) {
				available++
			}
		}
	}
	failure := condition(rs.Status, appsv1.ReplicaSetReplicaFailure)
	switch {
	case manageErr != nil && failure == nil:
		var reason string
		if diff := len(active) - int(ptr.Deref(rs.Spec.Replicas, 1)); diff < 0 {
			reason = ReasonFailedCreate
		} else if diff > 0 {
			reason = ReasonFailedDelete
		}
		setCondition(&status, appsv1.ReplicaSetCondition{Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(now), Reason: reason, Message: manageErr.Error()})
	case manageErr == nil && failure != nil:
		status.Conditions = withoutCondition(status.Conditions, appsv1.ReplicaSetReplicaFailure)
	}
	status.Replicas = int32(len(active))
	status.FullyLabeledReplicas = fullyLabeled
	status.ReadyReplicas = ready
	status.AvailableReplicas = available
	status.TerminatingReplicas = nil
	if countTerminating {
		status.TerminatingReplicas = ptr.To(int32(len(terminating)))
	}
	return status
}

// statusUnchanged: writing status would change nothing, observedGeneration
// included.
func statusUnchanged(rs *appsv1.ReplicaSet, s appsv1.ReplicaSetStatus) bool {
	o := rs.Status
	return o.Replicas == s.Replicas && o.FullyLabeledReplicas == s.FullyLabeledReplicas &&
		o.ReadyReplicas == s.ReadyReplicas && o.AvailableReplicas == s.AvailableReplicas &&
		ptr.Equal(o.TerminatingReplicas, s.TerminatingReplicas) && rs.Generation == o.ObservedGeneration &&
		apiequality.Semantic.DeepEqual(o.Conditions, s.Conditions)
}

func condition(s appsv1.ReplicaSetStatus, t appsv1.ReplicaSetConditionType) *appsv1.ReplicaSetCondition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == t {
			return &s.Conditions[i]
		}
	}
	return nil
}

// setCondition adds or replaces c, unless one of its type with the same
// status and reason is there.
func setCondition(s *appsv1.ReplicaSetStatus, c appsv1.ReplicaSetCondition) {
	if cur := condition(*s, c.Type); cur != nil && cur.Status == c.Status && cur.Reason == c.Reason {
		return
	}
	s.Conditions = append(withoutCondition(s.Conditions, c.Type), c)
}

func withoutCondition(cs []appsv1.ReplicaSetCondition, t appsv1.ReplicaSetConditionType) []appsv1.ReplicaSetCondition {
	var out []appsv1.ReplicaSetCondition
	for _, c := range cs {
		if c.Type != t {
			out = append(out, c)
		}
	}
	return out
}
