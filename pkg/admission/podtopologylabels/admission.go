// Package podtopologylabels is upstream's PodTopologyLabels admission
// plugin (beta, on by default since 1.35): a pod bound to a node, through
// pods/binding or created with spec.nodeName, gets the node's
// topology.kubernetes.io/zone and topology.kubernetes.io/region labels, so
// that workloads can read their zone through the downward API.
package podtopologylabels

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/client-go/informers"
	corev1listers "k8s.io/client-go/listers/core/v1"
)

// PluginName is the plugin's name in upstream's admission chain.
const PluginName = "PodTopologyLabels"

// copied are the node labels a pod gets (upstream's default
// configuration).
var copied = []string{corev1.LabelTopologyZone, corev1.LabelTopologyRegion}

// Plugin is the PodTopologyLabels admission plugin.
type Plugin struct {
	*admission.Handler
	nodes corev1listers.NodeLister
}

var _ admission.MutationInterface = &Plugin{}

// New returns the plugin reading Nodes from factory (started by the
// caller).
func New(factory informers.SharedInformerFactory) *Plugin {
	informer := factory.Core().V1().Nodes()
	p := &Plugin{Handler: admission.NewHandler(admission.Create), nodes: informer.Lister()}
	p.SetReadyFunc(informer.Informer().HasSynced)
	return p
}

// Admit adds the node's topology labels to a Binding (which pods/binding
// copies onto the pod) or to a pod created on a node.
func (p *Plugin) Admit(_ context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if a.GetResource().GroupResource() != corev1.Resource("pods") {
		return nil
	}
	var nodeName string
	var labels *map[string]string
	switch a.GetSubresource() {
	case "":
		pod, ok := a.GetObject().(*corev1.Pod)
		if !ok {
			return fmt.Errorf("expected Pod but got %T", a.GetObject())
		}
		nodeName, labels = pod.Spec.NodeName, &pod.Labels
	case "binding":
		binding, ok := a.GetObject().(*corev1.Binding)
		if !ok {
			return fmt.Errorf("expected Binding but got %s", a.GetKind().Kind)
		}
		if binding.Target.Kind != "" && binding.Target.Kind != "Node" {
			return nil
		}
		nodeName, labels = binding.Target.Name, &binding.Labels
	default:
		return nil
	}
	if nodeName == "" {
		return nil
	}
	if !p.WaitForReady() {
		return admission.NewForbidden(a, fmt.Errorf("not yet ready to handle request"))
	}
	node, err := p.nodes.Get(nodeName)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, key := range copied {
		if v, ok := node.Labels[key]; ok {
			if *labels == nil {
				*labels = map[string]string{}
			}
			(*labels)[key] = v
		}
	}
	return nil
}
