package validation

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

// testPEM returns a signed PEM certificate request and a PEM certificate.
func testPEM(t *testing.T) (request, cert []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "u"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "u"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
}

func condition(t certificatesv1.RequestConditionType, s corev1.ConditionStatus) certificatesv1.CertificateSigningRequestCondition {
	return certificatesv1.CertificateSigningRequestCondition{Type: t, Status: s}
}

func TestValidateCertificateSigningRequest(t *testing.T) {
	request, cert := testPEM(t)
	valid := func() *certificatesv1.CertificateSigningRequest {
		return &certificatesv1.CertificateSigningRequest{Spec: certificatesv1.CertificateSigningRequestSpec{
			Request: request, SignerName: "example.com/signer", Usages: []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth},
		}}
	}
	cases := []struct {
		name   string
		change func(*certificatesv1.CertificateSigningRequest)
		want   []string
	}{
		{"valid", func(*certificatesv1.CertificateSigningRequest) {}, nil},
		{"kubernetes signer, expiration", func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.SignerName = "kubernetes.io/kube-apiserver-client"
			c.Spec.ExpirationSeconds = ptr.To[int32](600)
		}, nil},
		{"not a request", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Request = cert }, []string{"Invalid spec.request"}},
		{"usages", func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Usages = []certificatesv1.KeyUsage{"client auth", "client auth", "flying"}
		}, []string{"Duplicate spec.usages[1]", "NotSupported spec.usages[2]"}},
		{"no usages", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Usages = nil }, []string{"Required spec.usages"}},
		{"legacy signer", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "kubernetes.io/legacy-unknown" }, []string{"Invalid spec.signerName"}},
		{"no signer", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "" }, []string{"Required spec.signerName"}},
		{"short expiration", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.ExpirationSeconds = ptr.To[int32](599) },
			[]string{"Invalid spec.expirationSeconds"}},
		{"conditions", func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{
				condition("", corev1.ConditionTrue),
				condition(certificatesv1.CertificateApproved, corev1.ConditionFalse),
				condition(certificatesv1.CertificateDenied, corev1.ConditionTrue),
				condition("Custom", ""),
				condition("Custom", "Maybe"),
			}
		}, []string{"Required status.conditions[0].type", "NotSupported status.conditions[1].status", "Invalid status.conditions",
			"Required status.conditions[3].status", "NotSupported status.conditions[4].status", "Duplicate status.conditions[4].type"}},
		{"certificate", func(c *certificatesv1.CertificateSigningRequest) { c.Status.Certificate = []byte("junk") }, []string{"Invalid status.certificate"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			csr := valid()
			tc.change(csr)
			apitesting.ExpectFieldErrors(t, ValidateCertificateSigningRequest(csr), tc.want...)
		})
	}
}

func TestValidateCertificateSigningRequestUpdates(t *testing.T) {
	request, cert := testPEM(t)
	old := &certificatesv1.CertificateSigningRequest{Spec: certificatesv1.CertificateSigningRequestSpec{
		Request: request, SignerName: "example.com/signer", Usages: []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth},
	}}
	approved := old.DeepCopy()
	approved.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{condition(certificatesv1.CertificateApproved, corev1.ConditionTrue)}
	issued := approved.DeepCopy()
	issued.Status.Certificate = cert
	failed := old.DeepCopy()
	failed.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{condition(certificatesv1.CertificateFailed, corev1.ConditionTrue)}

	type update func(csr, old *certificatesv1.CertificateSigningRequest) field.ErrorList
	main, status, approval := ValidateCertificateSigningRequestUpdate, ValidateCertificateSigningRequestStatusUpdate, ValidateCertificateSigningRequestApprovalUpdate
	cases := []struct {
		name     string
		validate update
		csr, old *certificatesv1.CertificateSigningRequest
		want     []string
	}{
		{"main: no change", main, old, old, nil},
		{"main: approve", main, approved, old, []string{"Forbidden status.conditions"}},
		{"main: certificate", main, issued, approved, []string{"Forbidden status.certificate"}},
		{"status: approve", status, approved, old, []string{"Forbidden status.conditions"}},
		{"status: certificate", status, issued, approved, nil},
		{"status: change certificate", status, func() *certificatesv1.CertificateSigningRequest {
			c := issued.DeepCopy()
			_, other := testPEM(t)
			c.Status.Certificate = other
			return c
		}(), issued, []string{"Forbidden status.certificate"}},
		{"status: bad certificate", status, func() *certificatesv1.CertificateSigningRequest {
			c := approved.DeepCopy()
			c.Status.Certificate = []byte(strings.Replace(string(cert), "CERTIFICATE", "PRIVATE KEY", 2))
			return c
		}(), approved, []string{"Invalid status.certificate"}},
		{"status: remove failed", status, old, failed, []string{"Forbidden status.conditions"}},
		{"approval: approve", approval, approved, old, nil},
		{"approval: unapprove", approval, old, approved, []string{"Forbidden status.conditions"}},
		{"approval: approve and deny", approval, func() *certificatesv1.CertificateSigningRequest {
			c := approved.DeepCopy()
			c.Status.Conditions = append(c.Status.Conditions, condition(certificatesv1.CertificateDenied, corev1.ConditionTrue))
			return c
		}(), old, []string{"Invalid status.conditions"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			apitesting.ExpectFieldErrors(t, tc.validate(tc.csr, tc.old), tc.want...)
		})
	}
}

func TestValidateSignerName(t *testing.T) {
	cases := map[string][]string{
		"example.com/signer":   nil,
		"example.com/ns.name":  nil,
		"nodomain":             {"Invalid signerName"},
		"a/b/c":                {"Invalid signerName"},
		"example/signer":       {"Invalid signerName"},
		"Example.com/signer":   {"Invalid signerName"},
		"example.com/Bad_Path": {"Invalid signerName"},
		"example.com/" + strings.Repeat("a", 600): {"Invalid signerName", "TooLong signerName"},
	}
	for name, want := range cases {
		t.Run(name[:min(len(name), 30)], func(t *testing.T) {
			apitesting.ExpectFieldErrors(t, ValidateSignerName(field.NewPath("signerName"), name), want...)
		})
	}
}
