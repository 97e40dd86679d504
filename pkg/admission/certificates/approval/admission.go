// Package approval is upstream's CertificateApproval admission plugin:
// updating certificatesigningrequests/approval needs the "approve" verb on
// the certificates.k8s.io "signers" resource named by the CSR's signerName
// (or "<domain>/*"), so that rights on the approval subresource alone do
// not let anyone approve requests to every signer.
package approval

import (
	"context"
	"fmt"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/admission/certificates"
)

// PluginName is the plugin's name in upstream's admission chain.
const PluginName = "CertificateApproval"

// Plugin is the CertificateApproval admission plugin.
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

// Validate refuses approval updates by users who may not approve for the
// CSR's signer.
func (p *Plugin) Validate(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if a.GetSubresource() != "approval" || a.GetResource().GroupResource() != csrs {
		return nil
	}
	// The old object's signer: the request may try to change it (which
	// validation refuses later).
	csr, ok := a.GetOldObject().(*certificatesv1.CertificateSigningRequest)
	if !ok {
		return admission.NewForbidden(a, fmt.Errorf("expected type CertificateSigningRequest, got: %T", a.GetOldObject()))
	}
	if !certificates.AuthorizedForSigner(ctx, p.authz, a.GetUserInfo(), "approve", csr.Spec.SignerName) {
		klog.V(4).Infof("user not permitted to approve CertificateSigningRequest %q with signerName %q", csr.Name, csr.Spec.SignerName)
		return admission.NewForbidden(a, fmt.Errorf("user not permitted to approve requests with signerName %q", csr.Spec.SignerName))
	}
	return nil
}
