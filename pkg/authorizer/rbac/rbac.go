// Package rbac authorizes requests by the RBAC objects of
// rbac.authorization.k8s.io/v1, with upstream's semantics
// (plugin/pkg/auth/authorizer/rbac): a request is allowed when a rule of a
// Role or ClusterRole bound to the user, one of their groups or their
// ServiceAccount (by a ClusterRoleBinding, or a RoleBinding in the request's
// namespace) covers it; otherwise the authorizer has no opinion. It reads the
// objects through informers, and finds a user's bindings through an index
// of their subjects (upstream walks every binding on every request).
package rbac

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericrequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/informers"
	rbaclisters "k8s.io/client-go/listers/rbac/v1"
	"k8s.io/client-go/tools/cache"
	rbachelpers "k8s.io/component-helpers/auth/rbac/validation"
	"k8s.io/klog/v2"
)

// Authorizer is the RBAC authorizer and rule resolver.
type Authorizer struct {
	Resolver *RuleResolver
}

var (
	_ authorizer.Authorizer   = &Authorizer{}
	_ authorizer.RuleResolver = &Authorizer{}
)

// New returns an authorizer reading Roles, RoleBindings, ClusterRoles and
// ClusterRoleBindings through factory's informers (which the caller starts)
// and the functions that tell whether they have synced.
func New(factory informers.SharedInformerFactory) (*Authorizer, []cache.InformerSynced) {
	rbac := factory.Rbac().V1()
	index := newBindingIndex()
	r := &RuleResolver{
		Roles:               roleLister{rbac.Roles().Lister()},
		RoleBindings:        roleBindingLister{l: rbac.RoleBindings().Lister(), index: index},
		ClusterRoles:        clusterRoleLister{rbac.ClusterRoles().Lister()},
		ClusterRoleBindings: clusterRoleBindingLister{l: rbac.ClusterRoleBindings().Lister(), index: index},
	}
	synced := []cache.InformerSynced{
		rbac.Roles().Informer().HasSynced, rbac.RoleBindings().Informer().HasSynced,
		rbac.ClusterRoles().Informer().HasSynced, rbac.ClusterRoleBindings().Informer().HasSynced,
	}
	// The index has synced once its handlers have seen the initial lists.
	crbs, err := rbac.ClusterRoleBindings().Informer().AddEventHandler(handlers(func(_, name string, b *rbacv1.ClusterRoleBinding) {
		index.setClusterRoleBinding(name, b)
	}))
	if err == nil {
		synced = append(synced, crbs.HasSynced)
	}
	rbs, err2 := rbac.RoleBindings().Informer().AddEventHandler(handlers(index.setRoleBinding))
	if err2 == nil {
		synced = append(synced, rbs.HasSynced)
	}
	if err != nil || err2 != nil {
		// Only a stopped informer refuses handlers: walk the listers then.
		klog.ErrorS(utilerrors.NewAggregate([]error{err, err2}), "RBAC: cannot index bindings; walking them on each request")
		r.RoleBindings = roleBindingLister{l: rbac.RoleBindings().Lister()}
		r.ClusterRoleBindings = clusterRoleBindingLister{l: rbac.ClusterRoleBindings().Lister()}
	}
	return &Authorizer{Resolver: r}, synced
}

// authorizingVisitor stops at the first rule that allows the request and
// collects the errors met resolving rules.
type authorizingVisitor struct {
	attrs   authorizer.Attributes
	allowed bool
	reason  string
	errors  []error
}

func (v *authorizingVisitor) visit(source fmt.Stringer, rule *rbacv1.PolicyRule, err error) bool {
	if rule != nil && RuleAllows(v.attrs, rule) {
		v.allowed = true
		v.reason = fmt.Sprintf("RBAC: allowed by %s", source.String())
		return false
	}
	if err != nil {
		v.errors = append(v.errors, err)
	}
	return true
}

// Authorize allows what a bound rule covers. A denial carries no reason
// unless rules could not be resolved ("RBAC: <errors>"), so that the
// forbidden response reads as upstream's.
func (a *Authorizer) Authorize(ctx context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	v := &authorizingVisitor{attrs: attrs}
	a.Resolver.VisitRulesFor(ctx, attrs.GetUser(), attrs.GetNamespace(), v.visit)
	if v.allowed {
		return authorizer.DecisionAllow, v.reason, nil
	}
	if klogV := klog.V(5); klogV.Enabled() && attrs.GetUser() != nil {
		klogV.InfoS("RBAC: no rules authorize the request", "user", attrs.GetUser().GetName(), "groups", attrs.GetUser().GetGroups(),
			"verb", attrs.GetVerb(), "resource", attrs.GetResource(), "subresource", attrs.GetSubresource(), "group", attrs.GetAPIGroup(),
			"name", attrs.GetName(), "namespace", attrs.GetNamespace(), "path", attrs.GetPath())
	}
	reason := ""
	if len(v.errors) > 0 {
		reason = fmt.Sprintf("RBAC: %v", utilerrors.NewAggregate(v.errors))
	}
	return authorizer.DecisionNoOpinion, reason, nil
}

// ConditionsAwareAuthorize is not conditions-aware: it converts Authorize's
// decision.
func (a *Authorizer) ConditionsAwareAuthorize(ctx context.Context, attrs authorizer.Attributes) authorizer.ConditionsAwareDecision {
	return authorizer.ConditionsAwareDecisionFromParts(a.Authorize(ctx, attrs))
}

// EvaluateConditions is not supported.
func (*Authorizer) EvaluateConditions(context.Context, authorizer.ConditionsAwareDecision, authorizer.ConditionsData) (authorizer.Decision, string, error) {
	return authorizer.DecisionDeny, "", authorizer.ErrorConditionEvaluationNotSupported
}

// RulesFor lists the rules that apply to u in namespace, split as
// SelfSubjectRulesReviews report them.
func (a *Authorizer) RulesFor(ctx context.Context, u user.Info, namespace string) ([]authorizer.ResourceRuleInfo, []authorizer.NonResourceRuleInfo, bool, error) {
	var resourceRules []authorizer.ResourceRuleInfo
	var nonResourceRules []authorizer.NonResourceRuleInfo
	rules, err := a.Resolver.RulesFor(ctx, u, namespace)
	for _, rule := range rules {
		if len(rule.Resources) > 0 {
			resourceRules = append(resourceRules, &authorizer.DefaultResourceRuleInfo{
				Verbs: rule.Verbs, APIGroups: rule.APIGroups, Resources: rule.Resources, ResourceNames: rule.ResourceNames,
			})
		}
		if len(rule.NonResourceURLs) > 0 {
			nonResourceRules = append(nonResourceRules, &authorizer.DefaultNonResourceRuleInfo{
				Verbs: rule.Verbs, NonResourceURLs: rule.NonResourceURLs,
			})
		}
	}
	return resourceRules, nonResourceRules, false, err
}

// RulesAllow reports whether one of rules allows the request.
func RulesAllow(attrs authorizer.Attributes, rules ...rbacv1.PolicyRule) bool {
	for i := range rules {
		if RuleAllows(attrs, &rules[i]) {
			return true
		}
	}
	return false
}

// RuleAllows reports whether rule allows the request: for resources, verb,
// API group, resource (with subresource as "pods/log", or "*/log") and name;
// for other paths, verb and URL (a trailing "*" matches a prefix).
func RuleAllows(attrs authorizer.Attributes, rule *rbacv1.PolicyRule) bool {
	if attrs.IsResourceRequest() {
		combined := attrs.GetResource()
		if sub := attrs.GetSubresource(); sub != "" {
			combined += "/" + sub
		}
		return verbMatches(rule, attrs.GetVerb()) &&
			apiGroupMatches(rule, attrs.GetAPIGroup()) &&
			resourceMatches(rule, combined, attrs.GetSubresource()) &&
			resourceNameMatches(rule, attrs.GetName())
	}
	return verbMatches(rule, attrs.GetVerb()) && nonResourceURLMatches(rule, attrs.GetPath())
}

func verbMatches(rule *rbacv1.PolicyRule, verb string) bool {
	for _, v := range rule.Verbs {
		if v == rbacv1.VerbAll || v == verb {
			return true
		}
	}
	return false
}

func apiGroupMatches(rule *rbacv1.PolicyRule, group string) bool {
	for _, g := range rule.APIGroups {
		if g == rbacv1.APIGroupAll || g == group {
			return true
		}
	}
	return false
}

func resourceMatches(rule *rbacv1.PolicyRule, combined, subresource string) bool {
	for _, r := range rule.Resources {
		if r == rbacv1.ResourceAll || r == combined {
			return true
		}
		if subresource != "" && len(r) == len(subresource)+2 && strings.HasPrefix(r, "*/") && strings.HasSuffix(r, subresource) {
			return true
		}
	}
	return false
}

func resourceNameMatches(rule *rbacv1.PolicyRule, name string) bool {
	if len(rule.ResourceNames) == 0 {
		return true
	}
	for _, n := range rule.ResourceNames {
		if n == name {
			return true
		}
	}
	return false
}

func nonResourceURLMatches(rule *rbacv1.PolicyRule, path string) bool {
	for _, u := range rule.NonResourceURLs {
		if u == rbacv1.NonResourceAll || u == path {
			return true
		}
		if strings.HasSuffix(u, "*") && strings.HasPrefix(path, strings.TrimRight(u, "*")) {
			return true
		}
	}
	return false
}

// RuleResolver finds the rules bound to a user, as upstream's
// DefaultRuleResolver (pkg/registry/rbac/validation). The authorizer reads
// through informers; the escalation checks read the storage itself.
type RuleResolver struct {
	Roles               RoleGetter
	RoleBindings        RoleBindingLister
	ClusterRoles        ClusterRoleGetter
	ClusterRoleBindings ClusterRoleBindingLister
}

// RoleGetter gets a Role.
type RoleGetter interface {
	GetRole(ctx context.Context, namespace, name string) (*rbacv1.Role, error)
}

// RoleBindingLister lists the RoleBindings of a namespace.
type RoleBindingLister interface {
	ListRoleBindings(ctx context.Context, namespace string) ([]*rbacv1.RoleBinding, error)
}

// ClusterRoleGetter gets a ClusterRole.
type ClusterRoleGetter interface {
	GetClusterRole(ctx context.Context, name string) (*rbacv1.ClusterRole, error)
}

// ClusterRoleBindingLister lists the ClusterRoleBindings.
type ClusterRoleBindingLister interface {
	ListClusterRoleBindings(ctx context.Context) ([]*rbacv1.ClusterRoleBinding, error)
}

type roleLister struct{ l rbaclisters.RoleLister }

func (l roleLister) GetRole(_ context.Context, namespace, name string) (*rbacv1.Role, error) {
	return l.l.Roles(namespace).Get(name)
}

type roleBindingLister struct {
	l     rbaclisters.RoleBindingLister
	index *bindingIndex // optional
}

func (l roleBindingLister) ListRoleBindings(_ context.Context, namespace string) ([]*rbacv1.RoleBinding, error) {
	return l.l.RoleBindings(namespace).List(labels.Everything())
}

func (l roleBindingLister) RoleBindingsFor(ctx context.Context, u user.Info, namespace string) ([]*rbacv1.RoleBinding, error) {
	if l.index == nil {
		return matching(l.ListRoleBindings(ctx, namespace))(u, namespace)
	}
	return l.index.RoleBindingsFor(ctx, u, namespace)
}

type clusterRoleLister struct{ l rbaclisters.ClusterRoleLister }

func (l clusterRoleLister) GetClusterRole(_ context.Context, name string) (*rbacv1.ClusterRole, error) {
	return l.l.Get(name)
}

type clusterRoleBindingLister struct {
	l     rbaclisters.ClusterRoleBindingLister
	index *bindingIndex // optional
}

func (l clusterRoleBindingLister) ListClusterRoleBindings(context.Context) ([]*rbacv1.ClusterRoleBinding, error) {
	return l.l.List(labels.Everything())
}

func (l clusterRoleBindingLister) ClusterRoleBindingsFor(ctx context.Context, u user.Info) ([]*rbacv1.ClusterRoleBinding, error) {
	if l.index == nil {
		return matching(l.ListClusterRoleBindings(ctx))(u, "")
	}
	return l.index.ClusterRoleBindingsFor(ctx, u)
}

// clusterRoleBindingsForUser is a ClusterRoleBindingLister that can find
// the bindings that may apply to a user without listing all (by name).
type clusterRoleBindingsForUser interface {
	ClusterRoleBindingsFor(ctx context.Context, u user.Info) ([]*rbacv1.ClusterRoleBinding, error)
}

// roleBindingsForUser is clusterRoleBindingsForUser for RoleBindings.
type roleBindingsForUser interface {
	RoleBindingsFor(ctx context.Context, u user.Info, namespace string) ([]*rbacv1.RoleBinding, error)
}

// binding is what matching needs of either kind of binding.
type binding interface {
	*rbacv1.ClusterRoleBinding | *rbacv1.RoleBinding
	GetName() string
}

func subjectsOf[B binding](b B) []rbacv1.Subject {
	switch b := any(b).(type) {
	case *rbacv1.ClusterRoleBinding:
		return b.Subjects
	case *rbacv1.RoleBinding:
		return b.Subjects
	}
	return nil
}

// matching keeps the listed bindings that apply to a user, by name: only
// those are sorted.
func matching[B binding](bindings []B, err error) func(u user.Info, namespace string) ([]B, error) {
	return func(u user.Info, namespace string) ([]B, error) {
		if err != nil {
			return nil, err
		}
		var out []B
		for _, b := range bindings {
			if _, ok := appliesTo(u, subjectsOf(b), namespace); ok {
				out = append(out, b)
			}
		}
		sortByName(out, func(b B) string { return b.GetName() })
		return out, nil
	}
}

func (r *RuleResolver) clusterRoleBindingsFor(ctx context.Context, u user.Info) ([]*rbacv1.ClusterRoleBinding, error) {
	if l, ok := r.ClusterRoleBindings.(clusterRoleBindingsForUser); ok {
		return l.ClusterRoleBindingsFor(ctx, u)
	}
	return matching(r.ClusterRoleBindings.ListClusterRoleBindings(ctx))(u, "")
}

func (r *RuleResolver) roleBindingsFor(ctx context.Context, u user.Info, namespace string) ([]*rbacv1.RoleBinding, error) {
	if l, ok := r.RoleBindings.(roleBindingsForUser); ok {
		return l.RoleBindingsFor(ctx, u, namespace)
	}
	return matching(r.RoleBindings.ListRoleBindings(ctx, namespace))(u, namespace)
}

// RulesFor returns every rule that applies to u in namespace (cluster-wide
// ones only when namespace is empty), and the errors met resolving them;
// the rules found are valid even then.
func (r *RuleResolver) RulesFor(ctx context.Context, u user.Info, namespace string) ([]rbacv1.PolicyRule, error) {
	var rules []rbacv1.PolicyRule
	var errs []error
	r.VisitRulesFor(ctx, u, namespace, func(_ fmt.Stringer, rule *rbacv1.PolicyRule, err error) bool {
		if rule != nil {
			rules = append(rules, *rule)
		}
		if err != nil {
			errs = append(errs, err)
		}
		return true
	})
	return rules, utilerrors.NewAggregate(errs)
}

// VisitRulesFor calls visitor with each rule that applies to u in namespace
// (first those of ClusterRoleBindings, then those of the namespace's
// RoleBindings) and each error met, until visitor returns false.
func (r *RuleResolver) VisitRulesFor(ctx context.Context, u user.Info, namespace string, visitor func(source fmt.Stringer, rule *rbacv1.PolicyRule, err error) bool) {
	if u == nil {
		return
	}
	if bindings, err := r.clusterRoleBindingsFor(ctx, u); err != nil {
		if !visitor(nil, nil, err) {
			return
		}
	} else {
		for _, b := range bindings {
			i, ok := appliesTo(u, b.Subjects, "")
			if !ok {
				continue
			}
			rules, err := r.GetRoleReferenceRules(ctx, b.RoleRef, "")
			if err != nil {
				if !visitor(nil, nil, err) {
					return
				}
				continue
			}
			source := clusterRoleBindingSource{binding: b, subject: &b.Subjects[i]}
			for j := range rules {
				if !visitor(source, &rules[j], nil) {
					return
				}
			}
		}
	}
	if namespace == "" {
		return
	}
	bindings, err := r.roleBindingsFor(ctx, u, namespace)
	if err != nil {
		visitor(nil, nil, err)
		return
	}
	for _, b := range bindings {
		i, ok := appliesTo(u, b.Subjects, namespace)
		if !ok {
			continue
		}
		rules, err := r.GetRoleReferenceRules(ctx, b.RoleRef, namespace)
		if err != nil {
			if !visitor(nil, nil, err) {
				return
			}
			continue
		}
		source := roleBindingSource{binding: b, subject: &b.Subjects[i]}
		for j := range rules {
			if !visitor(source, &rules[j], nil) {
				return
			}
		}
	}
}

// sortByName orders bindings (in the informer's map order) by name, so that
// rules come in a stable order.
func sortByName[T any](items []T, name func(T) string) {
	sort.Slice(items, func(i, j int) bool { return name(items[i]) < name(items[j]) })
}

// GetRoleReferenceRules returns the rules of the Role (in bindingNamespace)
// or ClusterRole that ref names.
func (r *RuleResolver) GetRoleReferenceRules(ctx context.Context, ref rbacv1.RoleRef, bindingNamespace string) ([]rbacv1.PolicyRule, error) {
	switch ref.Kind {
	case "Role":
		role, err := r.Roles.GetRole(ctx, bindingNamespace, ref.Name)
		if err != nil {
			return nil, err
		}
		return role.Rules, nil
	case "ClusterRole":
		role, err := r.ClusterRoles.GetClusterRole(ctx, ref.Name)
		if err != nil {
			return nil, err
		}
		return role.Rules, nil
	default:
		return nil, fmt.Errorf("unsupported role reference kind: %q", ref.Kind)
	}
}

func appliesTo(u user.Info, subjects []rbacv1.Subject, namespace string) (int, bool) {
	for i, s := range subjects {
		if appliesToUser(u, s, namespace) {
			return i, true
		}
	}
	return 0, false
}

func appliesToUser(u user.Info, s rbacv1.Subject, namespace string) bool {
	switch s.Kind {
	case rbacv1.UserKind:
		return u.GetName() == s.Name
	case rbacv1.GroupKind:
		for _, g := range u.GetGroups() {
			if g == s.Name {
				return true
			}
		}
		return false
	case rbacv1.ServiceAccountKind:
		// A RoleBinding's ServiceAccount subjects default to its namespace.
		ns := namespace
		if s.Namespace != "" {
			ns = s.Namespace
		}
		return ns != "" && serviceaccount.MatchesUsername(ns, s.Name, u.GetName())
	default:
		return false
	}
}

func describeSubject(s *rbacv1.Subject, bindingNamespace string) string {
	if s.Kind == rbacv1.ServiceAccountKind {
		ns := s.Namespace
		if ns == "" {
			ns = bindingNamespace
		}
		return fmt.Sprintf("%s %q", s.Kind, s.Name+"/"+ns)
	}
	return fmt.Sprintf("%s %q", s.Kind, s.Name)
}

type clusterRoleBindingSource struct {
	binding *rbacv1.ClusterRoleBinding
	subject *rbacv1.Subject
}

func (d clusterRoleBindingSource) String() string {
	return fmt.Sprintf("ClusterRoleBinding %q of %s %q to %s", d.binding.Name, d.binding.RoleRef.Kind, d.binding.RoleRef.Name, describeSubject(d.subject, ""))
}

type roleBindingSource struct {
	binding *rbacv1.RoleBinding
	subject *rbacv1.Subject
}

func (d roleBindingSource) String() string {
	return fmt.Sprintf("RoleBinding %q of %s %q to %s", d.binding.Name+"/"+d.binding.Namespace, d.binding.RoleRef.Kind, d.binding.RoleRef.Name, describeSubject(d.subject, d.binding.Namespace))
}

// ConfirmNoEscalation returns an error, with upstream's text, unless the
// requesting user (in ctx) already holds every one of rules in the request's
// namespace.
func ConfirmNoEscalation(ctx context.Context, resolver *RuleResolver, rules []rbacv1.PolicyRule) error {
	u, ok := genericrequest.UserFrom(ctx)
	if !ok {
		return fmt.Errorf("no user on context")
	}
	namespace, _ := genericrequest.NamespaceFrom(ctx)
	var resolutionErrors []error
	owner, err := resolver.RulesFor(ctx, u, namespace)
	if err != nil {
		klog.V(1).InfoS("Non-fatal error getting local rules", "user", u.GetName(), "err", err)
		resolutionErrors = append(resolutionErrors, err)
	}
	covered, missing := rbachelpers.Covers(owner, rules)
	if covered {
		return nil
	}
	descriptions := sets.New[string]()
	for _, m := range CompactRules(missing) {
		descriptions.Insert(CompactString(m))
	}
	msg := fmt.Sprintf("user %q (groups=%q) is attempting to grant RBAC permissions not currently held:\n%s", u.GetName(), u.GetGroups(), strings.Join(sets.List(descriptions), "\n"))
	if len(resolutionErrors) > 0 {
		msg += fmt.Sprintf("; resolution errors: %v", resolutionErrors)
	}
	return errors.New(msg)
}

// CompactRules merges the verbs of rules naming one group and one resource
// (and at most one name), as upstream does for escalation messages.
func CompactRules(rules []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	type key struct {
		group, resource string
		hasName         bool
		name            string
	}
	out := make([]rbacv1.PolicyRule, 0, len(rules))
	simple := map[key]*rbacv1.PolicyRule{}
	for _, rule := range rules {
		if len(rule.ResourceNames) > 1 || len(rule.NonResourceURLs) > 0 || len(rule.APIGroups) != 1 || len(rule.Resources) != 1 {
			out = append(out, rule)
			continue
		}
		k := key{group: rule.APIGroups[0], resource: rule.Resources[0]}
		if len(rule.ResourceNames) == 1 {
			k.hasName, k.name = true, rule.ResourceNames[0]
		}
		if existing, ok := simple[k]; ok {
			existing.Verbs = append(existing.Verbs, rule.Verbs...)
		} else {
			simple[k] = rule.DeepCopy()
		}
	}
	for _, r := range simple {
		out = append(out, *r)
	}
	return out
}

// CompactString is upstream's short form of a rule in escalation messages:
// {APIGroups:["apps"], Resources:["deployments"], Verbs:["get"]}.
func CompactString(r rbacv1.PolicyRule) string {
	var parts []string
	var args []any
	add := func(name string, v []string) {
		if len(v) > 0 {
			parts = append(parts, name+":%q")
			args = append(args, v)
		}
	}
	add("APIGroups", r.APIGroups)
	add("Resources", r.Resources)
	add("NonResourceURLs", r.NonResourceURLs)
	add("ResourceNames", r.ResourceNames)
	add("Verbs", r.Verbs)
	return fmt.Sprintf("{"+strings.Join(parts, ", ")+"}", args...)
}
