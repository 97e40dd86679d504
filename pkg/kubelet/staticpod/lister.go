package staticpod

import (
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// Lister is the node's pods as its pod workers run them: the API's
// (through api), its mirror pods replaced by the static pods of src, and
// the static pods that have no mirror pod (yet, or no API at all). A
// mirror pod deleted in the API so leaves its static pod running, as
// upstream.
func Lister(api corelisters.PodLister, src *Source) corelisters.PodLister {
	return &lister{api: api, src: src}
}

type lister struct {
	api corelisters.PodLister
	src *Source
}

func (l *lister) List(selector labels.Selector) ([]*corev1.Pod, error) {
	return l.list("", selector)
}

func (l *lister) Pods(namespace string) corelisters.PodNamespaceLister {
	return &namespaceLister{l: l, namespace: namespace}
}

func (l *lister) list(namespace string, selector labels.Selector) ([]*corev1.Pod, error) {
	var out []*corev1.Pod
	static := map[string]bool{}
	for _, p := range l.src.Pods() {
		if namespace != "" && p.Namespace != namespace {
			continue
		}
		static[p.Namespace+"/"+p.Name] = true
		if selector.Matches(labels.Set(p.Labels)) {
			out = append(out, l.withMirrorStatus(p))
		}
	}
	var api []*corev1.Pod
	var err error
	if namespace == "" {
		api, err = l.api.List(selector)
	} else {
		api, err = l.api.Pods(namespace).List(selector)
	}
	if err != nil {
		return nil, err
	}
	for _, p := range api {
		if IsMirrorPod(p) || static[p.Namespace+"/"+p.Name] {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

type namespaceLister struct {
	l         *lister
	namespace string
}

func (n *namespaceLister) List(selector labels.Selector) ([]*corev1.Pod, error) {
	return n.l.list(n.namespace, selector)
}

// Get is the static pod of that name, else the API's pod unless it is a
// mirror pod (of a static pod that went).
func (n *namespaceLister) Get(name string) (*corev1.Pod, error) {
	for _, p := range n.l.src.Pods() {
		if p.Namespace == n.namespace && p.Name == name {
			return n.l.withMirrorStatus(p), nil
		}
	}
	p, err := n.l.api.Pods(n.namespace).Get(name)
	if err != nil {
		return nil, err
	}
	if IsMirrorPod(p) {
		return nil, apierrors.NewNotFound(corev1.Resource("pods"), name)
	}
	return p, nil
}

// withMirrorStatus is the static pod with its mirror pod's status: the
// status last written, which the kubelet compares its new one with.
func (l *lister) withMirrorStatus(static *corev1.Pod) *corev1.Pod {
	mirror := l.Mirror(static)
	if mirror == nil {
		return static
	}
	p := static.DeepCopy()
	p.Status = *mirror.Status.DeepCopy()
	return p
}

// Mirror is the API's mirror pod of static, nil if it has none (yet).
func (l *lister) Mirror(static *corev1.Pod) *corev1.Pod {
	m, err := l.api.Pods(static.Namespace).Get(static.Name)
	if err != nil || !IsMirrorPodOf(m, static) {
		return nil
	}
	return m
}

// MirrorUID is the UID of the API pod a pod's status is written to: its
// mirror pod's for a static pod ("" while it has none), its own for others.
func MirrorUID(api corelisters.PodLister, pod *corev1.Pod) types.UID {
	if !IsStaticPod(pod) {
		return pod.UID
	}
	m := (&lister{api: api}).Mirror(pod)
	if m == nil {
		return ""
	}
	return m.UID
}
