// Package apps installs the apps/v1 types into a scheme.
package apps

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-dev/skiff/pkg/apis/internalversion"
	"github.com/skiff-dev/skiff/pkg/apis/selectable"
)

// Install registers apps/v1 and its internal version.
func Install(scheme *runtime.Scheme) error {
	if err := internalversion.Install(scheme, appsv1.AddToScheme, appsv1.SchemeGroupVersion, &appsv1.Deployment{}); err != nil {
		return err
	}
	RegisterDefaults(scheme)
	if err := Fields["ReplicaSet"].Register(scheme, "ReplicaSet", appsv1.SchemeGroupVersion); err != nil {
		return err
	}
	return nil
}

// Fields are the field selectors of the apps kinds beyond metadata.
var Fields = map[string]selectable.Fields{
	"ReplicaSet": {
		"status.replicas": selectable.Of(func(rs *appsv1.ReplicaSet) string { return strconv.Itoa(int(rs.Status.Replicas)) }),
	},
}
