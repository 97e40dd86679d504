// Package node installs the node.k8s.io/v1 types (RuntimeClass) into a
// scheme. They have no defaulters upstream.
package node

import (
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-dev/skiff/pkg/apis/internalversion"
)

// Install registers node.k8s.io/v1 and its internal version.
func Install(scheme *runtime.Scheme) error {
	return internalversion.Install(scheme, nodev1.AddToScheme, nodev1.SchemeGroupVersion, &nodev1.RuntimeClass{})
}
