package printers

import (
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	certificatesv1beta1 "k8s.io/api/certificates/v1beta1"
	"k8s.io/apimachinery/pkg/util/duration"
)

var certificateSigningRequestTable = newTable(
	cols(
		nameColumn(),
		ageColumn(),
		column("SignerName", "string", certificatesv1beta1.CertificateSigningRequestSpec{}.SwaggerDoc()["signerName"]),
		column("Requestor", "string", certificatesv1beta1.CertificateSigningRequestSpec{}.SwaggerDoc()["request"]),
		column("RequestedDuration", "string", certificatesv1beta1.CertificateSigningRequestSpec{}.SwaggerDoc()["expirationSeconds"]),
		column("Condition", "string", certificatesv1beta1.CertificateSigningRequestStatus{}.SwaggerDoc()["conditions"]),
	),
	func(csr *certificatesv1.CertificateSigningRequest) []any {
		requestedDuration := none
		if s := csr.Spec.ExpirationSeconds; s != nil {
			requestedDuration = duration.HumanDuration(time.Duration(*s) * time.Second)
		}
		return []any{csr.Name, age(csr.CreationTimestamp), orNone(csr.Spec.SignerName), csr.Spec.Username, requestedDuration, csrCondition(csr)}
	},
)

// csrCondition summarises the conditions: Denied/Approved/Pending, then ",Failed" and ",Issued".
func csrCondition(csr *certificatesv1.CertificateSigningRequest) string {
	var approved, denied, failed bool
	for _, c := range csr.Status.Conditions {
		switch c.Type {
		case certificatesv1.CertificateApproved:
			approved = true
		case certificatesv1.CertificateDenied:
			denied = true
		case certificatesv1.CertificateFailed:
			failed = true
		}
	}
	status := "Pending"
	if denied {
		status = "Denied"
	} else if approved {
		status = "Approved"
	}
	if failed {
		status += ",Failed"
	}
	if len(csr.Status.Certificate) > 0 {
		status += ",Issued"
	}
	return status
}
