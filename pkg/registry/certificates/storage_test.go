package certificates

import (
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func csrWith(cert string, conds ...certificatesv1.CertificateSigningRequestCondition) *certificatesv1.CertificateSigningRequest {
	return &certificatesv1.CertificateSigningRequest{
		Spec:   certificatesv1.CertificateSigningRequestSpec{SignerName: "example.com/s"},
		Status: certificatesv1.CertificateSigningRequestStatus{Certificate: []byte(cert), Conditions: conds},
	}
}

func TestPrepareStatusUpdate(t *testing.T) {
	past := metav1.NewTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	approved := certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Stored", LastUpdateTime: past, LastTransitionTime: past}
	old := csrWith("", approved)

	csr := csrWith("cert", certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Changed"},
		certificatesv1.CertificateSigningRequestCondition{Type: "Custom", Status: corev1.ConditionTrue})
	csr.Spec.SignerName = "example.com/other"
	prepareStatusUpdate(csr, old)
	if csr.Spec.SignerName != "example.com/s" {
		t.Errorf("spec changed: %+v", csr.Spec)
	}
	if c := csr.Status.Conditions[0]; c.Reason != "Stored" || !c.LastUpdateTime.Equal(&past) {
		t.Errorf("the stored Approved condition was not kept: %+v", c)
	}
	if c := csr.Status.Conditions[1]; c.LastUpdateTime.IsZero() || c.LastTransitionTime.IsZero() {
		t.Errorf("the new condition has no times: %+v", c)
	}
	if string(csr.Status.Certificate) != "cert" {
		t.Errorf("certificate %q, want the request's", csr.Status.Certificate)
	}
}

func TestPrepareApprovalUpdate(t *testing.T) {
	past := metav1.NewTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	old := csrWith("stored", certificatesv1.CertificateSigningRequestCondition{Type: "Custom", Status: corev1.ConditionTrue, LastTransitionTime: past})
	csr := csrWith("other",
		certificatesv1.CertificateSigningRequestCondition{Type: "Custom", Status: corev1.ConditionTrue},
		certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue})
	prepareApprovalUpdate(csr, old)
	if string(csr.Status.Certificate) != "stored" {
		t.Errorf("certificate %q, want the stored one", csr.Status.Certificate)
	}
	if len(csr.Status.Conditions) != 2 {
		t.Fatalf("conditions %+v", csr.Status.Conditions)
	}
	if c := csr.Status.Conditions[0]; !c.LastTransitionTime.Equal(&past) || c.LastUpdateTime.IsZero() {
		t.Errorf("an unchanged condition keeps its transition time: %+v", c)
	}
	if c := csr.Status.Conditions[1]; c.LastTransitionTime.IsZero() {
		t.Errorf("the new condition has no transition time: %+v", c)
	}
}

func TestResetFields(t *testing.T) {
	got := resetFields{"spec", "status.conditions"}.GetResetFields()
	set := got["certificates.k8s.io/v1"]
	if set == nil || set.Size() != 2 || set.String() != ".spec\n.status.conditions" {
		t.Errorf("reset fields %v", got)
	}
}
