// Package csrapproving approves kubelet client certificate requests as
// upstream's csrapproving controller does, and kubelet serving ones as
// kubelet-csr-approver does (serving.go): a pending CSR for
// kubernetes.io/kube-apiserver-client-kubelet that is a valid kubelet client
// request (subject system:node:<name> in system:nodes, client usages, no
// SANs) is approved (reason AutoApproved) when its requester may ask for it.
//
// Upstream asks the authorizer (a SubjectAccessReview) whether the
// requester may create certificatesigningrequests/selfnodeclient (a node
// renewing its own certificate) or .../nodeclient (a new node); RBAC then
// decides, and kubeadm binds those to system:nodes and
// system:bootstrappers. Until skiff's RBAC can answer that, Allowed
// stands in for the review: a node (in system:nodes) renewing its own
// certificate, and any bootstrap token user (system:bootstrappers). Unlike
// a review, it does not approve system:masters' kubelet client requests.
package csrapproving

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	capihelper "github.com/skiff-dev/skiff/pkg/apis/certificates"
)

// Permission is what a requester must be allowed: upstream's subresource of
// certificatesigningrequests that the SubjectAccessReview names.
type Permission string

const (
	SelfNodeClient Permission = "selfnodeclient"
	NodeClient     Permission = "nodeclient"
)

// Allowed decides, from the CSR's requester (spec.username, spec.groups),
// whether it may have the permission.
func Allowed(csr *certificatesv1.CertificateSigningRequest, p Permission) bool {
	groups := csr.Spec.Groups
	switch p {
	case SelfNodeClient:
		return slices.Contains(groups, "system:nodes")
	case NodeClient:
		return slices.Contains(groups, "system:bootstrappers")
	}
	return false
}

// Reconciler approves the kubelet client CSRs that Authorize allows.
type Reconciler struct {
	// Client reads CSRs through the manager's cache.
	Client client.Client
	// Core writes the approval.
	Core kubernetes.Interface
	// Authorize decides; nil: Allowed.
	Authorize func(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, p Permission) (bool, error)
	// Recorder, if set, records why a kubelet serving CSR stays pending.
	Recorder record.EventRecorder
}

// SetupWithManager registers the reconciler for CSRs, and for the Nodes
// whose serving CSRs wait for their addresses.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).Named("csrapproving").
		For(&certificatesv1.CertificateSigningRequest{}).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(r.pendingServingCSRs),
			builder.WithPredicates(predicate.Funcs{UpdateFunc: addressesChanged,
				DeleteFunc: func(event.DeleteEvent) bool { return false }})).
		Complete(r)
}

type recognizer struct {
	recognize  func(*certificatesv1.CertificateSigningRequest, *x509.CertificateRequest) bool
	permission Permission
	message    string
}

var recognizers = []recognizer{
	{isSelfNodeClientCert, SelfNodeClient, "Auto approving self kubelet client certificate after SubjectAccessReview."},
	{isNodeClientCert, NodeClient, "Auto approving kubelet client certificate after SubjectAccessReview."},
}

func isNodeClientCert(csr *certificatesv1.CertificateSigningRequest, req *x509.CertificateRequest) bool {
	return csr.Spec.SignerName == certificatesv1.KubeAPIServerClientKubeletSignerName &&
		capihelper.ValidateKubeletClientCSR(req, csr.Spec.Usages) == nil
}

func isSelfNodeClientCert(csr *certificatesv1.CertificateSigningRequest, req *x509.CertificateRequest) bool {
	return csr.Spec.Username == req.Subject.CommonName && isNodeClientCert(csr, req)
}

// Reconcile approves one pending CSR if it is recognized and allowed.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	cached := &certificatesv1.CertificateSigningRequest{}
	if err := r.Client.Get(ctx, req.NamespacedName, cached); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	return ctrl.Result{}, r.handle(ctx, cached.DeepCopy())
}

func (r *Reconciler) handle(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) error {
	if len(csr.Status.Certificate) != 0 {
		return nil
	}
	if approved, denied := capihelper.ApprovalCondition(&csr.Status); approved || denied {
		return nil
	}
	if csr.Spec.SignerName != certificatesv1.KubeAPIServerClientKubeletSignerName && csr.Spec.SignerName != certificatesv1.KubeletServingSignerName {
		return nil
	}
	x509cr, err := capihelper.ParseCSR(csr.Spec.Request)
	if err != nil {
		return fmt.Errorf("unable to parse csr %q: %v", csr.Name, err)
	}
	if csr.Spec.SignerName == certificatesv1.KubeletServingSignerName {
		return r.handleServing(ctx, csr, x509cr)
	}
	authorize := r.Authorize
	if authorize == nil {
		authorize = func(_ context.Context, csr *certificatesv1.CertificateSigningRequest, p Permission) (bool, error) {
			return Allowed(csr, p), nil
		}
	}
	var tried []Permission
	for _, rec := range recognizers {
		if !rec.recognize(csr, x509cr) {
			continue
		}
		tried = append(tried, rec.permission)
		ok, err := authorize(ctx, csr, rec.permission)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		return r.approve(ctx, csr, rec.message)
	}
	if len(tried) > 0 {
		// Upstream retries with backoff (the review may come to allow it
		// later); skiff's decision depends on the CSR alone.
		log.FromContext(ctx).V(4).Info("Recognized the CSR but its requester may not have it approved", "csr", csr.Name, "tried", tried)
	}
	return nil
}

func (r *Reconciler) approve(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, message string) error {
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type:    certificatesv1.CertificateApproved,
		Status:  corev1.ConditionTrue,
		Reason:  "AutoApproved",
		Message: message,
	})
	if _, err := r.Core.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("error updating approval for csr: %v", err)
	}
	return nil
}

// handleServing approves a kubelet serving CSR that servingRefusal does
// not refuse, else says why it stays pending.
func (r *Reconciler) handleServing(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, x509cr *x509.CertificateRequest) error {
	node, err := r.servingNode(ctx, x509cr)
	if err != nil {
		return err
	}
	why := servingRefusal(csr, x509cr, node)
	if why == "" {
		return r.approve(ctx, csr, servingApprovalMessage)
	}
	log.FromContext(ctx).V(2).Info("Leaving the kubelet serving CSR pending", "csr", csr.Name, "reason", why)
	if r.Recorder != nil {
		r.Recorder.Eventf(csr, corev1.EventTypeWarning, "NotAutoApproved", "Kubelet serving certificate request not approved automatically: %s", why)
	}
	return nil
}
