// Package subjectrestriction is upstream's CertificateSubjectRestriction
// admission plugin: a CSR for kubernetes.io/kube-apiserver-client whose
// request names the system:masters group is refused at create, so that no
// approval, however granted, mints a certificate that bypasses
// authorization.
package subjectrestriction

import (
	"context"
	"fmt"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/apis/certificates"
)

// PluginName is the plugin's name in upstream's admission chain.
const PluginName = "CertificateSubjectRestriction"

// Plugin is the CertificateSubjectRestriction admission plugin.
type Plugin struct{ *admission.Handler }

var _ admission.ValidationInterface = &Plugin{}

// New returns the plugin.
func New() *Plugin { return &Plugin{Handler: admission.NewHandler(admission.Create)} }

var csrs = certificatesv1.Resource("certificatesigningrequests")

// Validate refuses kube-apiserver-client CSRs for the system:masters group.
func (p *Plugin) Validate(_ context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if a.GetResource().GroupResource() != csrs || a.GetSubresource() != "" {
		return nil
	}
	csr, ok := a.GetObject().(*certificatesv1.CertificateSigningRequest)
	if !ok {
		return admission.NewForbidden(a, fmt.Errorf("expected type CertificateSigningRequest, got: %T", a.GetObject()))
	}
	if csr.Spec.SignerName != certificatesv1.KubeAPIServerClientSignerName {
		return nil
	}
	req, err := certificates.ParseCSR(csr.Spec.Request)
	if err != nil {
		return admission.NewForbidden(a, fmt.Errorf("failed to parse CSR: %v", err))
	}
	for _, group := range req.Subject.Organization {
		if group == user.SystemPrivilegedGroup {
			klog.V(4).Infof("CSR %s rejected by admission plugin %s for attempting to use signer %s with system:masters group",
				csr.Name, PluginName, certificatesv1.KubeAPIServerClientSignerName)
			return admission.NewForbidden(a, fmt.Errorf("use of %s signer with system:masters group is not allowed",
				certificatesv1.KubeAPIServerClientSignerName))
		}
	}
	return nil
}
