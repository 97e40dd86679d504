package rbac

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericrequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"

	rbacauthz "github.com/skiff-dev/skiff/pkg/authorizer/rbac"
	"github.com/skiff-dev/skiff/pkg/registry/store"
)

// Storage returns the storage builder of the group whose writes are checked
// against escalation: creating or updating a Role or ClusterRole needs every
// rule it grants (or the "escalate" verb on it), a binding the rules of its
// role (or "bind" on the role), as upstream. Members of system:masters skip
// the checks. authz decides "escalate" and "bind"; the requester's rules are
// read from the storage itself (as upstream), so a role or binding just
// written counts at once.
func Storage(authz authorizer.Authorizer) func(generic.RESTOptionsGetter) (map[string]rest.Storage, error) {
	return func(optsGetter generic.RESTOptionsGetter) (map[string]rest.Storage, error) {
		m, err := store.Build(Resources, optsGetter)
		if err != nil {
			return nil, err
		}
		roles, clusterRoles := m["roles"].(*store.REST), m["clusterroles"].(*store.REST)
		roleBindings, clusterRoleBindings := m["rolebindings"].(*store.REST), m["clusterrolebindings"].(*store.REST)
		c := &checker{authz: authz, resolver: &rbacauthz.RuleResolver{
			Roles: storageReader{roles}, RoleBindings: storageReader{roleBindings},
			ClusterRoles: storageReader{clusterRoles}, ClusterRoleBindings: storageReader{clusterRoleBindings},
		}}
		m["roles"] = &guarded{REST: roles, check: c.role}
		m["clusterroles"] = &guarded{REST: clusterRoles, check: c.clusterRole}
		m["rolebindings"] = &guarded{REST: roleBindings, check: c.roleBinding}
		m["clusterrolebindings"] = &guarded{REST: clusterRoleBindings, check: c.clusterRoleBinding}
		return m, nil
	}
}

// storageReader reads RBAC objects from a resource's store for the rule
// resolver.
type storageReader struct{ r *store.REST }

func (s storageReader) get(ctx context.Context, namespace, name string) (runtime.Object, error) {
	return s.r.Get(genericrequest.WithNamespace(ctx, namespace), name, &metav1.GetOptions{})
}

func (s storageReader) list(ctx context.Context, namespace string) (runtime.Object, error) {
	return s.r.List(genericrequest.WithNamespace(ctx, namespace), &metainternalversion.ListOptions{})
}

func (s storageReader) GetRole(ctx context.Context, namespace, name string) (*rbacv1.Role, error) {
	obj, err := s.get(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return obj.(*rbacv1.Role), nil
}

func (s storageReader) GetClusterRole(ctx context.Context, name string) (*rbacv1.ClusterRole, error) {
	obj, err := s.get(ctx, metav1.NamespaceNone, name)
	if err != nil {
		return nil, err
	}
	return obj.(*rbacv1.ClusterRole), nil
}

func (s storageReader) ListRoleBindings(ctx context.Context, namespace string) ([]*rbacv1.RoleBinding, error) {
	obj, err := s.list(ctx, namespace)
	if err != nil {
		return nil, err
	}
	items := obj.(*rbacv1.RoleBindingList).Items
	out := make([]*rbacv1.RoleBinding, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out, nil
}

func (s storageReader) ListClusterRoleBindings(ctx context.Context) ([]*rbacv1.ClusterRoleBinding, error) {
	obj, err := s.list(ctx, metav1.NamespaceNone)
	if err != nil {
		return nil, err
	}
	items := obj.(*rbacv1.ClusterRoleBindingList).Items
	out := make([]*rbacv1.ClusterRoleBinding, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out, nil
}

// guarded is a resource's storage whose Create and Update first pass check
// (old is nil on create).
type guarded struct {
	*store.REST
	check func(ctx context.Context, obj, old runtime.Object) error
}

func (g *guarded) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, options *metav1.CreateOptions) (runtime.Object, error) {
	if !escalationAllowed(ctx) {
		if err := g.check(ctx, obj, nil); err != nil {
			return nil, err
		}
	}
	return g.REST.Create(ctx, obj, createValidation, options)
}

func (g *guarded) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, forceAllowCreate bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	if !escalationAllowed(ctx) {
		objInfo = rest.WrapUpdatedObjectInfo(objInfo, func(ctx context.Context, obj, old runtime.Object) (runtime.Object, error) {
			if old == nil || reflect.ValueOf(old).IsNil() {
				old = nil
			} else if onlyMutatingGCFields(obj, old) {
				return obj, nil
			}
			if err := g.check(ctx, obj, old); err != nil {
				return nil, err
			}
			return obj, nil
		})
	}
	return g.REST.Update(ctx, name, objInfo, createValidation, updateValidation, forceAllowCreate, options)
}

// escalationAllowed: system:masters may grant anything.
func escalationAllowed(ctx context.Context) bool {
	u, ok := genericrequest.UserFrom(ctx)
	return ok && slices.Contains(u.GetGroups(), user.SystemPrivilegedGroup)
}

// onlyMutatingGCFields reports whether obj differs from old only in owner
// references, finalizers and managed fields, which the garbage collector
// may change without holding the object's rules.
func onlyMutatingGCFields(obj, old runtime.Object) bool {
	copied := obj.DeepCopyObject()
	cm, err := meta.Accessor(copied)
	if err != nil {
		return false
	}
	om, err := meta.Accessor(old)
	if err != nil {
		return false
	}
	cm.SetOwnerReferences(om.GetOwnerReferences())
	cm.SetFinalizers(om.GetFinalizers())
	cm.SetSelfLink(om.GetSelfLink())
	cm.SetManagedFields(om.GetManagedFields())
	return equality.Semantic.DeepEqual(copied, old)
}

type checker struct {
	authz    authorizer.Authorizer
	resolver *rbacauthz.RuleResolver
}

// fullAuthority is cluster-admin's rules, needed to set an aggregationRule.
var fullAuthority = []rbacv1.PolicyRule{
	{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}},
	{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}},
}

func (c *checker) role(ctx context.Context, obj, _ runtime.Object) error {
	if c.escalateAuthorized(ctx) {
		return nil
	}
	role := obj.(*rbacv1.Role)
	if err := rbacauthz.ConfirmNoEscalation(ctx, c.resolver, role.Rules); err != nil {
		return apierrors.NewForbidden(gr("roles"), role.Name, err)
	}
	return nil
}

func (c *checker) clusterRole(ctx context.Context, obj, old runtime.Object) error {
	if c.escalateAuthorized(ctx) {
		return nil
	}
	role := obj.(*rbacv1.ClusterRole)
	if err := rbacauthz.ConfirmNoEscalation(ctx, c.resolver, role.Rules); err != nil {
		return apierrors.NewForbidden(gr("clusterroles"), role.Name, err)
	}
	aggregating := hasAggregationRule(role)
	if old != nil {
		aggregating = aggregating || hasAggregationRule(old.(*rbacv1.ClusterRole))
	}
	if aggregating {
		if err := rbacauthz.ConfirmNoEscalation(ctx, c.resolver, fullAuthority); err != nil {
			return apierrors.NewForbidden(gr("clusterroles"), role.Name, errors.New("must have cluster-admin privileges to use the aggregationRule"))
		}
	}
	return nil
}

func hasAggregationRule(r *rbacv1.ClusterRole) bool {
	return r.AggregationRule != nil && len(r.AggregationRule.ClusterRoleSelectors) > 0
}

func (c *checker) roleBinding(ctx context.Context, obj, _ runtime.Object) error {
	namespace, ok := genericrequest.NamespaceFrom(ctx)
	if !ok || namespace == "" {
		return apierrors.NewBadRequest("namespace is required")
	}
	b := obj.(*rbacv1.RoleBinding)
	return c.binding(ctx, b.RoleRef, namespace, "rolebindings", b.Name)
}

func (c *checker) clusterRoleBinding(ctx context.Context, obj, _ runtime.Object) error {
	b := obj.(*rbacv1.ClusterRoleBinding)
	return c.binding(ctx, b.RoleRef, metav1.NamespaceAll, "clusterrolebindings", b.Name)
}

// binding allows binding ref in namespace to whoever may "bind" the role or
// holds all its rules.
func (c *checker) binding(ctx context.Context, ref rbacv1.RoleRef, namespace string, resource, name string) error {
	if c.bindAuthorized(ctx, ref, namespace) {
		return nil
	}
	rules, err := c.resolver.GetRoleReferenceRules(ctx, ref, namespace)
	if err != nil {
		return err
	}
	if err := rbacauthz.ConfirmNoEscalation(ctx, c.resolver, rules); err != nil {
		return apierrors.NewForbidden(gr(resource), name, err)
	}
	return nil
}

// escalateAuthorized: may the requester "escalate" the role being written?
func (c *checker) escalateAuthorized(ctx context.Context) bool {
	u, ok := genericrequest.UserFrom(ctx)
	if !ok || c.authz == nil {
		return false
	}
	info, ok := genericrequest.RequestInfoFrom(ctx)
	if !ok || !info.IsResourceRequest || info.APIGroup != rbacv1.GroupName || (info.Resource != "roles" && info.Resource != "clusterroles") {
		return false
	}
	attrs := authorizer.AttributesRecord{User: u, Verb: "escalate", APIGroup: info.APIGroup, APIVersion: "*",
		Resource: info.Resource, Name: info.Name, Namespace: info.Namespace, ResourceRequest: true}
	decision, _, err := c.authz.Authorize(ctx, attrs)
	if err != nil {
		utilruntime.HandleError(fmt.Errorf("error authorizing user %q to escalate %s %q in namespace %q: %v", u.GetName(), info.Resource, info.Name, info.Namespace, err))
	}
	return decision == authorizer.DecisionAllow
}

// bindAuthorized: may the requester "bind" the role ref names?
func (c *checker) bindAuthorized(ctx context.Context, ref rbacv1.RoleRef, namespace string) bool {
	u, ok := genericrequest.UserFrom(ctx)
	if !ok || c.authz == nil {
		return false
	}
	attrs := authorizer.AttributesRecord{User: u, Verb: "bind", Namespace: namespace, ResourceRequest: true,
		APIGroup: ref.APIGroup, APIVersion: "*", Name: ref.Name}
	switch ref.Kind {
	case "ClusterRole":
		attrs.Resource = "clusterroles"
	case "Role":
		attrs.Resource = "roles"
	default:
		return false
	}
	decision, _, err := c.authz.Authorize(ctx, attrs)
	if err != nil {
		utilruntime.HandleError(fmt.Errorf("error authorizing user %q to bind %v in namespace %q: %v", u.GetName(), ref, namespace, err))
	}
	return decision == authorizer.DecisionAllow
}
