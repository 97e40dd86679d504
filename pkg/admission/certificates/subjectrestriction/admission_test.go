package subjectrestriction

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/user"
)

func request(t *testing.T, orgs ...string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "mallory", Organization: orgs}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func validate(signer string, req []byte, subresource string) error {
	obj := &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: "req"},
		Spec: certificatesv1.CertificateSigningRequestSpec{SignerName: signer, Request: req}}
	a := admission.NewAttributesRecord(obj, nil, certificatesv1.SchemeGroupVersion.WithKind("CertificateSigningRequest"), "", "req",
		certificatesv1.SchemeGroupVersion.WithResource("certificatesigningrequests"), subresource, admission.Create, nil, false, &user.DefaultInfo{Name: "mallory"})
	return New().Validate(context.Background(), a, nil)
}

func TestSubjectRestriction(t *testing.T) {
	const refused = `certificatesigningrequests.certificates.k8s.io "req" is forbidden: use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed`
	for _, tc := range []struct {
		name, signer string
		req          []byte
		want         string
	}{
		{"system:masters", certificatesv1.KubeAPIServerClientSignerName, request(t, "system:masters"), refused},
		{"system:masters among others", certificatesv1.KubeAPIServerClientSignerName, request(t, "devs", "system:masters"), refused},
		{"other groups", certificatesv1.KubeAPIServerClientSignerName, request(t, "devs", "system:nodes"), ""},
		// Only the kube-apiserver-client signer's certificates are trusted
		// by the apiserver for any group; the others check the subject themselves.
		{"other signer", certificatesv1.KubeAPIServerClientKubeletSignerName, request(t, "system:masters"), ""},
		{"custom signer", "example.com/foo", request(t, "system:masters"), ""},
		{"unparseable", certificatesv1.KubeAPIServerClientSignerName, []byte("junk"),
			`certificatesigningrequests.certificates.k8s.io "req" is forbidden: failed to parse CSR: PEM block type must be CERTIFICATE REQUEST`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validate(tc.signer, tc.req, "")
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !apierrors.IsForbidden(err) || err.Error() != tc.want {
				t.Fatalf("got %v, want Forbidden %q", err, tc.want)
			}
		})
	}
	// Subresources are not creates of a CSR.
	if err := validate(certificatesv1.KubeAPIServerClientSignerName, request(t, "system:masters"), "approval"); err != nil {
		t.Errorf("subresource: %v", err)
	}
	if p := New(); !p.Handles(admission.Create) || p.Handles(admission.Update) {
		t.Error("the plugin must handle creates only")
	}
}
