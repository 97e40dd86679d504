package validation

import (
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// CSIDriverWarnings are upstream's warnings on creating a CSIDriver: tokens
// requested for the driver without serviceAccountTokenInSecrets may end up
// in volume attributes, which get logged.
func CSIDriverWarnings(obj, old runtime.Object) []string {
	d := obj.(*storagev1.CSIDriver)
	if old == nil && len(d.Spec.TokenRequests) > 0 && d.Spec.ServiceAccountTokenInSecrets == nil {
		return []string{"spec.serviceAccountTokenInSecrets is unset; if supported by this CSI driver, set to true to prevent possible logging of tokens in volume attributes"}
	}
	return nil
}
