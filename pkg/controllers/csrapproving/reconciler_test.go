package csrapproving

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509/pkix"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	certutil "k8s.io/client-go/util/cert"
)

func kubeletCSR(t *testing.T, cn, requester string, groups ...string) *certificatesv1.CertificateSigningRequest {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	req, err := certutil.MakeCSR(key, &pkix.Name{CommonName: cn, Organization: []string{"system:nodes"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "csr"},
		Spec: certificatesv1.CertificateSigningRequestSpec{Request: req, SignerName: certificatesv1.KubeAPIServerClientKubeletSignerName,
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}, Username: requester, Groups: groups},
	}
}

func TestApproval(t *testing.T) {
	for _, tt := range []struct {
		name    string
		csr     *certificatesv1.CertificateSigningRequest
		approve bool
	}{
		{"bootstrapper", kubeletCSR(t, "system:node:n1", "system:bootstrap:abcdef", "system:bootstrappers", "system:authenticated"), true},
		{"node itself", kubeletCSR(t, "system:node:n1", "system:node:n1", "system:nodes", "system:authenticated"), true},
		{"another node", kubeletCSR(t, "system:node:n2", "system:node:n1", "system:nodes", "system:authenticated"), false},
		{"admin", kubeletCSR(t, "system:node:n1", "kubernetes-admin", "system:masters", "system:authenticated"), false},
		{"not a node cert", kubeletCSR(t, "alice", "system:bootstrap:abcdef", "system:bootstrappers"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset(tt.csr)
			r := &Reconciler{Core: client}
			if err := r.handle(context.Background(), tt.csr.DeepCopy()); err != nil {
				t.Fatal(err)
			}
			got, _ := client.CertificatesV1().CertificateSigningRequests().Get(context.Background(), "csr", metav1.GetOptions{})
			approved := len(got.Status.Conditions) == 1 && got.Status.Conditions[0].Type == certificatesv1.CertificateApproved && got.Status.Conditions[0].Reason == "AutoApproved"
			if approved != tt.approve {
				t.Errorf("approved %v, want %v: %+v", approved, tt.approve, got.Status.Conditions)
			}
		})
	}
}
