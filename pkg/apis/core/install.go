// Package core installs the core ("" group) v1 types into a scheme.
package core

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-dev/skiff/pkg/apis/internalversion"
	"github.com/skiff-dev/skiff/pkg/apis/selectable"
)

// Install registers core/v1 and its internal version.
func Install(scheme *runtime.Scheme) error {
	if err := internalversion.Install(scheme, corev1.AddToScheme, corev1.SchemeGroupVersion, &corev1.Pod{}); err != nil {
		return err
	}
	RegisterDefaults(scheme)
	for kind, f := range Fields {
		if err := f.Register(scheme, kind, corev1.SchemeGroupVersion); err != nil {
			return err
		}
	}
	return nil
}

// Fields are the field selectors of the core kinds, as upstream.
var Fields = map[string]selectable.Fields{
	"Pod": {
		"spec.nodeName":           selectable.Of(func(p *corev1.Pod) string { return p.Spec.NodeName }),
		"spec.restartPolicy":      selectable.Of(func(p *corev1.Pod) string { return string(p.Spec.RestartPolicy) }),
		"spec.schedulerName":      selectable.Of(func(p *corev1.Pod) string { return p.Spec.SchedulerName }),
		"spec.serviceAccountName": selectable.Of(func(p *corev1.Pod) string { return p.Spec.ServiceAccountName }),
		"spec.hostNetwork":        selectable.Of(func(p *corev1.Pod) string { return strconv.FormatBool(p.Spec.HostNetwork) }),
		"status.phase":            selectable.Of(func(p *corev1.Pod) string { return string(p.Status.Phase) }),
		"status.podIP":            selectable.Of(func(p *corev1.Pod) string { return p.Status.PodIP }),
		"status.podIPs": selectable.Of(func(p *corev1.Pod) string {
			ips := make([]string, 0, len(p.Status.PodIPs))
			for _, ip := range p.Status.PodIPs {
				ips = append(ips, ip.IP)
			}
			return strings.Join(ips, ",")
		}),
		"status.nominatedNodeName": selectable.Of(func(p *corev1.Pod) string { return p.Status.NominatedNodeName }),
	},
	"Event": {
		"involvedObject.kind":            selectable.Of(func(e *corev1.Event) string { return e.InvolvedObject.Kind }),
		"involvedObject.namespace":       selectable.Of(func(e *corev1.Event) string { return e.InvolvedObject.Namespace }),
		"involvedObject.name":            selectable.Of(func(e *corev1.Event) string { return e.InvolvedObject.Name }),
		"involvedObject.uid":             selectable.Of(func(e *corev1.Event) string { return string(e.InvolvedObject.UID) }),
		"involvedObject.apiVersion":      selectable.Of(func(e *corev1.Event) string { return e.InvolvedObject.APIVersion }),
		"involvedObject.resourceVersion": selectable.Of(func(e *corev1.Event) string { return e.InvolvedObject.ResourceVersion }),
		"involvedObject.fieldPath":       selectable.Of(func(e *corev1.Event) string { return e.InvolvedObject.FieldPath }),
		"reason":                         selectable.Of(func(e *corev1.Event) string { return e.Reason }),
		"reportingComponent":             selectable.Of(func(e *corev1.Event) string { return e.ReportingController }),
		"source": selectable.Of(func(e *corev1.Event) string {
			// Events written through events.k8s.io have no source component.
			if e.Source.Component == "" {
				return e.ReportingController
			}
			return e.Source.Component
		}),
		"type": selectable.Of(func(e *corev1.Event) string { return e.Type }),
	},
	"Secret": {
		"type": selectable.Of(func(s *corev1.Secret) string { return string(s.Type) }),
	},
	"Namespace": {
		"status.phase": selectable.Of(func(n *corev1.Namespace) string { return string(n.Status.Phase) }),
	},
	"Node": {
		"spec.unschedulable": selectable.Of(func(n *corev1.Node) string { return strconv.FormatBool(n.Spec.Unschedulable) }),
	},
	"ReplicationController": {
		"status.replicas": selectable.Of(func(rc *corev1.ReplicationController) string { return strconv.Itoa(int(rc.Status.Replicas)) }),
	},
	"Service": {
		"spec.clusterIP": selectable.Of(func(s *corev1.Service) string { return s.Spec.ClusterIP }),
		"spec.type":      selectable.Of(func(s *corev1.Service) string { return string(s.Spec.Type) }),
	},
}
