// Package runtimeclass is upstream's RuntimeClass admission plugin: a pod
// naming a RuntimeClass that does not exist is refused; otherwise the pod
// gets the class's overhead (spec.overhead, refused if it sets another
// one) and scheduling constraints (nodeSelector merged, refused on a
// conflicting value; tolerations merged without redundant ones).
package runtimeclass

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	nodev1client "k8s.io/client-go/kubernetes/typed/node/v1"
	nodev1listers "k8s.io/client-go/listers/node/v1"
)

// PluginName is the plugin's name in upstream's admission chain.
const PluginName = "RuntimeClass"

// Plugin is the RuntimeClass admission plugin.
type Plugin struct {
	*admission.Handler
	lister nodev1listers.RuntimeClassLister
	client nodev1client.RuntimeClassInterface
}

var (
	_ admission.MutationInterface   = &Plugin{}
	_ admission.ValidationInterface = &Plugin{}
)

// New returns the plugin reading RuntimeClasses from factory (started by
// the caller) and, for one not cached yet, through client.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory) *Plugin {
	informer := factory.Node().V1().RuntimeClasses()
	p := &Plugin{Handler: admission.NewHandler(admission.Create), lister: informer.Lister(), client: client.NodeV1().RuntimeClasses()}
	p.SetReadyFunc(informer.Informer().HasSynced)
	return p
}

// Admit sets the class's overhead and scheduling constraints.
func (p *Plugin) Admit(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if ignore(a) {
		return nil
	}
	pod, class, err := p.objects(ctx, a)
	if err != nil || class == nil {
		return err
	}
	if err := setOverhead(a, pod, class); err != nil {
		return err
	}
	return setScheduling(a, pod, class)
}

// Validate checks that the pod's overhead is its class's (a mutating
// webhook after Admit may have changed it).
func (p *Plugin) Validate(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if ignore(a) {
		return nil
	}
	pod, class, err := p.objects(ctx, a)
	if err != nil {
		return err
	}
	if class != nil && class.Overhead != nil {
		if !apiequality.Semantic.DeepEqual(class.Overhead.PodFixed, pod.Spec.Overhead) {
			return admission.NewForbidden(a, fmt.Errorf("pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"))
		}
	} else if pod.Spec.Overhead != nil {
		return admission.NewForbidden(a, fmt.Errorf("pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead"))
	}
	return nil
}

func ignore(a admission.Attributes) bool {
	return a.GetSubresource() != "" || a.GetResource().GroupResource() != corev1.Resource("pods")
}

// objects are the pod and its RuntimeClass (nil if it names none).
func (p *Plugin) objects(ctx context.Context, a admission.Attributes) (*corev1.Pod, *nodev1.RuntimeClass, error) {
	pod, ok := a.GetObject().(*corev1.Pod)
	if !ok {
		return nil, nil, apierrors.NewBadRequest("Resource was marked with kind Pod but was unable to be converted")
	}
	if pod.Spec.RuntimeClassName == nil {
		return pod, nil, nil
	}
	name := *pod.Spec.RuntimeClassName
	class, err := p.lister.Get(name)
	if apierrors.IsNotFound(err) {
		// The informer may lag a class created a moment ago.
		class, err = p.client.Get(ctx, name, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) {
		return pod, nil, admission.NewForbidden(a, fmt.Errorf("pod rejected: RuntimeClass %q not found", name))
	}
	if err != nil {
		return pod, nil, apierrors.NewInternalError(fmt.Errorf("looking up RuntimeClass %q: %w", name, err))
	}
	return pod, class, nil
}

func setOverhead(a admission.Attributes, pod *corev1.Pod, class *nodev1.RuntimeClass) error {
	if class.Overhead == nil {
		return nil
	}
	if len(pod.Spec.Overhead) > 0 && !apiequality.Semantic.DeepEqual(class.Overhead.PodFixed, pod.Spec.Overhead) {
		return admission.NewForbidden(a, fmt.Errorf("pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"))
	}
	pod.Spec.Overhead = class.Overhead.PodFixed.DeepCopy()
	return nil
}

func setScheduling(a admission.Attributes, pod *corev1.Pod, class *nodev1.RuntimeClass) error {
	if class.Scheduling == nil {
		return nil
	}
	selector := pod.Spec.NodeSelector
	if selector == nil && len(class.Scheduling.NodeSelector) > 0 {
		selector = make(map[string]string, len(class.Scheduling.NodeSelector))
	}
	for key, want := range class.Scheduling.NodeSelector {
		if got, ok := selector[key]; ok && got != want {
			return admission.NewForbidden(a, fmt.Errorf("conflict: runtimeClass.scheduling.nodeSelector[%s] = %s; pod.spec.nodeSelector[%s] = %s", key, want, key, got))
		}
		selector[key] = want
	}
	pod.Spec.NodeSelector = selector
	pod.Spec.Tolerations = mergeTolerations(pod.Spec.Tolerations, class.Scheduling.Tolerations)
	return nil
}

// mergeTolerations is both lists without the tolerations another one
// covers (of equal ones, the first stays), as upstream merges them.
func mergeTolerations(first, second []corev1.Toleration) []corev1.Toleration {
	all := append(append([]corev1.Toleration(nil), first...), second...)
	var merged []corev1.Toleration
next:
	for i, t := range all {
		for _, m := range merged {
			if covers(m, t) {
				continue next
			}
		}
		for _, later := range all[i+1:] {
			if !apiequality.Semantic.DeepEqual(t, later) && covers(later, t) {
				continue next
			}
		}
		merged = append(merged, t)
	}
	return merged
}

// covers: every taint t tolerates, ss tolerates too (for no shorter).
func covers(ss, t corev1.Toleration) bool {
	if apiequality.Semantic.DeepEqual(t, ss) {
		return true
	}
	// An empty key with Exists tolerates every key.
	if t.Key != ss.Key && (ss.Key != "" || ss.Operator != corev1.TolerationOpExists) {
		return false
	}
	// An empty effect tolerates every effect.
	if t.Effect != ss.Effect && ss.Effect != "" {
		return false
	}
	if ss.Effect == corev1.TaintEffectNoExecute && ss.TolerationSeconds != nil {
		if t.TolerationSeconds == nil || *t.TolerationSeconds > *ss.TolerationSeconds {
			return false
		}
	}
	switch ss.Operator {
	case corev1.TolerationOpEqual, "":
		return (t.Operator == corev1.TolerationOpEqual || t.Operator == "") && t.Value == ss.Value
	case corev1.TolerationOpExists:
		return true
	}
	return false
}
