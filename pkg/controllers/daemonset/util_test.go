package daemonset

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

func TestShouldRun(t *testing.T) {
	worker := map[string]string{"role": "worker"}
	ds := &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{NodeSelector: worker}}}}
	node := func(name string, labels map[string]string, taints ...corev1.Taint) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: corev1.NodeSpec{Taints: taints}}
	}
	for _, tc := range []struct {
		node      *corev1.Node
		run, stay bool
	}{
		{node("plain", worker), true, true},
		{node("unlabelled", nil), false, false},
		{node("noschedule", worker, corev1.Taint{Key: "dedicated", Effect: corev1.TaintEffectNoSchedule}), false, true},
		{node("noexecute", worker, corev1.Taint{Key: "dedicated", Effect: corev1.TaintEffectNoExecute}), false, false},
		{node("prefer", worker, corev1.Taint{Key: "dedicated", Effect: corev1.TaintEffectPreferNoSchedule}), true, true},
		{node("automatic", worker, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule},
			corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute},
			corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute},
			corev1.Taint{Key: corev1.TaintNodeDiskPressure, Effect: corev1.TaintEffectNoSchedule}), true, true},
		{node("network", worker, corev1.Taint{Key: corev1.TaintNodeNetworkUnavailable, Effect: corev1.TaintEffectNoSchedule}), false, true},
	} {
		run, stay := newPlacement(ds).shouldRun(klog.Background(), tc.node)
		if run != tc.run || stay != tc.stay {
			t.Errorf("%s: shouldRun, shouldContinueRunning = %v, %v; want %v, %v", tc.node.Name, run, stay, tc.run, tc.stay)
		}
	}
}
