package csrcleaner

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func certificate(t *testing.T, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"},
		NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestCleaner: each kind of CSR goes at upstream's deadline and not
// before; the requeue says when to look again.
func TestCleaner(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }
	cond := func(typ certificatesv1.RequestConditionType, at metav1.Time) []certificatesv1.CertificateSigningRequestCondition {
		return []certificatesv1.CertificateSigningRequestCondition{{Type: typ, Status: "True", LastUpdateTime: at}}
	}
	valid, expired := certificate(t, now.Add(30*24*time.Hour)), certificate(t, now.Add(-time.Minute))
	for _, c := range []struct {
		name    string
		created metav1.Time
		status  certificatesv1.CertificateSigningRequestStatus
		gone    bool
		requeue time.Duration
	}{
		{"pending-fresh", ago(23 * time.Hour), certificatesv1.CertificateSigningRequestStatus{}, false, time.Hour},
		{"pending-old", ago(25 * time.Hour), certificatesv1.CertificateSigningRequestStatus{}, true, 0},
		{"issued-fresh", ago(2 * time.Hour), certificatesv1.CertificateSigningRequestStatus{Conditions: cond(certificatesv1.CertificateApproved, ago(20*time.Minute)), Certificate: valid}, false, 40 * time.Minute},
		{"issued-old", ago(2 * time.Hour), certificatesv1.CertificateSigningRequestStatus{Conditions: cond(certificatesv1.CertificateApproved, ago(61*time.Minute)), Certificate: valid}, true, 0},
		{"issued-expired", ago(2 * time.Hour), certificatesv1.CertificateSigningRequestStatus{Conditions: cond(certificatesv1.CertificateApproved, ago(time.Minute)), Certificate: expired}, true, 0},
		{"approved-unissued", ago(30 * time.Hour), certificatesv1.CertificateSigningRequestStatus{Conditions: cond(certificatesv1.CertificateApproved, ago(23*time.Hour))}, false, time.Hour},
		{"approved-unissued-old", ago(30 * time.Hour), certificatesv1.CertificateSigningRequestStatus{Conditions: cond(certificatesv1.CertificateApproved, ago(25*time.Hour))}, true, 0},
		{"denied-fresh", ago(30 * time.Hour), certificatesv1.CertificateSigningRequestStatus{Conditions: cond(certificatesv1.CertificateDenied, ago(30*time.Minute))}, false, 30 * time.Minute},
		{"denied-old", ago(30 * time.Hour), certificatesv1.CertificateSigningRequestStatus{Conditions: cond(certificatesv1.CertificateDenied, ago(2*time.Hour))}, true, 0},
		{"failed-old", ago(30 * time.Hour), certificatesv1.CertificateSigningRequestStatus{Conditions: cond(certificatesv1.CertificateFailed, ago(2*time.Hour))}, true, 0},
		{"denied-no-time", ago(30 * time.Hour), certificatesv1.CertificateSigningRequestStatus{Conditions: cond(certificatesv1.CertificateDenied, metav1.Time{})}, false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			csr := &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: c.name, UID: types.UID(c.name), CreationTimestamp: c.created},
				Spec: certificatesv1.CertificateSigningRequestSpec{SignerName: certificatesv1.KubeAPIServerClientSignerName}, Status: c.status}
			cl := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(csr).Build()
			r := &Reconciler{Client: cl, Clock: clocktesting.NewFakePassiveClock(now)}
			res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Name: c.name}})
			if err != nil {
				t.Fatal(err)
			}
			err = cl.Get(context.Background(), types.NamespacedName{Name: c.name}, &certificatesv1.CertificateSigningRequest{})
			if gone := apierrors.IsNotFound(err); gone != c.gone {
				t.Errorf("deleted %v, want %v (%v)", gone, c.gone, err)
			}
			if res.RequeueAfter != c.requeue {
				t.Errorf("requeue after %v, want %v", res.RequeueAfter, c.requeue)
			}
		})
	}
}
