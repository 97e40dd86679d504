package validation

import (
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	corevalidation "github.com/skiff-dev/skiff/pkg/apis/core/validation"
)

// The status validators of upstream's apps status strategies: counts are
// non-negative, bounded by status.replicas, and collisionCount never goes
// down.

const notAboveReplicas = "cannot be greater than status.replicas"

func nonNeg(v int64, p *field.Path) field.ErrorList {
	return corevalidation.ValidateNonnegativeField(v, p)
}

func nonNegPtr(v *int32, p *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	return nonNeg(int64(*v), p)
}

// collisionCountDecremented is upstream's IsDecremented check.
func collisionCountDecremented(n, old *int32, p *field.Path) field.ErrorList {
	if old == nil || (n != nil && *n >= *old) {
		return nil
	}
	value := int32(0)
	if n != nil {
		value = *n
	}
	return field.ErrorList{field.Invalid(p, value, "cannot be decremented")}
}

// ValidateDeploymentStatusUpdate checks status counts of a Deployment.
func ValidateDeploymentStatusUpdate(d, old *appsv1.Deployment) field.ErrorList {
	s, p := &d.Status, field.NewPath("status")
	errs := nonNeg(s.ObservedGeneration, p.Child("observedGeneration"))
	errs = append(errs, nonNeg(int64(s.Replicas), p.Child("replicas"))...)
	errs = append(errs, nonNeg(int64(s.UpdatedReplicas), p.Child("updatedReplicas"))...)
	errs = append(errs, nonNeg(int64(s.ReadyReplicas), p.Child("readyReplicas"))...)
	errs = append(errs, nonNeg(int64(s.AvailableReplicas), p.Child("availableReplicas"))...)
	errs = append(errs, nonNeg(int64(s.UnavailableReplicas), p.Child("unavailableReplicas"))...)
	errs = append(errs, nonNegPtr(s.TerminatingReplicas, p.Child("terminatingReplicas"))...)
	errs = append(errs, nonNegPtr(s.CollisionCount, p.Child("collisionCount"))...)
	if s.UpdatedReplicas > s.Replicas {
		errs = append(errs, field.Invalid(p.Child("updatedReplicas"), s.UpdatedReplicas, notAboveReplicas))
	}
	if s.ReadyReplicas > s.Replicas {
		errs = append(errs, field.Invalid(p.Child("readyReplicas"), s.ReadyReplicas, notAboveReplicas))
	}
	if s.AvailableReplicas > s.Replicas {
		errs = append(errs, field.Invalid(p.Child("availableReplicas"), s.AvailableReplicas, notAboveReplicas))
	}
	if s.AvailableReplicas > s.ReadyReplicas {
		errs = append(errs, field.Invalid(p.Child("availableReplicas"), s.AvailableReplicas, "cannot be greater than readyReplicas"))
	}
	return append(errs, collisionCountDecremented(s.CollisionCount, old.Status.CollisionCount, p.Child("collisionCount"))...)
}

// ValidateReplicaSetStatusUpdate checks status counts of a ReplicaSet.
func ValidateReplicaSetStatusUpdate(rs, _ *appsv1.ReplicaSet) field.ErrorList {
	s, p := &rs.Status, field.NewPath("status")
	errs := nonNeg(int64(s.Replicas), p.Child("replicas"))
	errs = append(errs, nonNeg(int64(s.FullyLabeledReplicas), p.Child("fullyLabeledReplicas"))...)
	errs = append(errs, nonNeg(int64(s.ReadyReplicas), p.Child("readyReplicas"))...)
	errs = append(errs, nonNeg(int64(s.AvailableReplicas), p.Child("availableReplicas"))...)
	errs = append(errs, nonNeg(s.ObservedGeneration, p.Child("observedGeneration"))...)
	errs = append(errs, nonNegPtr(s.TerminatingReplicas, p.Child("terminatingReplicas"))...)
	if s.FullyLabeledReplicas > s.Replicas {
		errs = append(errs, field.Invalid(p.Child("fullyLabeledReplicas"), s.FullyLabeledReplicas, notAboveReplicas))
	}
	if s.ReadyReplicas > s.Replicas {
		errs = append(errs, field.Invalid(p.Child("readyReplicas"), s.ReadyReplicas, notAboveReplicas))
	}
	if s.AvailableReplicas > s.Replicas {
		errs = append(errs, field.Invalid(p.Child("availableReplicas"), s.AvailableReplicas, notAboveReplicas))
	}
	if s.AvailableReplicas > s.ReadyReplicas {
		errs = append(errs, field.Invalid(p.Child("availableReplicas"), s.AvailableReplicas, "cannot be greater than readyReplicas"))
	}
	return errs
}

// ValidateStatefulSetStatusUpdate checks status counts of a StatefulSet
// (its message for availableReplicas says "status.readyReplicas").
func ValidateStatefulSetStatusUpdate(ss, old *appsv1.StatefulSet) field.ErrorList {
	s, p := &ss.Status, field.NewPath("status")
	errs := nonNeg(int64(s.Replicas), p.Child("replicas"))
	errs = append(errs, nonNeg(int64(s.ReadyReplicas), p.Child("readyReplicas"))...)
	errs = append(errs, nonNeg(int64(s.CurrentReplicas), p.Child("currentReplicas"))...)
	errs = append(errs, nonNeg(int64(s.UpdatedReplicas), p.Child("updatedReplicas"))...)
	errs = append(errs, nonNeg(int64(s.AvailableReplicas), p.Child("availableReplicas"))...)
	// v1's observedGeneration is not a pointer; upstream checks it when set.
	errs = append(errs, nonNeg(s.ObservedGeneration, p.Child("observedGeneration"))...)
	errs = append(errs, nonNegPtr(s.CollisionCount, p.Child("collisionCount"))...)
	if s.ReadyReplicas > s.Replicas {
		errs = append(errs, field.Invalid(p.Child("readyReplicas"), s.ReadyReplicas, notAboveReplicas))
	}
	if s.CurrentReplicas > s.Replicas {
		errs = append(errs, field.Invalid(p.Child("currentReplicas"), s.CurrentReplicas, notAboveReplicas))
	}
	if s.UpdatedReplicas > s.Replicas {
		errs = append(errs, field.Invalid(p.Child("updatedReplicas"), s.UpdatedReplicas, notAboveReplicas))
	}
	if s.AvailableReplicas > s.Replicas {
		errs = append(errs, field.Invalid(p.Child("availableReplicas"), s.AvailableReplicas, notAboveReplicas))
	}
	if s.AvailableReplicas > s.ReadyReplicas {
		errs = append(errs, field.Invalid(p.Child("availableReplicas"), s.AvailableReplicas, "cannot be greater than status.readyReplicas"))
	}
	return append(errs, collisionCountDecremented(s.CollisionCount, old.Status.CollisionCount, p.Child("collisionCount"))...)
}

// ValidateDaemonSetStatusUpdate checks status counts of a DaemonSet.
func ValidateDaemonSetStatusUpdate(ds, old *appsv1.DaemonSet) field.ErrorList {
	s, p := &ds.Status, field.NewPath("status")
	errs := nonNeg(int64(s.CurrentNumberScheduled), p.Child("currentNumberScheduled"))
	errs = append(errs, nonNeg(int64(s.NumberMisscheduled), p.Child("numberMisscheduled"))...)
	errs = append(errs, nonNeg(int64(s.DesiredNumberScheduled), p.Child("desiredNumberScheduled"))...)
	errs = append(errs, nonNeg(int64(s.NumberReady), p.Child("numberReady"))...)
	errs = append(errs, nonNeg(s.ObservedGeneration, p.Child("observedGeneration"))...)
	errs = append(errs, nonNeg(int64(s.UpdatedNumberScheduled), p.Child("updatedNumberScheduled"))...)
	errs = append(errs, nonNeg(int64(s.NumberAvailable), p.Child("numberAvailable"))...)
	errs = append(errs, nonNeg(int64(s.NumberUnavailable), p.Child("numberUnavailable"))...)
	errs = append(errs, nonNegPtr(s.CollisionCount, p.Child("collisionCount"))...)
	return append(errs, collisionCountDecremented(s.CollisionCount, old.Status.CollisionCount, p.Child("collisionCount"))...)
}
