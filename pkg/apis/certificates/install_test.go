package certificates_test

import (
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"

	"github.com/skiff-dev/skiff/pkg/apis"
	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
)

// certificates.k8s.io/v1 has no CSR defaulters upstream.
func TestCSRIsNotDefaulted(t *testing.T) {
	doc := `{"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": "c"}, "spec": {"request": "eA==", "signerName": "example.com/s"}}`
	apitesting.RunDefaultingCases(t, []apitesting.DefaultingCase{{Name: "csr", In: doc, Want: doc}})
}

// As upstream, CSRs may be selected by spec.signerName.
func TestCSRFieldSelectors(t *testing.T) {
	gvk := certificatesv1.SchemeGroupVersion.WithKind("CertificateSigningRequest")
	for label, ok := range map[string]bool{"spec.signerName": true, "metadata.name": true, "spec.username": false} {
		_, _, err := apis.Scheme.ConvertFieldLabel(gvk, label, "x")
		if (err == nil) != ok {
			t.Errorf("field label %s: err = %v, want accepted = %v", label, err, ok)
		}
	}
}
