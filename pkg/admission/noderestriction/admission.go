// Package noderestriction is upstream's NodeRestriction admission plugin:
// a node (system:node:<name> in system:nodes) may modify only its own
// Node (not its taints, ownerReferences, configSource or protected
// labels) and Lease, create only mirror pods bound to itself, update the
// status of and evict only its own pods, request service account tokens
// only for its pods, and request certificates only in its own name. It
// completes the Node authorizer, which cannot see request bodies.
package noderestriction

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	kubeletapis "k8s.io/kubelet/pkg/apis"

	"github.com/skiff-dev/skiff/pkg/apis/certificates"
	nodeauthz "github.com/skiff-dev/skiff/pkg/authorizer/node"
)

// PluginName is the plugin's name in upstream's admission chain.
const PluginName = "NodeRestriction"

// Plugin is the NodeRestriction admission plugin.
type Plugin struct {
	*admission.Handler
	pods       corelisters.PodLister
	nodes      corelisters.NodeLister
	claims     corelisters.PersistentVolumeClaimLister
	volumes    corelisters.PersistentVolumeLister
	csiDrivers storagelisters.CSIDriverLister
	// authz decides token audiences the node's pods do not name
	// (ServiceAccountNodeAudienceRestriction, on in v1.37).
	authz authorizer.UnconditionalAuthorizer
}

var _ admission.MutationInterface = &Plugin{}

// New returns the plugin reading through factory's informers (started by
// the caller) and asking authz about token audiences.
func New(factory informers.SharedInformerFactory, authz authorizer.UnconditionalAuthorizer) *Plugin {
	return &Plugin{
		Handler:    admission.NewHandler(admission.Create, admission.Update, admission.Delete),
		pods:       factory.Core().V1().Pods().Lister(),
		nodes:      factory.Core().V1().Nodes().Lister(),
		claims:     factory.Core().V1().PersistentVolumeClaims().Lister(),
		volumes:    factory.Core().V1().PersistentVolumes().Lister(),
		csiDrivers: factory.Storage().V1().CSIDrivers().Lister(),
		authz:      authz,
	}
}

var (
	podsResource     = corev1.Resource("pods")
	nodesResource    = corev1.Resource("nodes")
	claimsResource   = corev1.Resource("persistentvolumeclaims")
	accountsResource = corev1.Resource("serviceaccounts")
	leasesResource   = coordinationv1.Resource("leases")
	csiNodesResource = schema.GroupResource{Group: "storage.k8s.io", Resource: "csinodes"}
	csrsResource     = certificatesv1.Resource("certificatesigningrequests")
)

// Admit restricts the requests of nodes; other users' pass.
func (p *Plugin) Admit(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	node, isNode := nodeauthz.Identity(a.GetUserInfo())
	if !isNode {
		return nil
	}
	if node == "" {
		return admission.NewForbidden(a, fmt.Errorf("could not determine node from user %q", a.GetUserInfo().GetName()))
	}
	switch a.GetResource().GroupResource() {
	case podsResource:
		switch a.GetSubresource() {
		case "":
			return p.admitPod(node, a)
		case "status":
			return admitPodStatus(node, a)
		case "eviction":
			return p.admitEviction(node, a)
		default:
			return admission.NewForbidden(a, fmt.Errorf("unexpected pod subresource %q, only 'status' and 'eviction' are allowed", a.GetSubresource()))
		}
	case nodesResource:
		return admitNode(node, a)
	case claimsResource:
		if a.GetSubresource() != "status" {
			return admission.NewForbidden(a, errors.New("may only update PVC status"))
		}
		return admitClaimStatus(node, a)
	case accountsResource:
		return p.admitServiceAccount(ctx, node, a)
	case leasesResource:
		return admitLease(node, a)
	case csiNodesResource:
		return admitCSINode(node, a)
	case csrsResource:
		return admitCSR(node, a)
	}
	return nil
}

func forbidden(a admission.Attributes, format string, args ...any) error {
	return admission.NewForbidden(a, fmt.Errorf(format, args...))
}

// admitPod lets a node create mirror pods bound to itself and delete its
// own pods.
func (p *Plugin) admitPod(node string, a admission.Attributes) error {
	switch a.GetOperation() {
	case admission.Create:
		return p.admitMirrorPod(node, a)
	case admission.Delete:
		existing, err := p.pods.Pods(a.GetNamespace()).Get(a.GetName())
		if apierrors.IsNotFound(err) {
			return err
		}
		if err != nil {
			return admission.NewForbidden(a, err)
		}
		if existing.Spec.NodeName != node {
			return forbidden(a, "node %q can only delete pods with spec.nodeName set to itself", node)
		}
		return nil
	default:
		return forbidden(a, "unexpected operation %q, node %q can only create and delete mirror pods", a.GetOperation(), node)
	}
}

func (p *Plugin) admitMirrorPod(node string, a admission.Attributes) error {
	pod, ok := a.GetObject().(*corev1.Pod)
	if !ok {
		return forbidden(a, "unexpected type %T", a.GetObject())
	}
	if _, mirror := pod.Annotations[corev1.MirrorPodAnnotationKey]; !mirror {
		return forbidden(a, "pod does not have %q annotation, node %q can only create mirror pods", corev1.MirrorPodAnnotationKey, node)
	}
	if pod.Spec.NodeName != node {
		return forbidden(a, "node %q can only create pods with spec.nodeName set to itself", node)
	}
	switch len(pod.OwnerReferences) {
	case 0:
		return forbidden(a, "node %q can only create pods with an owner reference set to itself", node)
	case 1:
	default:
		return forbidden(a, "node %q can only create pods with a single owner reference set to itself", node)
	}
	owner := pod.OwnerReferences[0]
	if owner.APIVersion != corev1.SchemeGroupVersion.String() || owner.Kind != "Node" || owner.Name != node {
		return forbidden(a, "node %q can only create pods with an owner reference set to itself", node)
	}
	if owner.Controller == nil || !*owner.Controller {
		return forbidden(a, "node %q can only create pods with a controller owner reference set to itself", node)
	}
	if owner.BlockOwnerDeletion != nil && *owner.BlockOwnerDeletion {
		return forbidden(a, "node %q must not set blockOwnerDeletion on an owner reference", node)
	}
	self, err := p.nodes.Get(node)
	if apierrors.IsNotFound(err) {
		return err
	}
	if err != nil {
		return forbidden(a, "error looking up node %s to verify uid: %v", node, err)
	}
	if owner.UID != self.UID {
		return forbidden(a, "node %s UID mismatch: expected %s got %s", node, owner.UID, self.UID)
	}
	references, resource, err := apiObjectReference(pod)
	if err != nil {
		return forbidden(a, "error checking mirror pod for API references: %w", err)
	}
	if references {
		return forbidden(a, "node %q can not create pods that reference %s", node, resource)
	}
	return nil
}

// admitPodStatus lets a node update the status of its own pods, but not
// their labels or resource claims through it.
func admitPodStatus(node string, a admission.Attributes) error {
	if a.GetOperation() != admission.Update {
		return forbidden(a, "unexpected operation %q", a.GetOperation())
	}
	old, ok := a.GetOldObject().(*corev1.Pod)
	if !ok {
		return forbidden(a, "unexpected type %T", a.GetOldObject())
	}
	if old.Spec.NodeName != node {
		return forbidden(a, "node %q can only update pod status for pods with spec.nodeName set to itself", node)
	}
	pod, ok := a.GetObject().(*corev1.Pod)
	if !ok {
		return forbidden(a, "unexpected type %T", a.GetObject())
	}
	if !labels.Equals(old.Labels, pod.Labels) {
		return forbidden(a, "node %q cannot update labels through pod status", node)
	}
	if !apiequality.Semantic.DeepEqual(old.Status.ResourceClaimStatuses, pod.Status.ResourceClaimStatuses) {
		return forbidden(a, "node %q cannot update resource claim statues", node)
	}
	if !apiequality.Semantic.DeepEqual(old.Status.ExtendedResourceClaimStatus, pod.Status.ExtendedResourceClaimStatus) {
		return forbidden(a, "node %q cannot update extended resource claim status", node)
	}
	if !apiequality.Semantic.DeepEqual(old.Status.NodeAllocatableResourceClaimStatuses, pod.Status.NodeAllocatableResourceClaimStatuses) {
		return forbidden(a, "node %q cannot update node allocatable resource claim statuses", node)
	}
	return nil
}

// admitEviction lets a node evict only its own pods.
func (p *Plugin) admitEviction(node string, a admission.Attributes) error {
	if a.GetOperation() != admission.Create {
		return forbidden(a, "unexpected operation %s", a.GetOperation())
	}
	eviction, ok := a.GetObject().(*policyv1.Eviction)
	if !ok {
		return forbidden(a, "unexpected type %T", a.GetObject())
	}
	// The pod of the URL, not of the body, is the one evicted.
	name := a.GetName()
	if name == "" {
		if eviction.Name == "" {
			return forbidden(a, "could not determine pod from request data")
		}
		name = eviction.Name
	}
	pod, err := p.pods.Pods(a.GetNamespace()).Get(name)
	if apierrors.IsNotFound(err) {
		return err
	}
	if err != nil {
		return admission.NewForbidden(a, err)
	}
	if pod.Spec.NodeName != node {
		return forbidden(a, "node %s can only evict pods with spec.nodeName set to itself", node)
	}
	return nil
}

// admitClaimStatus lets a node change only a claim's capacity,
// conditions and allocated resources.
func admitClaimStatus(node string, a admission.Attributes) error {
	if a.GetOperation() != admission.Update {
		return forbidden(a, "unexpected operation %q", a.GetOperation())
	}
	oldClaim, ok := a.GetOldObject().(*corev1.PersistentVolumeClaim)
	if !ok {
		return forbidden(a, "unexpected type %T", a.GetOldObject())
	}
	newClaim, ok := a.GetObject().(*corev1.PersistentVolumeClaim)
	if !ok {
		return forbidden(a, "unexpected type %T", a.GetObject())
	}
	oldClaim, newClaim = oldClaim.DeepCopy(), newClaim.DeepCopy()
	for _, c := range []*corev1.PersistentVolumeClaim{oldClaim, newClaim} {
		// An empty resourceVersion is an unconditional update.
		c.ResourceVersion = ""
		c.ManagedFields = nil
		c.Status.Capacity = nil
		c.Status.Conditions = nil
		c.Status.AllocatedResourceStatuses = nil
		c.Status.AllocatedResources = nil
	}
	if !apiequality.Semantic.DeepEqual(oldClaim, newClaim) {
		return forbidden(a, "node %q is not allowed to update fields other than status.quantity and status.conditions: %v", node, diff.Diff(oldClaim, newClaim))
	}
	return nil
}

// admitNode lets a node create and update only its own Node, and not
// give itself taints, owners, a configSource or protected labels that
// would steer workloads to it.
func admitNode(node string, a admission.Attributes) error {
	if a.GetName() != node {
		return forbidden(a, "node %q is not allowed to modify node %q", node, a.GetName())
	}
	switch a.GetOperation() {
	case admission.Create:
		obj, ok := a.GetObject().(*corev1.Node)
		if !ok {
			return forbidden(a, "unexpected type %T", a.GetObject())
		}
		if obj.Spec.ConfigSource != nil {
			return forbidden(a, "node %q is not allowed to create pods with a non-nil configSource", node)
		}
		if bad := forbiddenLabels(modifiedLabels(obj.Labels, nil)); len(bad) > 0 {
			return forbidden(a, "node %q is not allowed to set the following labels: %s", node, strings.Join(bad, ", "))
		}
	case admission.Update:
		obj, ok := a.GetObject().(*corev1.Node)
		if !ok {
			return forbidden(a, "unexpected type %T", a.GetObject())
		}
		old, ok := a.GetOldObject().(*corev1.Node)
		if !ok {
			return forbidden(a, "unexpected type %T", a.GetObject())
		}
		// Old kubelets may drop the field in a status update: only a new
		// non-nil one is refused.
		if obj.Spec.ConfigSource != nil && !apiequality.Semantic.DeepEqual(obj.Spec.ConfigSource, old.Spec.ConfigSource) {
			return forbidden(a, "node %q is not allowed to update configSource to a new non-nil configSource", node)
		}
		if !apiequality.Semantic.DeepEqual(obj.Spec.Taints, old.Spec.Taints) {
			return forbidden(a, "node %q is not allowed to modify taints", node)
		}
		if !apiequality.Semantic.DeepEqual(obj.OwnerReferences, old.OwnerReferences) {
			return forbidden(a, "node %q is not allowed to modify ownerReferences", node)
		}
		if bad := forbiddenLabels(modifiedLabels(obj.Labels, old.Labels)); len(bad) > 0 {
			// Upstream's wording, without the node's name.
			return forbidden(a, "is not allowed to modify labels: %s", strings.Join(bad, ", "))
		}
	}
	return nil
}

// modifiedLabels are the keys whose presence or value differ.
func modifiedLabels(a, b map[string]string) sets.Set[string] {
	modified := sets.New[string]()
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			modified.Insert(k)
		}
	}
	for k, v := range b {
		if w, ok := a[k]; !ok || v != w {
			modified.Insert(k)
		}
	}
	return modified
}

// forbiddenLabels are, sorted, the keys of modified a node may not set:
// node-restriction.kubernetes.io/ ones, and kubernetes.io/ and k8s.io/
// ones other than the kubelet's own (kubeletapis.IsKubeletLabel).
func forbiddenLabels(modified sets.Set[string]) []string {
	var bad []string
	for key := range modified {
		ns := labelNamespace(key)
		restricted := ns == corev1.LabelNamespaceNodeRestriction || strings.HasSuffix(ns, "."+corev1.LabelNamespaceNodeRestriction)
		kubernetes := ns == "kubernetes.io" || strings.HasSuffix(ns, ".kubernetes.io") || ns == "k8s.io" || strings.HasSuffix(ns, ".k8s.io")
		if restricted || (kubernetes && !kubeletapis.IsKubeletLabel(key)) {
			bad = append(bad, key)
		}
	}
	slices.Sort(bad)
	return bad
}

func labelNamespace(key string) string {
	if prefix, _, ok := strings.Cut(key, "/"); ok {
		return prefix
	}
	return ""
}

// admitServiceAccount lets a node request tokens only bound to its own
// pods, for audiences those pods use (or that authz allows).
func (p *Plugin) admitServiceAccount(ctx context.Context, node string, a admission.Attributes) error {
	if a.GetOperation() != admission.Create || a.GetSubresource() != "token" {
		return nil
	}
	tr, ok := a.GetObject().(*authenticationv1.TokenRequest)
	if !ok {
		return forbidden(a, "unexpected type %T", a.GetObject())
	}
	ref := tr.Spec.BoundObjectRef
	if ref == nil || ref.APIVersion != "v1" || ref.Kind != "Pod" || ref.Name == "" {
		return forbidden(a, "node requested token not bound to a pod")
	}
	if ref.UID == "" {
		return forbidden(a, "node requested token with a pod binding without a uid")
	}
	pod, err := p.pods.Pods(a.GetNamespace()).Get(ref.Name)
	if apierrors.IsNotFound(err) {
		return err
	}
	if err != nil {
		return admission.NewForbidden(a, err)
	}
	if ref.UID != pod.UID {
		return forbidden(a, "the UID in the bound object reference (%s) does not match the UID in record. The object might have been deleted and then recreated", ref.UID)
	}
	if pod.Spec.NodeName != node {
		return forbidden(a, "node requested token bound to a pod scheduled on a different node")
	}
	if err := p.checkAudience(ctx, tr, pod, a); err != nil {
		return admission.NewForbidden(a, err)
	}
	return nil
}

// checkAudience allows the one audience (or none) of a node's token
// request when the pod projects a token for it or uses a CSI driver that
// asks for it, else when authz allows the node the verb
// request-serviceaccounts-token-audience on the audience.
func (p *Plugin) checkAudience(ctx context.Context, tr *authenticationv1.TokenRequest, pod *corev1.Pod, a admission.Attributes) error {
	audience := ""
	switch len(tr.Spec.Audiences) {
	case 0:
	case 1:
		audience = tr.Spec.Audiences[0]
	default:
		return errors.New("node may only request 0 or 1 audiences")
	}
	found, err := p.podUsesAudience(pod, audience)
	if err != nil {
		return fmt.Errorf("error validating audience %q: %w", audience, err)
	}
	if found {
		return nil
	}
	attrs := authorizer.AttributesRecord{
		User:            a.GetUserInfo(),
		Verb:            "request-serviceaccounts-token-audience",
		APIGroup:        a.GetResource().Group,
		APIVersion:      a.GetResource().Version,
		Resource:        audience,
		Namespace:       a.GetNamespace(),
		Name:            a.GetName(),
		ResourceRequest: true,
	}
	decision, _, err := p.authz.Authorize(ctx, attrs)
	// An authorizer may fail for some rules and still allow.
	if decision == authorizer.DecisionAllow {
		return nil
	}
	if err != nil {
		return fmt.Errorf("error authorizing %s to request tokens for audience %q: %w", a.GetUserInfo().GetName(), audience, err)
	}
	return fmt.Errorf("%s is not authorized to request tokens for audience %q", a.GetUserInfo().GetName(), audience)
}

// podUsesAudience reports whether a projected token volume of pod, or the
// CSIDriver of one of its CSI volumes, asks for audience.
func (p *Plugin) podUsesAudience(pod *corev1.Pod, audience string) (bool, error) {
	var errs []error
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.ServiceAccountToken != nil && s.ServiceAccountToken.Audience == audience {
					return true, nil
				}
			}
		}
		var driver string
		var err error
		switch {
		case v.Ephemeral != nil && v.Ephemeral.VolumeClaimTemplate != nil:
			driver, err = p.claimDriver(pod.Namespace, pod.Name+"-"+v.Name)
		case v.PersistentVolumeClaim != nil:
			driver, err = p.claimDriver(pod.Namespace, v.PersistentVolumeClaim.ClaimName)
		case v.CSI != nil:
			driver = v.CSI.Driver
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if driver == "" {
			continue
		}
		d, err := p.csiDrivers.Get(driver)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, r := range d.Spec.TokenRequests {
			if r.Audience == audience {
				return true, nil
			}
		}
	}
	return false, errors.Join(errs...)
}

// claimDriver is the CSI driver of the PV bound to a claim, "" if none.
func (p *Plugin) claimDriver(namespace, name string) (string, error) {
	claim, err := p.claims.PersistentVolumeClaims(namespace).Get(name)
	if err != nil {
		return "", err
	}
	pv, err := p.volumes.Get(claim.Spec.VolumeName)
	if err != nil {
		return "", err
	}
	if pv.Spec.CSI != nil {
		return pv.Spec.CSI.Driver, nil
	}
	return "", nil
}

// admitLease lets a node write only its own Lease in kube-node-lease.
func admitLease(node string, a admission.Attributes) error {
	if a.GetNamespace() != nodeauthz.NodeLeaseNamespace {
		return forbidden(a, "can only access leases in the %q system namespace", nodeauthz.NodeLeaseNamespace)
	}
	name := a.GetName()
	if a.GetOperation() == admission.Create {
		// The name of a created object is in the object.
		lease, ok := a.GetObject().(*coordinationv1.Lease)
		if !ok {
			return forbidden(a, "unexpected type %T", a.GetObject())
		}
		name = lease.Name
	}
	if name != node {
		return forbidden(a, "can only access node lease with the same name as the requesting node")
	}
	return nil
}

// admitCSINode lets a node write only its own CSINode (not its status:
// CSIVolumeHealth is off in v1.37).
func admitCSINode(node string, a admission.Attributes) error {
	name := a.GetName()
	if a.GetOperation() == admission.Create {
		obj, err := meta.Accessor(a.GetObject())
		if err != nil {
			return forbidden(a, "unable to access the object name")
		}
		name = obj.GetName()
	}
	if name != node {
		return forbidden(a, "can only access CSINode with the same name as the requesting node")
	}
	if a.GetSubresource() == "status" {
		return forbidden(a, "CSIVolumeHealth feature gate is disabled")
	}
	return nil
}

// Signers whose certificates name a node.
const (
	kubeletServingSigner = "kubernetes.io/kubelet-serving"
	kubeletClientSigner  = "kubernetes.io/kube-apiserver-client-kubelet"
)

// admitCSR lets a node request kubelet certificates only for itself
// (AllowInsecureKubeletCertificateSigningRequests is off in v1.37).
func admitCSR(node string, a admission.Attributes) error {
	if a.GetOperation() != admission.Create {
		return nil
	}
	csr, ok := a.GetObject().(*certificatesv1.CertificateSigningRequest)
	if !ok {
		return forbidden(a, "unexpected type %T", a.GetObject())
	}
	if csr.Spec.SignerName != kubeletServingSigner && csr.Spec.SignerName != kubeletClientSigner {
		return nil
	}
	req, err := certificates.ParseCSR(csr.Spec.Request)
	if err != nil {
		return forbidden(a, "unable to parse csr: %w", err)
	}
	if req.Subject.CommonName != "system:node:"+node {
		return forbidden(a, "can only create a node CSR with CN=system:node:%s", node)
	}
	return nil
}
