// Package signing is upstream's CertificateSigning admission plugin:
// changing status.certificate or status.conditions through
// certificatesigningrequests/status needs the "sign" verb on the
// certificates.k8s.io "signers" resource named by the CSR's signerName (or
// "<domain>/*"), so that only a signer's controller issues its
// certificates.
package signing

import (
	"bytes"
	"context"
	"fmt"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/admission/certificates"
)

// PluginName is the plugin's name in upstream's admission chain.
const PluginName = "CertificateSigning"

// Plugin is the CertificateSigning admission plugin.
type Plugin struct {
	*admission.Handler
	authz authorizer.Authorizer
}

var _ admission.ValidationInterface = &Plugin{}

// New returns the plugin asking authz (the server's authorizer).
func New(authz authorizer.Authorizer) *Plugin {
	return &Plugin{Handler: admission.NewHandler(admission.Update), authz: authz}
}

var csrs = certificatesv1.Resource("certificatesigningrequests")

// Validate refuses status updates that change the certificate or the
// conditions by users who may not sign for the CSR's signer.
func (p *Plugin) Validate(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if a.GetSubresource() != "status" || a.GetResource().GroupResource() != csrs {
		return nil
	}
	old, ok := a.GetOldObject().(*certificatesv1.CertificateSigningRequest)
	if !ok {
		return admission.NewForbidden(a, fmt.Errorf("expected type CertificateSigningRequest, got: %T", a.GetOldObject()))
	}
	csr, ok := a.GetObject().(*certificatesv1.CertificateSigningRequest)
	if !ok {
		return admission.NewForbidden(a, fmt.Errorf("expected type CertificateSigningRequest, got: %T", a.GetObject()))
	}
	if bytes.Equal(old.Status.Certificate, csr.Status.Certificate) && equality.Semantic.DeepEqual(old.Status.Conditions, csr.Status.Conditions) {
		return nil
	}
	if !certificates.AuthorizedForSigner(ctx, p.authz, a.GetUserInfo(), "sign", old.Spec.SignerName) {
		klog.V(4).Infof("user not permitted to sign CertificateSigningRequest %q with signerName %q", old.Name, old.Spec.SignerName)
		return admission.NewForbidden(a, fmt.Errorf("user not permitted to sign requests with signerName %q", old.Spec.SignerName))
	}
	return nil
}
