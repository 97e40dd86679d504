package signing

import (
	"context"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// signers: user "signer" may sign for example.com/*.
var signers = authorizer.AuthorizerFunc(func(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	if a.GetUser().GetName() == "signer" && a.GetVerb() == "sign" && a.GetResource() == "signers" &&
		a.GetAPIGroup() == "certificates.k8s.io" && a.GetName() == "example.com/*" {
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionNoOpinion, "", nil
})

func csr(mutate func(*certificatesv1.CertificateSigningRequest)) *certificatesv1.CertificateSigningRequest {
	c := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "req"},
		Spec:       certificatesv1.CertificateSigningRequestSpec{SignerName: "example.com/foo"},
		Status: certificatesv1.CertificateSigningRequestStatus{Conditions: []certificatesv1.CertificateSigningRequestCondition{
			{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue},
		}},
	}
	if mutate != nil {
		mutate(c)
	}
	return c
}

func validate(userName, subresource string, obj, old *certificatesv1.CertificateSigningRequest) error {
	a := admission.NewAttributesRecord(obj, old, certificatesv1.SchemeGroupVersion.WithKind("CertificateSigningRequest"), "", "req",
		certificatesv1.SchemeGroupVersion.WithResource("certificatesigningrequests"), subresource, admission.Update, nil, false, &user.DefaultInfo{Name: userName})
	return New(signers).Validate(context.Background(), a, nil)
}

func TestSigning(t *testing.T) {
	const refused = `certificatesigningrequests.certificates.k8s.io "req" is forbidden: user not permitted to sign requests with signerName "example.com/foo"`
	issue := func(c *certificatesv1.CertificateSigningRequest) { c.Status.Certificate = []byte("cert") }
	fail := func(c *certificatesv1.CertificateSigningRequest) {
		c.Status.Conditions = append(c.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateFailed, Status: corev1.ConditionTrue})
	}
	for _, tc := range []struct {
		name, user, subresource string
		obj, old                *certificatesv1.CertificateSigningRequest
		want                    string
	}{
		{"signer issues", "signer", "status", csr(issue), csr(nil), ""},
		{"signer fails a request", "signer", "status", csr(fail), csr(nil), ""},
		{"others issue", "mallory", "status", csr(issue), csr(nil), refused},
		{"others set conditions", "mallory", "status", csr(fail), csr(nil), refused},
		{"others replace a certificate", "mallory", "status", csr(func(c *certificatesv1.CertificateSigningRequest) { c.Status.Certificate = []byte("other") }), csr(issue), refused},
		// The old signer counts, not the one the update claims.
		{"signer changed", "signer", "status", csr(issue), csr(func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "other.io/x" }),
			`certificatesigningrequests.certificates.k8s.io "req" is forbidden: user not permitted to sign requests with signerName "other.io/x"`},
		{"status unchanged", "mallory", "status", csr(func(c *certificatesv1.CertificateSigningRequest) { c.Labels = map[string]string{"a": "b"} }), csr(nil), ""},
		{"not the status subresource", "mallory", "", csr(issue), csr(nil), ""},
		{"approval subresource", "mallory", "approval", csr(fail), csr(nil), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validate(tc.user, tc.subresource, tc.obj, tc.old)
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
}

func TestHandlesOnlyUpdate(t *testing.T) {
	p := New(signers)
	if !p.Handles(admission.Update) || p.Handles(admission.Create) || p.Handles(admission.Delete) {
		t.Error("the plugin must handle updates only")
	}
}
