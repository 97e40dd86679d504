package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
	"github.com/skiff-dev/skiff/pkg/apis/scheduling"
)

func pc(name string, value int32) *schedulingv1.PriorityClass {
	return &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: value, PreemptionPolicy: ptr.To(corev1.PreemptLowerPriority)}
}

func TestValidatePriorityClass(t *testing.T) {
	withDefault := pc("system-cluster-critical", 2000000000)
	withDefault.GlobalDefault = true
	cases := []struct {
		name string
		pc   *schedulingv1.PriorityClass
		want []string
	}{
		{"user class", pc("high", 1000000000), nil},
		{"negative", pc("low", -5), nil},
		{"system classes", pc("system-node-critical", 2000001000), nil},
		{"too high", pc("high", 1000000001), []string{"Forbidden value"}},
		{"reserved prefix", pc("system-mine", 5), []string{"Forbidden metadata.name"}},
		{"system class with another value", pc("system-cluster-critical", 5), []string{"Forbidden metadata.name"}},
		{"system class as global default", withDefault, []string{"Forbidden metadata.name"}},
		{"preemption policy", &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "p"}, PreemptionPolicy: ptr.To[corev1.PreemptionPolicy]("Sometimes")},
			[]string{"NotSupported preemptionPolicy"}},
		{"empty preemption policy", &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "p"}, PreemptionPolicy: ptr.To[corev1.PreemptionPolicy]("")},
			[]string{"Required preemptionPolicy"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			apitesting.ExpectFieldErrors(t, ValidatePriorityClass(tc.pc), tc.want...)
		})
	}
	for _, spc := range scheduling.SystemPriorityClasses() {
		spc.PreemptionPolicy = ptr.To(corev1.PreemptLowerPriority)
		apitesting.ExpectFieldErrors(t, ValidatePriorityClass(spc))
	}
}

func TestValidatePriorityClassUpdate(t *testing.T) {
	old := pc("p", 10)
	changed := pc("p", 11)
	changed.PreemptionPolicy = ptr.To(corev1.PreemptNever)
	changed.Description = "may change"
	apitesting.ExpectFieldErrors(t, ValidatePriorityClassUpdate(changed, old), "Forbidden value", "Invalid preemptionPolicy")
	described := old.DeepCopy()
	described.Description = "ok"
	apitesting.ExpectFieldErrors(t, ValidatePriorityClassUpdate(described, old))
}
