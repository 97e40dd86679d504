package simulated

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestParseCapacity(t *testing.T) {
	list, err := ParseCapacity(DefaultCapacity + ",example.com/gpu=4")
	if err != nil {
		t.Fatal(err)
	}
	if list.Cpu().String() != "8" || list.Memory().String() != "32Gi" || list.Pods().String() != "110" ||
		list.StorageEphemeral().String() != "100Gi" || list.Name("example.com/gpu", "DecimalSI").String() != "4" {
		t.Errorf("parsed %v", list)
	}
	for _, bad := range []string{"cpu", "cpu=x", "cpu=-1", "bad name=1"} {
		if _, err := ParseCapacity(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseTaints(t *testing.T) {
	taints, err := ParseTaints("dedicated=infra:NoSchedule, gpu:PreferNoSchedule")
	if err != nil {
		t.Fatal(err)
	}
	want := []corev1.Taint{{Key: "dedicated", Value: "infra", Effect: corev1.TaintEffectNoSchedule}, {Key: "gpu", Effect: corev1.TaintEffectPreferNoSchedule}}
	if len(taints) != 2 || taints[0] != want[0] || taints[1] != want[1] {
		t.Errorf("parsed %v, want %v", taints, want)
	}
	for _, bad := range []string{"a=b", "a=b:Never", ":NoSchedule", "a=b c:NoSchedule"} {
		if _, err := ParseTaints(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseLabels(t *testing.T) {
	labels, err := ParseLabels("topology.kubernetes.io/zone=a,rack=")
	if err != nil || labels["topology.kubernetes.io/zone"] != "a" || labels["rack"] != "" || len(labels) != 2 {
		t.Errorf("parsed %v %v", labels, err)
	}
	for _, bad := range []string{"novalue", "bad key=v", "k=bad value"} {
		if _, err := ParseLabels(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
