package validation

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

func TestValidateAppsStatusUpdates(t *testing.T) {
	d := &appsv1.Deployment{Status: appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 3, ReadyReplicas: 1, AvailableReplicas: 2,
		UnavailableReplicas: -1, TerminatingReplicas: ptr.To[int32](-1), CollisionCount: ptr.To[int32](1)}}
	old := &appsv1.Deployment{Status: appsv1.DeploymentStatus{CollisionCount: ptr.To[int32](2)}}
	apitesting.ExpectFieldErrors(t, ValidateDeploymentStatusUpdate(d, old),
		"Invalid status.unavailableReplicas", "Invalid status.terminatingReplicas", "Invalid status.updatedReplicas",
		"Invalid status.availableReplicas", "Invalid status.collisionCount")
	apitesting.ExpectErrorDetail(t, ValidateDeploymentStatusUpdate(d, old), "status.availableReplicas: Invalid value: 2: cannot be greater than readyReplicas")
	apitesting.ExpectErrorDetail(t, ValidateDeploymentStatusUpdate(d, old), "status.collisionCount: Invalid value: 1: cannot be decremented")
	// Clearing the collision count decrements it too.
	apitesting.ExpectFieldErrors(t, ValidateDeploymentStatusUpdate(&appsv1.Deployment{}, old), "Invalid status.collisionCount")
	apitesting.ExpectFieldErrors(t, ValidateDeploymentStatusUpdate(old, &appsv1.Deployment{}))

	rs := &appsv1.ReplicaSet{Status: appsv1.ReplicaSetStatus{Replicas: 1, FullyLabeledReplicas: 2, ReadyReplicas: 2, ObservedGeneration: -1}}
	apitesting.ExpectFieldErrors(t, ValidateReplicaSetStatusUpdate(rs, rs),
		"Invalid status.observedGeneration", "Invalid status.fullyLabeledReplicas", "Invalid status.readyReplicas")

	ss := &appsv1.StatefulSet{Status: appsv1.StatefulSetStatus{Replicas: 1, CurrentReplicas: 2, ReadyReplicas: 1, AvailableReplicas: 1, CollisionCount: ptr.To[int32](-1)}}
	apitesting.ExpectFieldErrors(t, ValidateStatefulSetStatusUpdate(ss, &appsv1.StatefulSet{}),
		"Invalid status.collisionCount", "Invalid status.currentReplicas")

	ds := &appsv1.DaemonSet{Status: appsv1.DaemonSetStatus{NumberMisscheduled: -1, ObservedGeneration: -1}}
	apitesting.ExpectFieldErrors(t, ValidateDaemonSetStatusUpdate(ds, &appsv1.DaemonSet{Status: appsv1.DaemonSetStatus{CollisionCount: ptr.To[int32](1)}}),
		"Invalid status.numberMisscheduled", "Invalid status.observedGeneration", "Invalid status.collisionCount")
}
