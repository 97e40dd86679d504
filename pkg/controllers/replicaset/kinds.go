package replicaset

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Kind is what one instance of the controller keeps at its replica count:
// ReplicaSets, or ReplicationControllers, which it handles as ReplicaSets
// (as upstream does, an older API version of the same thing).
type Kind struct {
	// GVK is the owners' kind, as their pods' ownerReferences name it.
	GVK schema.GroupVersionKind
	// Component is the source of the events (upstream's).
	Component string
	// ControllerName is the controller-runtime controller's (upstream's
	// work queue name).
	ControllerName string
	// TerminatingReplicas: status.terminatingReplicas is set (ReplicaSets;
	// the ReplicationController API has no such field).
	TerminatingReplicas bool

	newObject func() client.Object
	newList   func() client.ObjectList
	// asReplicaSets converts the list's items (read-only views: they may
	// share memory with the list).
	asReplicaSets func(client.ObjectList) []*appsv1.ReplicaSet
	// asReplicaSet converts one object (as asReplicaSets).
	asReplicaSet func(client.Object) *appsv1.ReplicaSet
	// get reads the object from the API (uncached), as a ReplicaSet.
	get func(ctx context.Context, core kubernetes.Interface, namespace, name string) (*appsv1.ReplicaSet, error)
	// updateStatus writes rs.Status to the object rs was converted from.
	updateStatus func(ctx context.Context, core kubernetes.Interface, rs *appsv1.ReplicaSet) (*appsv1.ReplicaSet, error)
}

// ReplicaSets is the replicaset-controller's kind.
var ReplicaSets = Kind{
	GVK:                 appsv1.SchemeGroupVersion.WithKind("ReplicaSet"),
	Component:           "replicaset-controller",
	ControllerName:      "replicaset",
	TerminatingReplicas: true,
	newObject:           func() client.Object { return &appsv1.ReplicaSet{} },
	newList:             func() client.ObjectList { return &appsv1.ReplicaSetList{} },
	asReplicaSets: func(l client.ObjectList) []*appsv1.ReplicaSet {
		items := l.(*appsv1.ReplicaSetList).Items
		out := make([]*appsv1.ReplicaSet, len(items))
		for i := range items {
			out[i] = &items[i]
		}
		return out
	},
	asReplicaSet: func(o client.Object) *appsv1.ReplicaSet { return o.(*appsv1.ReplicaSet) },
	get: func(ctx context.Context, core kubernetes.Interface, namespace, name string) (*appsv1.ReplicaSet, error) {
		return core.AppsV1().ReplicaSets(namespace).Get(ctx, name, metav1.GetOptions{})
	},
	updateStatus: func(ctx context.Context, core kubernetes.Interface, rs *appsv1.ReplicaSet) (*appsv1.ReplicaSet, error) {
		return core.AppsV1().ReplicaSets(rs.Namespace).UpdateStatus(ctx, rs, metav1.UpdateOptions{})
	},
}

// ReplicationControllers is the replicationcontroller-controller's kind.
var ReplicationControllers = Kind{
	GVK:            corev1.SchemeGroupVersion.WithKind("ReplicationController"),
	Component:      "replication-controller",
	ControllerName: "replicationmanager",
	newObject:      func() client.Object { return &corev1.ReplicationController{} },
	newList:        func() client.ObjectList { return &corev1.ReplicationControllerList{} },
	asReplicaSets: func(l client.ObjectList) []*appsv1.ReplicaSet {
		items := l.(*corev1.ReplicationControllerList).Items
		out := make([]*appsv1.ReplicaSet, len(items))
		for i := range items {
			out[i] = rcToRS(&items[i])
		}
		return out
	},
	asReplicaSet: func(o client.Object) *appsv1.ReplicaSet { return rcToRS(o.(*corev1.ReplicationController)) },
	get: func(ctx context.Context, core kubernetes.Interface, namespace, name string) (*appsv1.ReplicaSet, error) {
		rc, err := core.CoreV1().ReplicationControllers(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return rcToRS(rc), nil
	},
	updateStatus: func(ctx context.Context, core kubernetes.Interface, rs *appsv1.ReplicaSet) (*appsv1.ReplicaSet, error) {
		rc, err := core.CoreV1().ReplicationControllers(rs.Namespace).UpdateStatus(ctx, rsToRC(rs), metav1.UpdateOptions{})
		if err != nil {
			return nil, err
		}
		return rcToRS(rc), nil
	},
}

// rcToRS is rc as a ReplicaSet: its metadata (shared, not copied), spec and
// status. Its TypeMeta stays the ReplicationController's, so that events
// about it name the ReplicationController.
func rcToRS(rc *corev1.ReplicationController) *appsv1.ReplicaSet {
	rs := &appsv1.ReplicaSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ReplicationController"},
		ObjectMeta: rc.ObjectMeta,
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        rc.Spec.Replicas,
			MinReadySeconds: rc.Spec.MinReadySeconds,
		},
		Status: appsv1.ReplicaSetStatus{
			Replicas:             rc.Status.Replicas,
			FullyLabeledReplicas: rc.Status.FullyLabeledReplicas,
			ReadyReplicas:        rc.Status.ReadyReplicas,
			AvailableReplicas:    rc.Status.AvailableReplicas,
			ObservedGeneration:   rc.Status.ObservedGeneration,
		},
	}
	if rc.Spec.Selector != nil {
		rs.Spec.Selector = &metav1.LabelSelector{MatchLabels: rc.Spec.Selector}
	}
	if rc.Spec.Template != nil {
		rs.Spec.Template = *rc.Spec.Template
	}
	for _, c := range rc.Status.Conditions {
		rs.Status.Conditions = append(rs.Status.Conditions, appsv1.ReplicaSetCondition{
			Type: appsv1.ReplicaSetConditionType(c.Type), Status: c.Status,
			LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message,
		})
	}
	return rs
}

// rsToRC is the ReplicationController rs was converted from, with rs's
// status.
func rsToRC(rs *appsv1.ReplicaSet) *corev1.ReplicationController {
	rc := &corev1.ReplicationController{
		ObjectMeta: rs.ObjectMeta,
		Spec: corev1.ReplicationControllerSpec{
			Replicas:        rs.Spec.Replicas,
			MinReadySeconds: rs.Spec.MinReadySeconds,
			Template:        &rs.Spec.Template,
		},
		Status: corev1.ReplicationControllerStatus{
			Replicas:             rs.Status.Replicas,
			FullyLabeledReplicas: rs.Status.FullyLabeledReplicas,
			ReadyReplicas:        rs.Status.ReadyReplicas,
			AvailableReplicas:    rs.Status.AvailableReplicas,
			ObservedGeneration:   rs.Status.ObservedGeneration,
		},
	}
	if rs.Spec.Selector != nil {
		rc.Spec.Selector = rs.Spec.Selector.MatchLabels
	}
	for _, c := range rs.Status.Conditions {
		rc.Status.Conditions = append(rc.Status.Conditions, corev1.ReplicationControllerCondition{
			Type: corev1.ReplicationControllerConditionType(c.Type), Status: c.Status,
			LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message,
		})
	}
	return rc
}
