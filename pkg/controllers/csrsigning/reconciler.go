// Package csrsigning signs approved CertificateSigningRequests with the
// cluster CA, as upstream's csrsigning controllers, for the signers
// kubernetes.io/kube-apiserver-client, kubernetes.io/kube-apiserver-client-kubelet
// and kubernetes.io/kubelet-serving: the request must fit the signer
// (usages; for the kubelet signers also subject and SANs) or the CSR gets a
// Failed condition (reason SignerValidationFailure); otherwise
// status.certificate is set to a certificate of the requested usages that
// lives spec.expirationSeconds (at least 10 minutes), at most Duration.
package csrsigning

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	capihelper "github.com/skiff-dev/skiff/pkg/apis/certificates"
)

// DefaultDuration is upstream's --cluster-signing-duration default.
const DefaultDuration = 365 * 24 * time.Hour

// minDuration is the shortest certificate it issues.
const minDuration = 10 * time.Minute

// Reconciler signs the approved CSRs of the signers it knows.
type Reconciler struct {
	// Client reads CSRs through the manager's cache.
	Client client.Client
	// Core writes the status.
	Core kubernetes.Interface
	// CA signs.
	CA CA
	// Duration is the longest lifetime of a certificate; 0: DefaultDuration.
	Duration time.Duration
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// validators check a request for one signer.
var validators = map[string]func(req *x509.CertificateRequest, usages []certificatesv1.KeyUsage) error{
	certificatesv1.KubeAPIServerClientSignerName: func(_ *x509.CertificateRequest, usages []certificatesv1.KeyUsage) error {
		return capihelper.ValidateAPIServerClientUsages(usages)
	},
	certificatesv1.KubeAPIServerClientKubeletSignerName: capihelper.ValidateKubeletClientCSR,
	certificatesv1.KubeletServingSignerName:             capihelper.ValidateKubeletServingCSR,
}

// SetupWithManager registers the reconciler for CSRs.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if _, _, err := r.CA.load(); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).Named("csrsigning").
		For(&certificatesv1.CertificateSigningRequest{}).
		Complete(r)
}

// Reconcile signs one CSR if it is approved, not denied, not failed, not
// yet signed and for one of the signers.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	cached := &certificatesv1.CertificateSigningRequest{}
	if err := r.Client.Get(ctx, req.NamespacedName, cached); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	return ctrl.Result{}, r.handle(ctx, cached.DeepCopy())
}

func (r *Reconciler) handle(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) error {
	if len(csr.Status.Certificate) > 0 || !capihelper.IsApproved(csr) || capihelper.HasTrueCondition(csr, certificatesv1.CertificateFailed) {
		return nil
	}
	validate, ok := validators[csr.Spec.SignerName]
	if !ok {
		return nil
	}
	x509cr, err := capihelper.ParseCSR(csr.Spec.Request)
	if err != nil {
		return fmt.Errorf("unable to parse csr %q: %v", csr.Name, err)
	}
	if err := validate(x509cr, csr.Spec.Usages); err != nil {
		csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type:           certificatesv1.CertificateFailed,
			Status:         corev1.ConditionTrue,
			Reason:         "SignerValidationFailure",
			Message:        err.Error(),
			LastUpdateTime: metav1.Now(),
		})
		if _, err := r.Core.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, csr, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("error adding failure condition for csr: %v", err)
		}
		log.FromContext(ctx).Info("Refused to sign the CSR", "csr", csr.Name, "signer", csr.Spec.SignerName, "reason", err.Error())
		return nil
	}
	caCert, caKey, err := r.CA.load()
	if err != nil {
		return err
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	cert, err := sign(caCert, caKey, x509cr, policy{
		TTL:      r.duration(csr.Spec.ExpirationSeconds),
		Usages:   csr.Spec.Usages,
		Backdate: 5 * time.Minute, // always below minDuration
		Short:    8 * time.Hour,   // 5 minutes of backdating are about 1% of 8 hours
		Now:      now(),
	})
	if err != nil {
		return fmt.Errorf("error auto signing csr: %v", err)
	}
	csr.Status.Certificate = cert
	if _, err := r.Core.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, csr, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("error updating signature for csr: %v", err)
	}
	return nil
}

// duration is the lifetime of a certificate: the requested one between 10
// minutes and Duration, else Duration.
func (r *Reconciler) duration(expirationSeconds *int32) time.Duration {
	limit := r.Duration
	if limit == 0 {
		limit = DefaultDuration
	}
	if expirationSeconds == nil {
		return limit
	}
	switch d := time.Duration(*expirationSeconds) * time.Second; {
	case d > limit:
		return limit
	case d < minDuration:
		return minDuration
	default:
		return d
	}
}
