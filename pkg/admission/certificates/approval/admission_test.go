package approval

import (
	"context"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// approvers may approve for the signers named here, by user.
var approvers = authorizer.AuthorizerFunc(func(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	allowed := map[string]string{"exact": "example.com/foo", "domain": "example.com/*"}
	if a.GetVerb() == "approve" && a.GetResource() == "signers" && a.GetAPIGroup() == "certificates.k8s.io" &&
		allowed[a.GetUser().GetName()] == a.GetName() {
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionNoOpinion, "", nil
})

func csr(signer string) *certificatesv1.CertificateSigningRequest {
	return &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: "req"}, Spec: certificatesv1.CertificateSigningRequestSpec{SignerName: signer}}
}

func validate(userName string, obj, old runtime.Object, resource, subresource string, op admission.Operation) error {
	a := admission.NewAttributesRecord(obj, old, certificatesv1.SchemeGroupVersion.WithKind("CertificateSigningRequest"), "", "req",
		certificatesv1.SchemeGroupVersion.WithResource(resource), subresource, op, nil, false, &user.DefaultInfo{Name: userName})
	p := New(approvers)
	if !p.Handles(op) {
		return nil
	}
	return p.Validate(context.Background(), a, nil)
}

func TestApproval(t *testing.T) {
	const refused = `certificatesigningrequests.certificates.k8s.io "req" is forbidden: user not permitted to approve requests with signerName "example.com/foo"`
	for _, tc := range []struct {
		name, user string
		obj, old   runtime.Object
		want       string
	}{
		{"approver of the signer", "exact", csr("example.com/foo"), csr("example.com/foo"), ""},
		{"approver of the domain", "domain", csr("example.com/foo"), csr("example.com/foo"), ""},
		{"no approver", "mallory", csr("example.com/foo"), csr("example.com/foo"), refused},
		{"approver of another signer", "exact", csr("example.com/bar"), csr("example.com/bar"),
			`certificatesigningrequests.certificates.k8s.io "req" is forbidden: user not permitted to approve requests with signerName "example.com/bar"`},
		// The old signer counts, not the one the update claims.
		{"signer changed", "exact", csr("example.com/foo"), csr("other.io/x"),
			`certificatesigningrequests.certificates.k8s.io "req" is forbidden: user not permitted to approve requests with signerName "other.io/x"`},
		{"not a CSR", "mallory", csr("example.com/foo"), &certificatesv1.CertificateSigningRequestList{},
			`certificatesigningrequests.certificates.k8s.io "req" is forbidden: expected type CertificateSigningRequest, got: *v1.CertificateSigningRequestList`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validate(tc.user, tc.obj, tc.old, "certificatesigningrequests", "approval", admission.Update)
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

// TestOtherRequests: only updates of the approval subresource are checked.
func TestOtherRequests(t *testing.T) {
	for _, tc := range []struct {
		resource, subresource string
		op                    admission.Operation
	}{
		{"certificatesigningrequests", "", admission.Update},
		{"certificatesigningrequests", "status", admission.Update},
		{"certificatesigningrequests", "", admission.Create},
		{"configmaps", "approval", admission.Update},
	} {
		if err := validate("mallory", csr("example.com/foo"), csr("example.com/foo"), tc.resource, tc.subresource, tc.op); err != nil {
			t.Errorf("%s %s/%s: %v", tc.op, tc.resource, tc.subresource, err)
		}
	}
}
