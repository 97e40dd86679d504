package runtimeclass

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

func attrs(pod *corev1.Pod) admission.Attributes {
	return admission.NewAttributesRecord(pod, nil, corev1.SchemeGroupVersion.WithKind("Pod"), "ns", pod.Name,
		corev1.SchemeGroupVersion.WithResource("pods"), "", admission.Create, &metav1.CreateOptions{}, false, nil)
}

// newPlugin: classes in the informer, late ones only through the client.
func newPlugin(t *testing.T, cached []*nodev1.RuntimeClass, late ...*nodev1.RuntimeClass) *Plugin {
	client := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	for _, c := range cached {
		_ = factory.Node().V1().RuntimeClasses().Informer().GetIndexer().Add(c)
	}
	for _, c := range late {
		if _, err := client.NodeV1().RuntimeClasses().Create(context.Background(), c, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	p := New(client, factory)
	p.SetReadyFunc(func() bool { return true })
	return p
}

func podWith(class string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}
	if class != "" {
		p.Spec.RuntimeClassName = ptr.To(class)
	}
	return p
}

func TestMissingClassIsForbidden(t *testing.T) {
	p := newPlugin(t, nil)
	err := p.Admit(context.Background(), attrs(podWith("nope")), nil)
	if err == nil || !strings.Contains(err.Error(), `pod rejected: RuntimeClass "nope" not found`) {
		t.Fatalf("err = %v", err)
	}
	if !admissionForbidden(err) {
		t.Fatalf("want a Forbidden status, got %v", err)
	}
	if err := p.Admit(context.Background(), attrs(podWith("")), nil); err != nil {
		t.Fatalf("pod without a class: %v", err)
	}
}

func admissionForbidden(err error) bool {
	s, ok := err.(interface{ Status() metav1.Status })
	return ok && s.Status().Reason == metav1.StatusReasonForbidden
}

func TestLateClassFoundThroughClient(t *testing.T) {
	p := newPlugin(t, nil, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "late"}, Handler: "h"})
	if err := p.Admit(context.Background(), attrs(podWith("late")), nil); err != nil {
		t.Fatal(err)
	}
}

func TestOverheadAndScheduling(t *testing.T) {
	overhead := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}
	class := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "kata"}, Handler: "kata",
		Overhead: &nodev1.Overhead{PodFixed: overhead},
		Scheduling: &nodev1.Scheduling{NodeSelector: map[string]string{"sandbox": "kata"},
			Tolerations: []corev1.Toleration{{Key: "sandbox", Operator: corev1.TolerationOpExists}, {Key: "a", Operator: corev1.TolerationOpEqual, Value: "b", Effect: corev1.TaintEffectNoSchedule}}}}
	p := newPlugin(t, []*nodev1.RuntimeClass{class})

	pod := podWith("kata")
	pod.Spec.NodeSelector = map[string]string{"zone": "z1"}
	// Covered by the class's sandbox Exists toleration: dropped.
	pod.Spec.Tolerations = []corev1.Toleration{{Key: "sandbox", Operator: corev1.TolerationOpEqual, Value: "x"}}
	if err := p.Admit(context.Background(), attrs(pod), nil); err != nil {
		t.Fatal(err)
	}
	if pod.Spec.Overhead.Cpu().MilliValue() != 250 {
		t.Errorf("overhead = %v", pod.Spec.Overhead)
	}
	if pod.Spec.NodeSelector["sandbox"] != "kata" || pod.Spec.NodeSelector["zone"] != "z1" {
		t.Errorf("nodeSelector = %v", pod.Spec.NodeSelector)
	}
	if len(pod.Spec.Tolerations) != 2 || pod.Spec.Tolerations[0].Key != "sandbox" || pod.Spec.Tolerations[0].Operator != corev1.TolerationOpExists {
		t.Errorf("tolerations = %+v", pod.Spec.Tolerations)
	}
	if err := p.Validate(context.Background(), attrs(pod), nil); err != nil {
		t.Errorf("validate after admit: %v", err)
	}

	conflict := podWith("kata")
	conflict.Spec.NodeSelector = map[string]string{"sandbox": "gvisor"}
	err := p.Admit(context.Background(), attrs(conflict), nil)
	if err == nil || !strings.Contains(err.Error(), "conflict: runtimeClass.scheduling.nodeSelector[sandbox] = kata; pod.spec.nodeSelector[sandbox] = gvisor") {
		t.Errorf("conflicting selector: %v", err)
	}

	other := podWith("kata")
	other.Spec.Overhead = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
	if err := p.Admit(context.Background(), attrs(other), nil); err == nil || !strings.Contains(err.Error(), "Pod's Overhead doesn't match RuntimeClass's defined Overhead") {
		t.Errorf("other overhead: %v", err)
	}
	stray := podWith("")
	stray.Spec.Overhead = overhead
	if err := p.Validate(context.Background(), attrs(stray), nil); err == nil || !strings.Contains(err.Error(), "Pod Overhead set without corresponding RuntimeClass defined Overhead") {
		t.Errorf("overhead without class: %v", err)
	}
}

func TestSubresourcesAndOtherResourcesIgnored(t *testing.T) {
	p := newPlugin(t, nil)
	a := admission.NewAttributesRecord(podWith("nope"), nil, corev1.SchemeGroupVersion.WithKind("Pod"), "ns", "p",
		corev1.SchemeGroupVersion.WithResource("pods"), "status", admission.Create, &metav1.CreateOptions{}, false, nil)
	if err := p.Admit(context.Background(), a, nil); err != nil {
		t.Errorf("status subresource: %v", err)
	}
	b := admission.NewAttributesRecord(&corev1.ConfigMap{}, nil, schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, "ns", "c",
		corev1.SchemeGroupVersion.WithResource("configmaps"), "", admission.Create, &metav1.CreateOptions{}, false, nil)
	if err := p.Admit(context.Background(), b, nil); err != nil {
		t.Errorf("configmap: %v", err)
	}
}

func TestMergeTolerations(t *testing.T) {
	five, ten := ptr.To[int64](5), ptr.To[int64](10)
	ne := corev1.TaintEffectNoExecute
	got := mergeTolerations(
		[]corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Effect: ne, TolerationSeconds: five}, {Key: "x", Value: "1"}},
		[]corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Effect: ne, TolerationSeconds: ten}, {Key: "x", Value: "1"}})
	// k for 10s covers k for 5s; the two x are equal, the first stays.
	if len(got) != 2 || got[0].Key != "x" || got[1].Key != "k" || *got[1].TolerationSeconds != 10 {
		t.Fatalf("merged %+v", got)
	}
}
