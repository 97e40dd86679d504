// Package discovery holds the defaulting of discovery.k8s.io/v1, as upstream
// Kubernetes v1.37 does it (pkg/apis/discovery/v1).
package discovery

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis/core"
)

// RegisterDefaults adds the EndpointSlice defaulters to scheme: every port
// gets name "" and protocol TCP when unset.
func RegisterDefaults(scheme *runtime.Scheme) {
	core.AddDefaulters(scheme, &discoveryv1.EndpointSlice{}, &discoveryv1.EndpointSliceList{},
		func(l *discoveryv1.EndpointSliceList) []discoveryv1.EndpointSlice { return l.Items }, setDefaultsEndpointSlice)
}

func setDefaultsEndpointSlice(s *discoveryv1.EndpointSlice) {
	for i := range s.Ports {
		p := &s.Ports[i]
		if p.Name == nil {
			p.Name = ptr.To("")
		}
		if p.Protocol == nil {
			p.Protocol = ptr.To(corev1.ProtocolTCP)
		}
	}
}
