// Package metrics installs metrics.k8s.io/v1beta1 (NodeMetrics,
// PodMetrics: the resource metrics API metrics-server serves upstream)
// into a scheme.
package metrics

import (
	"k8s.io/apimachinery/pkg/runtime"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/skiff-dev/skiff/pkg/apis/internalversion"
)

// Install registers metrics.k8s.io/v1beta1 and its internal version.
func Install(scheme *runtime.Scheme) error {
	return internalversion.Install(scheme, metricsv1beta1.AddToScheme, metricsv1beta1.SchemeGroupVersion, &metricsv1beta1.NodeMetrics{})
}
