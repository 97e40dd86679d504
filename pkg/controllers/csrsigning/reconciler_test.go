package csrsigning

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"path/filepath"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
	"k8s.io/utils/ptr"
)

func testCA(t *testing.T) CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: "test-ca"}, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := CA{CertFile: filepath.Join(dir, "ca.crt"), KeyFile: filepath.Join(dir, "ca.key")}
	certPEM, _ := certutil.EncodeCertificates(cert)
	keyPEM, _ := keyutil.MarshalPrivateKeyToPEM(key)
	if err := certutil.WriteCert(ca.CertFile, certPEM); err != nil {
		t.Fatal(err)
	}
	if err := keyutil.WriteKey(ca.KeyFile, keyPEM); err != nil {
		t.Fatal(err)
	}
	return ca
}

func approvedCSR(t *testing.T, signer string, subject pkix.Name, dns []string, expirationSeconds *int32, usages ...certificatesv1.KeyUsage) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	req, err := certutil.MakeCSR(key, &subject, dns, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "csr"},
		Spec:       certificatesv1.CertificateSigningRequestSpec{Request: req, SignerName: signer, Usages: usages, ExpirationSeconds: expirationSeconds},
		Status: certificatesv1.CertificateSigningRequestStatus{Conditions: []certificatesv1.CertificateSigningRequestCondition{
			{Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue}}},
	}
}

func run(t *testing.T, csr *certificatesv1.CertificateSigningRequest) (*certificatesv1.CertificateSigningRequest, *x509.Certificate) {
	t.Helper()
	client := fake.NewClientset(csr)
	r := &Reconciler{Core: client, CA: testCA(t), Duration: 24 * time.Hour}
	if err := r.handle(context.Background(), csr.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	got, err := client.CertificatesV1().CertificateSigningRequests().Get(context.Background(), csr.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Certificate) == 0 {
		return got, nil
	}
	block, _ := pem.Decode(got.Status.Certificate)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return got, cert
}

func TestSignsClientCertificate(t *testing.T) {
	csr := approvedCSR(t, certificatesv1.KubeAPIServerClientSignerName, pkix.Name{CommonName: "alice", Organization: []string{"devs"}}, nil, ptr.To[int32](3600),
		certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth)
	_, cert := run(t, csr)
	if cert == nil {
		t.Fatal("not signed")
	}
	if cert.Subject.CommonName != "alice" || cert.Subject.Organization[0] != "devs" || cert.IsCA {
		t.Errorf("subject %v CA %v", cert.Subject, cert.IsCA)
	}
	if d := cert.NotAfter.Sub(cert.NotBefore); d != 65*time.Minute {
		t.Errorf("lifetime %s", d)
	}
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || cert.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("usages %v %v", cert.ExtKeyUsage, cert.KeyUsage)
	}
}

func TestKubeletClientNeedsNodeSubject(t *testing.T) {
	usages := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}
	good := approvedCSR(t, certificatesv1.KubeAPIServerClientKubeletSignerName, pkix.Name{CommonName: "system:node:n1", Organization: []string{"system:nodes"}}, nil, nil, usages...)
	if _, cert := run(t, good); cert == nil {
		t.Fatal("kubelet client CSR not signed")
	}
	for name, csr := range map[string]*certificatesv1.CertificateSigningRequest{
		"cn":     approvedCSR(t, certificatesv1.KubeAPIServerClientKubeletSignerName, pkix.Name{CommonName: "alice", Organization: []string{"system:nodes"}}, nil, nil, usages...),
		"org":    approvedCSR(t, certificatesv1.KubeAPIServerClientKubeletSignerName, pkix.Name{CommonName: "system:node:n1"}, nil, nil, usages...),
		"san":    approvedCSR(t, certificatesv1.KubeAPIServerClientKubeletSignerName, pkix.Name{CommonName: "system:node:n1", Organization: []string{"system:nodes"}}, []string{"n1"}, nil, usages...),
		"usages": approvedCSR(t, certificatesv1.KubeAPIServerClientKubeletSignerName, pkix.Name{CommonName: "system:node:n1", Organization: []string{"system:nodes"}}, nil, nil, certificatesv1.UsageServerAuth),
		"client": approvedCSR(t, certificatesv1.KubeAPIServerClientSignerName, pkix.Name{CommonName: "alice"}, nil, nil, certificatesv1.UsageServerAuth),
	} {
		t.Run(name, func(t *testing.T) {
			got, cert := run(t, csr)
			if cert != nil {
				t.Fatal("signed")
			}
			c := got.Status.Conditions[len(got.Status.Conditions)-1]
			if c.Type != certificatesv1.CertificateFailed || c.Reason != "SignerValidationFailure" || c.Status != corev1.ConditionTrue {
				t.Errorf("condition %+v", c)
			}
		})
	}
}

func TestLeavesOthersAlone(t *testing.T) {
	usages := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}
	pending := approvedCSR(t, certificatesv1.KubeAPIServerClientSignerName, pkix.Name{CommonName: "a"}, nil, nil, usages...)
	pending.Status.Conditions = nil
	denied := approvedCSR(t, certificatesv1.KubeAPIServerClientSignerName, pkix.Name{CommonName: "a"}, nil, nil, usages...)
	denied.Status.Conditions = append(denied.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{Type: certificatesv1.CertificateDenied, Status: corev1.ConditionTrue})
	other := approvedCSR(t, "example.com/signer", pkix.Name{CommonName: "a"}, nil, nil, usages...)
	for name, csr := range map[string]*certificatesv1.CertificateSigningRequest{"pending": pending, "denied": denied, "other signer": other} {
		if got, cert := run(t, csr); cert != nil || len(got.Status.Conditions) != len(csr.Status.Conditions) {
			t.Errorf("%s: touched: %+v", name, got.Status)
		}
	}
}

func TestDuration(t *testing.T) {
	r := &Reconciler{Duration: 24 * time.Hour}
	for _, tt := range []struct {
		seconds *int32
		want    time.Duration
	}{
		{nil, 24 * time.Hour},
		{ptr.To[int32](60), 10 * time.Minute},
		{ptr.To[int32](7200), 2 * time.Hour},
		{ptr.To[int32](7 * 86400), 24 * time.Hour},
	} {
		if got := r.duration(tt.seconds); got != tt.want {
			t.Errorf("duration(%v) = %s, want %s", tt.seconds, got, tt.want)
		}
	}
}
