// Package scheduling installs the scheduling.k8s.io/v1 types into a scheme
// and knows the system priority classes.
package scheduling

import (
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis/core"
	"github.com/skiff-dev/skiff/pkg/apis/internalversion"
)

// Install registers scheduling.k8s.io/v1 and its internal version.
func Install(scheme *runtime.Scheme) error {
	if err := internalversion.Install(scheme, schedulingv1.AddToScheme, schedulingv1.SchemeGroupVersion, &schedulingv1.PriorityClass{}); err != nil {
		return err
	}
	RegisterDefaults(scheme)
	return nil
}

// RegisterDefaults adds the scheduling/v1 defaulters to scheme: a
// PriorityClass preempts lower priorities unless told otherwise.
func RegisterDefaults(scheme *runtime.Scheme) {
	core.AddDefaulters(scheme, &schedulingv1.PriorityClass{}, &schedulingv1.PriorityClassList{},
		func(l *schedulingv1.PriorityClassList) []schedulingv1.PriorityClass { return l.Items },
		func(pc *schedulingv1.PriorityClass) {
			if pc.PreemptionPolicy == nil {
				pc.PreemptionPolicy = ptr.To(corev1.PreemptLowerPriority)
			}
		})
}

const (
	// SystemPriorityClassPrefix starts the names reserved for the system
	// priority classes.
	SystemPriorityClassPrefix = "system-"
	// HighestUserDefinablePriority is the highest value a user-defined
	// priority class may have.
	HighestUserDefinablePriority = int32(1000000000)
	// SystemCriticalPriority is the value of system-cluster-critical; system-node-critical is 1000 more.
	SystemCriticalPriority = 2 * HighestUserDefinablePriority
)

// SystemPriorityClasses returns fresh copies of the priority classes every
// cluster has, as upstream creates them at start.
func SystemPriorityClasses() []*schedulingv1.PriorityClass {
	return []*schedulingv1.PriorityClass{
		{
			ObjectMeta:  metav1.ObjectMeta{Name: "system-node-critical"},
			Value:       SystemCriticalPriority + 1000,
			Description: "Used for system critical pods that must not be moved from their current node.",
		},
		{
			ObjectMeta:  metav1.ObjectMeta{Name: "system-cluster-critical"},
			Value:       SystemCriticalPriority,
			Description: "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
		},
	}
}

// IsSystemPriorityClassName tells whether name is one of the system
// priority classes (which cannot be deleted).
func IsSystemPriorityClassName(name string) bool {
	for _, pc := range SystemPriorityClasses() {
		if pc.Name == name {
			return true
		}
	}
	return false
}
