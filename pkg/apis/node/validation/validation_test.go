package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

func TestValidateRuntimeClass(t *testing.T) {
	toleration := corev1.Toleration{Key: "a", Operator: corev1.TolerationOpEqual, Value: "b", Effect: corev1.TaintEffectNoSchedule}
	cases := []struct {
		name string
		rc   nodev1.RuntimeClass
		want []string
	}{
		{"minimal", nodev1.RuntimeClass{Handler: "runc"}, nil},
		{"full", nodev1.RuntimeClass{Handler: "kata",
			Overhead:   &nodev1.Overhead{PodFixed: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}},
			Scheduling: &nodev1.Scheduling{NodeSelector: map[string]string{"sandboxed": "true"}, Tolerations: []corev1.Toleration{toleration}},
		}, nil},
		{"no handler", nodev1.RuntimeClass{}, []string{"Required handler"}},
		{"bad handler", nodev1.RuntimeClass{Handler: "Bad_Handler"}, []string{"Invalid handler"}},
		// Upstream checks the overhead as container limits, hence the path.
		{"bad overhead", nodev1.RuntimeClass{Handler: "runc", Overhead: &nodev1.Overhead{PodFixed: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("-1"), "foo": resource.MustParse("1")}}},
			[]string{"Invalid overhead.limits[cpu]", "Invalid overhead.limits[foo]", "Invalid overhead.limits[foo]"}},
		{"bad scheduling", nodev1.RuntimeClass{Handler: "runc", Scheduling: &nodev1.Scheduling{
			NodeSelector: map[string]string{"bad key": "x"},
			Tolerations:  []corev1.Toleration{toleration, toleration, {Key: "b", Operator: corev1.TolerationOpExists, Value: "c"}},
		}}, []string{"Invalid scheduling.nodeSelector", "Duplicate scheduling.tolerations[1]", "Invalid scheduling.tolerations[2].operator"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			apitesting.ExpectFieldErrors(t, ValidateRuntimeClass(&tc.rc), tc.want...)
		})
	}
	apitesting.ExpectFieldErrors(t, ValidateRuntimeClassUpdate(&nodev1.RuntimeClass{Handler: "kata"}, &nodev1.RuntimeClass{Handler: "runc"}), "Invalid handler")
}
