package node

import (
	"context"
	"errors"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/authorizer/rbac"
)

// NodeLeaseNamespace holds the nodes' heartbeat Leases.
const NodeLeaseNamespace = "kube-node-lease"

// Authorizer is upstream's Node authorizer (authorization mode Node). It
// decides only for nodes: what a request names is allowed when the Graph
// relates it to the requesting node, other resources when the static
// rules (upstream's system:node rules) allow them. Everything else gets
// no opinion, with upstream's reason, for the next authorizer.
type Authorizer struct {
	graph *Graph
	rules []rbacv1.PolicyRule
}

var (
	_ authorizer.Authorizer   = &Authorizer{}
	_ authorizer.RuleResolver = &Authorizer{}
)

// NewAuthorizer decides with graph and, for the resources the graph does
// not subdivide, rules.
func NewAuthorizer(graph *Graph, rules []rbacv1.PolicyRule) *Authorizer {
	return &Authorizer{graph: graph, rules: rules}
}

// New builds the authorizer on a Graph that factory's informers (started
// by the caller) keep up to date.
func New(factory informers.SharedInformerFactory, rules []rbacv1.PolicyRule) (*Authorizer, []cache.InformerSynced, error) {
	g := NewGraph()
	synced, err := Populate(g, factory)
	if err != nil {
		return nil, nil, fmt.Errorf("node authorizer: %w", err)
	}
	return NewAuthorizer(g, rules), synced, nil
}

var (
	secrets           = schema.GroupResource{Resource: "secrets"}
	configMaps        = schema.GroupResource{Resource: "configmaps"}
	pods              = schema.GroupResource{Resource: "pods"}
	nodes             = schema.GroupResource{Resource: "nodes"}
	claims            = schema.GroupResource{Resource: "persistentvolumeclaims"}
	volumes           = schema.GroupResource{Resource: "persistentvolumes"}
	serviceAccounts   = schema.GroupResource{Resource: "serviceaccounts"}
	resourceClaims    = schema.GroupResource{Group: "resource.k8s.io", Resource: "resourceclaims"}
	resourceSlices    = schema.GroupResource{Group: "resource.k8s.io", Resource: "resourceslices"}
	attachments       = schema.GroupResource{Group: "storage.k8s.io", Resource: "volumeattachments"}
	csiNodes          = schema.GroupResource{Group: "storage.k8s.io", Resource: "csinodes"}
	leases            = schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}
	podCertificateReq = schema.GroupResource{Group: "certificates.k8s.io", Resource: "podcertificaterequests"}
)

// kindNames name the kinds in the log lines of denials.
var kindNames = map[Kind]string{
	Pod: "pod", Secret: "secret", ConfigMap: "configmap", PersistentVolumeClaim: "pvc", PersistentVolume: "pv",
	ServiceAccount: "serviceAccount", ResourceClaim: "resourceclaim", VolumeAttachment: "volumeattachment", ResourceSlice: "resourceslice",
}

// RulesFor answers that a node's rules cannot be listed (they depend on
// the objects named), as upstream; other users have none here.
func (a *Authorizer) RulesFor(_ context.Context, u user.Info, _ string) ([]authorizer.ResourceRuleInfo, []authorizer.NonResourceRuleInfo, bool, error) {
	if _, isNode := Identity(u); isNode {
		return nil, nil, true, errors.New("node authorizer does not support user rule resolution")
	}
	return nil, nil, false, nil
}

// ConditionsAwareAuthorize is not conditions-aware: it converts
// Authorize's decision.
func (a *Authorizer) ConditionsAwareAuthorize(ctx context.Context, attrs authorizer.Attributes) authorizer.ConditionsAwareDecision {
	return authorizer.ConditionsAwareDecisionFromParts(a.Authorize(ctx, attrs))
}

// EvaluateConditions is not supported.
func (*Authorizer) EvaluateConditions(context.Context, authorizer.ConditionsAwareDecision, authorizer.ConditionsData) (authorizer.Decision, string, error) {
	return authorizer.DecisionDeny, "", authorizer.ErrorConditionEvaluationNotSupported
}

// Authorize decides the requests of nodes.
func (a *Authorizer) Authorize(_ context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	node, isNode := Identity(attrs.GetUser())
	if !isNode {
		return authorizer.DecisionNoOpinion, "", nil
	}
	if node == "" {
		klog.V(2).InfoS("Node authorizer: unknown node", "user", attrs.GetUser().GetName())
		return authorizer.DecisionNoOpinion, fmt.Sprintf("unknown node for user %q", attrs.GetUser().GetName()), nil
	}
	d, reason := a.decide(node, attrs)
	if d != authorizer.DecisionAllow {
		klog.V(2).InfoS("Node authorizer: no opinion", "node", node, "verb", attrs.GetVerb(), "resource", attrs.GetResource(),
			"subresource", attrs.GetSubresource(), "namespace", attrs.GetNamespace(), "name", attrs.GetName(), "reason", reason)
	}
	return d, reason, nil
}

const (
	allow     = authorizer.DecisionAllow
	noOpinion = authorizer.DecisionNoOpinion
)

func (a *Authorizer) decide(node string, attrs authorizer.Attributes) (authorizer.Decision, string) {
	if attrs.IsResourceRequest() {
		switch (schema.GroupResource{Group: attrs.GetAPIGroup(), Resource: attrs.GetResource()}) {
		case secrets:
			return a.read(node, Secret, attrs)
		case configMaps:
			return a.read(node, ConfigMap, attrs)
		case claims:
			if attrs.GetSubresource() == "status" {
				return a.statusUpdate(node, PersistentVolumeClaim, attrs)
			}
			return a.get(node, PersistentVolumeClaim, attrs)
		case volumes:
			return a.get(node, PersistentVolume, attrs)
		case resourceClaims:
			return a.get(node, ResourceClaim, attrs)
		case attachments:
			return a.get(node, VolumeAttachment, attrs)
		case serviceAccounts:
			return a.serviceAccount(node, attrs)
		case leases:
			return lease(node, attrs)
		case csiNodes:
			return csiNode(node, attrs)
		case resourceSlices:
			return a.resourceSlice(node, attrs)
		case nodes:
			return nodeObject(node, attrs)
		case pods:
			return a.pod(node, attrs)
		case podCertificateReq:
			// Not served by skiff: as upstream with the feature off.
			return noOpinion, ""
		}
	}
	if rbac.RulesAllow(attrs, a.rules...) {
		return allow, ""
	}
	return noOpinion, ""
}

// related allows a named object the graph relates to node.
func (a *Authorizer) related(node string, kind Kind, attrs authorizer.Attributes) (authorizer.Decision, string) {
	if attrs.GetName() == "" {
		return noOpinion, "No Object name found"
	}
	if !a.graph.Related(node, kind, attrs.GetNamespace(), attrs.GetName()) {
		klog.V(2).InfoS("Node authorizer: no relationship in the graph", "node", node, "kind", kindNames[kind],
			"namespace", attrs.GetNamespace(), "name", attrs.GetName())
		return noOpinion, fmt.Sprintf("no relationship found between node '%s' and this object", node)
	}
	return allow, ""
}

// read allows get, list and watch of one related namespaced object.
func (a *Authorizer) read(node string, kind Kind, attrs authorizer.Attributes) (authorizer.Decision, string) {
	switch attrs.GetVerb() {
	case "get", "list", "watch":
	default:
		return noOpinion, "can only read resources of this type"
	}
	if attrs.GetSubresource() != "" {
		return noOpinion, "cannot read subresource"
	}
	if attrs.GetNamespace() == "" {
		return noOpinion, "can only read namespaced object of this type"
	}
	return a.related(node, kind, attrs)
}

// get allows get of one related object.
func (a *Authorizer) get(node string, kind Kind, attrs authorizer.Attributes) (authorizer.Decision, string) {
	if attrs.GetVerb() != "get" {
		return noOpinion, "can only get individual resources of this type"
	}
	if attrs.GetSubresource() != "" {
		return noOpinion, "cannot get subresource"
	}
	return a.related(node, kind, attrs)
}

// statusUpdate allows update and patch of a related object's status.
func (a *Authorizer) statusUpdate(node string, kind Kind, attrs authorizer.Attributes) (authorizer.Decision, string) {
	switch attrs.GetVerb() {
	case "update", "patch":
	default:
		return noOpinion, "can only get/update/patch this type"
	}
	if attrs.GetSubresource() != "status" {
		return noOpinion, "can only update status subresource"
	}
	return a.related(node, kind, attrs)
}

// serviceAccount allows reading the service accounts of the node's pods
// (for the credential providers, on by default in v1.37) and creating
// their tokens.
func (a *Authorizer) serviceAccount(node string, attrs authorizer.Attributes) (authorizer.Decision, string) {
	if attrs.GetVerb() == "get" && attrs.GetSubresource() == "" {
		return a.read(node, ServiceAccount, attrs)
	}
	if attrs.GetVerb() != "create" || attrs.GetName() == "" {
		return noOpinion, "can only create tokens for individual service accounts"
	}
	if attrs.GetSubresource() != "token" {
		return noOpinion, "can only create token subresource of serviceaccount"
	}
	return a.related(node, ServiceAccount, attrs)
}

// lease allows the node's own Lease in kube-node-lease (NodeRestriction
// checks the name of a created one).
func lease(node string, attrs authorizer.Attributes) (authorizer.Decision, string) {
	switch attrs.GetVerb() {
	case "get", "create", "update", "patch", "delete":
	default:
		return noOpinion, "can only get, create, update, patch, or delete a node lease"
	}
	if attrs.GetNamespace() != NodeLeaseNamespace {
		return noOpinion, fmt.Sprintf("can only access leases in the %q system namespace", NodeLeaseNamespace)
	}
	if attrs.GetVerb() != "create" && attrs.GetName() != node {
		return noOpinion, "can only access node lease with the same name as the requesting node"
	}
	return allow, ""
}

// csiNode allows the node's own CSINode (its status needs the
// CSIVolumeHealth feature, off in v1.37).
func csiNode(node string, attrs authorizer.Attributes) (authorizer.Decision, string) {
	switch attrs.GetSubresource() {
	case "":
		switch attrs.GetVerb() {
		case "get", "create", "update", "patch", "delete":
		default:
			return noOpinion, "can only get, create, update, patch, or delete a CSINode"
		}
	case "status":
		return noOpinion, "CSINode status access requires CSIVolumeHealth feature"
	default:
		return noOpinion, "cannot authorize CSINode subresources"
	}
	if attrs.GetVerb() != "create" && attrs.GetName() != node {
		return noOpinion, "can only access CSINode with the same name as the requesting node"
	}
	return allow, ""
}

// resourceSlice allows the node's own ResourceSlices: created ones are
// checked by NodeRestriction, existing ones by the graph, lists must
// select the node.
func (a *Authorizer) resourceSlice(node string, attrs authorizer.Attributes) (authorizer.Decision, string) {
	if attrs.GetSubresource() != "" {
		return noOpinion, "cannot authorize ResourceSlice subresources"
	}
	switch attrs.GetVerb() {
	case "create":
		return allow, ""
	case "get", "update", "patch", "delete":
		return a.related(node, ResourceSlice, attrs)
	case "watch", "list", "deletecollection":
		if selectsField(attrs, "spec.nodeName", node) {
			return allow, ""
		}
		return noOpinion, "can only list/watch/deletecollection resourceslices with nodeName field selector"
	default:
		return noOpinion, "only the following verbs are allowed for a ResourceSlice: get, watch, list, create, update, patch, delete, deletecollection"
	}
}

// nodeObject allows reading the node's own Node and writing Nodes and
// their status (NodeRestriction limits writes to the node's own).
func nodeObject(node string, attrs authorizer.Attributes) (authorizer.Decision, string) {
	switch attrs.GetSubresource() {
	case "":
		switch attrs.GetVerb() {
		case "create", "update", "patch":
			return allow, ""
		case "get", "list", "watch":
			// By name, not through the graph: a kubelet reads its Node
			// before creating it.
			switch attrs.GetName() {
			case node:
				return allow, ""
			case "":
				return noOpinion, fmt.Sprintf("node '%s' cannot read all nodes, only its own Node object", node)
			default:
				return noOpinion, fmt.Sprintf("node '%s' cannot read '%s', only its own Node object", node, attrs.GetName())
			}
		}
	case "status":
		switch attrs.GetVerb() {
		case "update", "patch":
			return allow, ""
		}
	}
	return noOpinion, ""
}

// pod allows reading the node's pods, creating and deleting (mirror)
// pods, updating pod status and evicting pods (NodeRestriction limits
// those to the node's own).
func (a *Authorizer) pod(node string, attrs authorizer.Attributes) (authorizer.Decision, string) {
	switch attrs.GetSubresource() {
	case "":
		switch attrs.GetVerb() {
		case "get":
			return a.get(node, Pod, attrs)
		case "list", "watch":
			if selectsField(attrs, "spec.nodeName", node) {
				return allow, ""
			}
			if attrs.GetName() != "" {
				return a.related(node, Pod, attrs)
			}
			return noOpinion, "can only list/watch pods with spec.nodeName field selector"
		case "create", "delete":
			return allow, ""
		}
	case "status":
		switch attrs.GetVerb() {
		case "update", "patch":
			return allow, ""
		}
	case "eviction":
		if attrs.GetVerb() == "create" {
			return allow, ""
		}
	}
	return noOpinion, ""
}

// selectsField reports whether the request's field selector requires
// field=value.
func selectsField(attrs authorizer.Attributes, field, value string) bool {
	reqs, _ := attrs.GetFieldSelector()
	for _, r := range reqs {
		if r.Field == field && r.Operator == selection.Equals && r.Value == value {
			return true
		}
	}
	return false
}
