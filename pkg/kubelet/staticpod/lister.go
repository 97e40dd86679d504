package staticpod

import (
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
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
			out = append(out, p)
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
			return p, nil
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
