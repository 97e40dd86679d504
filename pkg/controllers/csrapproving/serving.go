package csrapproving

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	capihelper "github.com/skiff-dev/skiff/pkg/apis/certificates"
	"github.com/skiff-dev/skiff/pkg/kubelet/certificate"
)

// Kubelet serving certificates (kubernetes.io/kubelet-serving, what a
// kubelet with --rotate-server-certificates asks for) are not approved by
// upstream's kube-controller-manager; clusters run an approver such as
// kubelet-csr-approver for them. skiff approves one with that approver's
// checks: the request is a valid kubelet serving request, made by the
// node it names (username system:node:<name> in system:nodes, the
// subject's common name), and every SAN is one of that Node object's
// status.addresses: its Hostname, InternalDNS and ExternalDNS names and
// its InternalIP and ExternalIP addresses. Anything else stays pending,
// with an event saying why, for an administrator to approve or deny: the
// Node may not have reported its addresses yet, so a refusal is not final.

const servingApprovalMessage = "Auto approving kubelet serving certificate: requested by its node for the Node's addresses."

// servingRefusal is why csr is not approved; "" approves it. node is the
// named Node, nil when it does not exist.
func servingRefusal(csr *certificatesv1.CertificateSigningRequest, req *x509.CertificateRequest, node *corev1.Node) string {
	if err := capihelper.ValidateKubeletServingCSR(req, csr.Spec.Usages); err != nil {
		return fmt.Sprintf("not a kubelet serving certificate request: %v", err)
	}
	if csr.Spec.Username != req.Subject.CommonName {
		return fmt.Sprintf("requested by %q, not by the node it names (%q)", csr.Spec.Username, req.Subject.CommonName)
	}
	if !slices.Contains(csr.Spec.Groups, "system:nodes") {
		return "requester is not in the system:nodes group"
	}
	if node == nil {
		return fmt.Sprintf("node %q does not exist", nodeNameOf(req))
	}
	// The SANs the node's own kubelet asks for.
	names, ips := certificate.SANs(node.Status.Addresses)
	for _, n := range req.DNSNames {
		if !slices.Contains(names, n) {
			return fmt.Sprintf("DNS name %q is not a hostname or DNS address of node %q", n, node.Name)
		}
	}
	for _, ip := range req.IPAddresses {
		if !slices.ContainsFunc(ips, ip.Equal) {
			return fmt.Sprintf("IP address %s is not an address of node %q", ip, node.Name)
		}
	}
	return ""
}

func nodeNameOf(req *x509.CertificateRequest) string {
	return strings.TrimPrefix(req.Subject.CommonName, "system:node:")
}

// servingNode is the Node the serving CSR names; nil when there is none.
func (r *Reconciler) servingNode(ctx context.Context, req *x509.CertificateRequest) (*corev1.Node, error) {
	if r.Client == nil || !strings.HasPrefix(req.Subject.CommonName, "system:node:") {
		return nil, nil
	}
	node := &corev1.Node{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: nodeNameOf(req)}, node); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return node, nil
}

// pendingServingCSRs are the pending kubelet serving CSRs of a node, to
// look at again when the Node appears or its addresses change.
func (r *Reconciler) pendingServingCSRs(ctx context.Context, obj client.Object) []reconcile.Request {
	var list certificatesv1.CertificateSigningRequestList
	if err := r.Client.List(ctx, &list); err != nil {
		return nil
	}
	var out []reconcile.Request
	for i := range list.Items {
		csr := &list.Items[i]
		if csr.Spec.SignerName != certificatesv1.KubeletServingSignerName || csr.Spec.Username != "system:node:"+obj.GetName() ||
			len(csr.Status.Certificate) != 0 {
			continue
		}
		if approved, denied := capihelper.ApprovalCondition(&csr.Status); approved || denied {
			continue
		}
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: csr.Name}})
	}
	return out
}

// addressesChanged passes Node creations and address changes only: a
// node's status is written every few seconds.
func addressesChanged(e event.UpdateEvent) bool {
	before, ok1 := e.ObjectOld.(*corev1.Node)
	after, ok2 := e.ObjectNew.(*corev1.Node)
	return !ok1 || !ok2 || !slices.Equal(before.Status.Addresses, after.Status.Addresses)
}
