// Package csrcleaner is upstream's CSR cleaner: CertificateSigningRequests
// are deleted once they are of no more use. Issued and approved ones an hour
// after approval, denied and failed ones an hour after that condition,
// pending ones a day after creation, approved but never issued ones a day
// after approval, and any whose certificate has expired.
package csrcleaner

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Upstream's lifetimes.
const (
	approvedExpiration = time.Hour
	deniedExpiration   = time.Hour
	pendingExpiration  = 24 * time.Hour
)

// Reconciler deletes a CSR when its time has come, and otherwise looks at
// it again then (upstream polls every hour instead).
type Reconciler struct {
	Client client.Client
	// Clock is time.Now's source; nil: the real clock.
	Clock clock.PassiveClock
}

// SetupWithManager registers the reconciler for CertificateSigningRequests.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	return ctrl.NewControllerManagedBy(mgr).Named("csrcleaner").
		For(&certificatesv1.CertificateSigningRequest{}).Complete(r)
}

// Reconcile deletes the CSR if it is past its deadline.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var csr certificatesv1.CertificateSigningRequest
	if err := r.Client.Get(ctx, req.NamespacedName, &csr); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	now := r.Clock.Now()
	deadline, why := Deadline(&csr)
	if deadline.IsZero() {
		return ctrl.Result{}, nil
	}
	if now.Before(deadline) {
		return ctrl.Result{RequeueAfter: deadline.Sub(now)}, nil
	}
	klog.FromContext(ctx).Info("Cleaning CSR: "+why, "csr", csr.Name)
	uid := csr.UID
	err := r.Client.Delete(ctx, &csr, &client.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, err
}

// Deadline is when csr is to be deleted, and why (upstream's log
// messages); zero if never (a condition without its time).
func Deadline(csr *certificatesv1.CertificateSigningRequest) (time.Time, string) {
	issued := len(csr.Status.Certificate) > 0
	var earliest time.Time
	var why string
	consider := func(t time.Time, reason string) {
		if !t.IsZero() && (earliest.IsZero() || t.Before(earliest)) {
			earliest, why = t, reason
		}
	}
	after := func(t metav1.Time, d time.Duration) time.Time {
		if t.IsZero() {
			return time.Time{}
		}
		return t.Add(d)
	}
	if len(csr.Status.Conditions) == 0 {
		consider(after(csr.CreationTimestamp, pendingExpiration), "it is more than pendingExpiration duration old and unhandled")
	}
	for _, c := range csr.Status.Conditions {
		switch c.Type {
		case certificatesv1.CertificateApproved:
			if issued {
				consider(after(c.LastUpdateTime, approvedExpiration), "it is more than approvedExpiration duration old and approved")
				if notAfter := certificateEnd(csr.Status.Certificate); !notAfter.IsZero() {
					consider(notAfter, "the associated certificate is expired")
				}
			} else {
				consider(after(c.LastUpdateTime, pendingExpiration), "it is approved but unissued for more than pendingExpiration duration")
			}
		case certificatesv1.CertificateDenied:
			consider(after(c.LastUpdateTime, deniedExpiration), "it is more than deniedExpiration duration old and denied")
		case certificatesv1.CertificateFailed:
			consider(after(c.LastUpdateTime, deniedExpiration), "it is more than deniedExpiration duration old and failed")
		}
	}
	return earliest, why
}

// certificateEnd is the NotAfter of the first certificate of pemData;
// zero if it holds none.
func certificateEnd(pemData []byte) time.Time {
	block, _ := pem.Decode(pemData)
	if block == nil {
		return time.Time{}
	}
	certs, err := x509.ParseCertificates(block.Bytes)
	if err != nil || len(certs) == 0 {
		return time.Time{}
	}
	return certs[0].NotAfter
}
