// Package certificates installs the certificates.k8s.io/v1 types into a
// scheme. CertificateSigningRequests have no defaulters upstream.
package certificates

import (
	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-dev/skiff/pkg/apis/internalversion"
	"github.com/skiff-dev/skiff/pkg/apis/selectable"
)

// Install registers certificates.k8s.io/v1 and its internal version.
func Install(scheme *runtime.Scheme) error {
	if err := internalversion.Install(scheme, certificatesv1.AddToScheme, certificatesv1.SchemeGroupVersion, &certificatesv1.CertificateSigningRequest{}); err != nil {
		return err
	}
	return Fields["CertificateSigningRequest"].Register(scheme, "CertificateSigningRequest", certificatesv1.SchemeGroupVersion)
}

// Fields are the field selectors of the certificates kinds beyond metadata.
var Fields = map[string]selectable.Fields{
	"CertificateSigningRequest": {
		"spec.signerName": selectable.Of(func(csr *certificatesv1.CertificateSigningRequest) string { return csr.Spec.SignerName }),
	},
}
