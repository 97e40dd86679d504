package certificates

// Helpers on CertificateSigningRequests shared by the signing and approving
// controllers (upstream's pkg/apis/certificates/helpers.go and
// pkg/controller/certificates' condition helpers).

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
)

// ParseCSR decodes the PEM CERTIFICATE REQUEST of a CSR's spec.request.
func ParseCSR(pemBytes []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("PEM block type must be CERTIFICATE REQUEST")
	}
	return x509.ParseCertificateRequest(block.Bytes)
}

var (
	errOrganizationNotSystemNodes = errors.New("subject organization is not system:nodes")
	errCommonNameNotSystemNode    = errors.New("subject common name does not begin with system:node:")
	errDNSOrIPSANRequired         = errors.New("DNS or IP subjectAltName is required")
	errDNSSANNotAllowed           = errors.New("DNS subjectAltNames are not allowed")
	errEmailSANNotAllowed         = errors.New("Email subjectAltNames are not allowed")
	errIPSANNotAllowed            = errors.New("IP subjectAltNames are not allowed")
	errURISANNotAllowed           = errors.New("URI subjectAltNames are not allowed")
)

// usageSet is the usages without duplicates, sorted.
func usageSet(usages []certificatesv1.KeyUsage) []string {
	out := make([]string, 0, len(usages))
	for _, u := range usages {
		out = append(out, string(u))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func usagesAre(usages []certificatesv1.KeyUsage, allowed ...[]string) bool {
	got := usageSet(usages)
	for _, want := range allowed {
		if slices.Equal(got, want) {
			return true
		}
	}
	return false
}

// The usage sets the kubelet signers accept (sorted): with key
// encipherment for RSA keys, or without.
var (
	kubeletServingUsages      = []string{"digital signature", "key encipherment", "server auth"}
	kubeletServingUsagesNoRSA = []string{"digital signature", "server auth"}
	kubeletClientUsages       = []string{"client auth", "digital signature", "key encipherment"}
	kubeletClientUsagesNoRSA  = []string{"client auth", "digital signature"}
)

// ValidateKubeletServingCSR is what kubernetes.io/kubelet-serving requires:
// organization exactly system:nodes, a DNS or IP SAN and no email or URI
// SANs, the serving usages, common name system:node:<name>.
func ValidateKubeletServingCSR(req *x509.CertificateRequest, usages []certificatesv1.KeyUsage) error {
	if !slices.Equal(req.Subject.Organization, []string{"system:nodes"}) {
		return errOrganizationNotSystemNodes
	}
	if len(req.DNSNames) == 0 && len(req.IPAddresses) == 0 {
		return errDNSOrIPSANRequired
	}
	if len(req.EmailAddresses) > 0 {
		return errEmailSANNotAllowed
	}
	if len(req.URIs) > 0 {
		return errURISANNotAllowed
	}
	if !usagesAre(usages, kubeletServingUsages, kubeletServingUsagesNoRSA) {
		return fmt.Errorf("usages did not match %v", kubeletServingUsages)
	}
	if !strings.HasPrefix(req.Subject.CommonName, "system:node:") {
		return errCommonNameNotSystemNode
	}
	return nil
}

// ValidateKubeletClientCSR is what kubernetes.io/kube-apiserver-client-kubelet
// requires: organization exactly system:nodes, no SANs, common name
// system:node:<name>, the client usages.
func ValidateKubeletClientCSR(req *x509.CertificateRequest, usages []certificatesv1.KeyUsage) error {
	if !slices.Equal(req.Subject.Organization, []string{"system:nodes"}) {
		return errOrganizationNotSystemNodes
	}
	if len(req.DNSNames) > 0 {
		return errDNSSANNotAllowed
	}
	if len(req.EmailAddresses) > 0 {
		return errEmailSANNotAllowed
	}
	if len(req.IPAddresses) > 0 {
		return errIPSANNotAllowed
	}
	if len(req.URIs) > 0 {
		return errURISANNotAllowed
	}
	if !strings.HasPrefix(req.Subject.CommonName, "system:node:") {
		return errCommonNameNotSystemNode
	}
	if !usagesAre(usages, kubeletClientUsages, kubeletClientUsagesNoRSA) {
		return fmt.Errorf("usages did not match %v", kubeletClientUsages)
	}
	return nil
}

// ValidateAPIServerClientUsages is what kubernetes.io/kube-apiserver-client
// requires of the usages: client auth, besides at most digital signature
// and key encipherment.
func ValidateAPIServerClientUsages(usages []certificatesv1.KeyUsage) error {
	hasClientAuth := false
	for _, u := range usages {
		switch u {
		case certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment:
		case certificatesv1.UsageClientAuth:
			hasClientAuth = true
		default:
			return fmt.Errorf("invalid usage for client certificate: %s", u)
		}
	}
	if !hasClientAuth {
		return fmt.Errorf("missing required usage for client certificate: %s", certificatesv1.UsageClientAuth)
	}
	return nil
}

// ApprovalCondition reports whether the CSR has an Approved and whether it
// has a Denied condition.
func ApprovalCondition(status *certificatesv1.CertificateSigningRequestStatus) (approved, denied bool) {
	for _, c := range status.Conditions {
		switch c.Type {
		case certificatesv1.CertificateApproved:
			approved = true
		case certificatesv1.CertificateDenied:
			denied = true
		}
	}
	return approved, denied
}

// IsApproved: approved and not denied.
func IsApproved(csr *certificatesv1.CertificateSigningRequest) bool {
	approved, denied := ApprovalCondition(&csr.Status)
	return approved && !denied
}

// HasTrueCondition reports a condition of type t with status True (or no
// status).
func HasTrueCondition(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == t && (c.Status == "" || c.Status == corev1.ConditionTrue) {
			return true
		}
	}
	return false
}
