package limitranger

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func list(kv ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i+1 < len(kv); i += 2 {
		l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return l
}

func TestValidate(t *testing.T) {
	lr := &corev1.LimitRange{Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{
		{Type: corev1.LimitTypeContainer, Min: list("memory", "10Mi"), MaxLimitRequestRatio: list("cpu", "2")},
		{Type: corev1.LimitTypePod, Max: list("cpu", "1")},
		{Type: corev1.LimitTypePersistentVolumeClaim, Max: list("storage", "1Gi")},
	}}}
	c := func(req, lim corev1.ResourceList) corev1.Container {
		return corev1.Container{Name: "c", Resources: corev1.ResourceRequirements{Requests: req, Limits: lim}}
	}
	for _, tc := range []struct {
		pod  corev1.PodSpec
		want string
	}{
		{corev1.PodSpec{Containers: []corev1.Container{c(list("memory", "5Mi", "cpu", "100m"), list("cpu", "100m"))}},
			"minimum memory usage per Container is 10Mi, but request is 5Mi"},
		{corev1.PodSpec{Containers: []corev1.Container{c(list("memory", "10Mi", "cpu", "100m"), list("cpu", "300m"))}},
			"cpu max limit to request ratio per Container is 2, but provided ratio is 3.000000"},
		{corev1.PodSpec{Containers: []corev1.Container{c(list("memory", "10Mi", "cpu", "600m"), list("cpu", "600m")), {Name: "d", Resources: corev1.ResourceRequirements{Requests: list("memory", "10Mi", "cpu", "600m"), Limits: list("cpu", "600m")}}}},
			"maximum cpu usage per Pod is 1, but limit is 1200m"},
	} {
		err := ValidatePod(lr, &corev1.Pod{Spec: tc.pod})
		if err == nil || err.Error() != tc.want {
			t.Errorf("got %v\nwant %s", err, tc.want)
		}
	}
	pvc := &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{Requests: list("storage", "2Gi")}}}
	if err := ValidateClaim(lr, pvc); err == nil || err.Error() != "maximum storage usage per PersistentVolumeClaim is 1Gi, but request is 2Gi" {
		t.Errorf("claim: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	lr := &corev1.LimitRange{Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{
		{Type: corev1.LimitTypeContainer, Default: list("cpu", "1"), DefaultRequest: list("cpu", "500m")}}}}
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "i"}},
		Containers:     []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Limits: list("cpu", "2")}}}}}
	if err := mutate(lr, "pods", pod); err != nil {
		t.Fatal(err)
	}
	if got := pod.Spec.Containers[0].Resources; got.Limits.Cpu().String() != "2" || got.Requests.Cpu().String() != "500m" {
		t.Errorf("container %v", got)
	}
	if want := "LimitRanger plugin set: cpu request for container c; cpu request for init container i; cpu limit for init container i"; pod.Annotations[annotation] != want {
		t.Errorf("annotation %q\nwant %q", pod.Annotations[annotation], want)
	}
}
