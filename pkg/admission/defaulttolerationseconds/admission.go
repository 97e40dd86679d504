// Package defaulttolerationseconds is upstream's DefaultTolerationSeconds
// admission plugin: a pod that tolerates neither node.kubernetes.io/not-ready
// nor node.kubernetes.io/unreachable with effect NoExecute gets a toleration
// of each for 300 seconds.
package defaulttolerationseconds

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/utils/ptr"
)

const (
	// PluginName is the plugin's name in upstream's admission chain.
	PluginName = "DefaultTolerationSeconds"
	// DefaultSeconds is upstream's default of both tolerations.
	DefaultSeconds = int64(300)
)

// Plugin is the DefaultTolerationSeconds admission plugin.
type Plugin struct {
	*admission.Handler
	notReady, unreachable corev1.Toleration
}

var _ admission.MutationInterface = &Plugin{}

// New returns the plugin with upstream's default of 300 seconds.
func New() *Plugin {
	toleration := func(key string) corev1.Toleration {
		return corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To(DefaultSeconds)}
	}
	return &Plugin{
		Handler:     admission.NewHandler(admission.Create, admission.Update),
		notReady:    toleration(corev1.TaintNodeNotReady),
		unreachable: toleration(corev1.TaintNodeUnreachable),
	}
}

// Admit adds the missing tolerations.
func (p *Plugin) Admit(_ context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if a.GetResource().GroupResource() != corev1.Resource("pods") || a.GetSubresource() != "" {
		return nil
	}
	pod, ok := a.GetObject().(*corev1.Pod)
	if !ok {
		return apierrors.NewBadRequest(fmt.Sprintf("expected *api.Pod but got %T", a.GetObject()))
	}
	notReady, unreachable := false, false
	for _, t := range pod.Spec.Tolerations {
		noExecute := t.Effect == corev1.TaintEffectNoExecute || t.Effect == ""
		if (t.Key == corev1.TaintNodeNotReady || t.Key == "") && noExecute {
			notReady = true
		}
		if (t.Key == corev1.TaintNodeUnreachable || t.Key == "") && noExecute {
			unreachable = true
		}
	}
	if !notReady {
		pod.Spec.Tolerations = append(pod.Spec.Tolerations, p.notReady)
	}
	if !unreachable {
		pod.Spec.Tolerations = append(pod.Spec.Tolerations, p.unreachable)
	}
	return nil
}
