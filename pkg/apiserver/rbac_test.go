package apiserver_test

// RBAC: the authorizer, the bootstrap policy, escalation prevention and the
// authorization.k8s.io reviews. No controllers run here: the aggregated
// roles (admin, edit, view) stay empty, so the tests bind the
// system:aggregate-to-* roles that feed them.

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	rbachelpers "k8s.io/component-helpers/auth/rbac/validation"

	"github.com/skiff-dev/skiff/pkg/authorizer/rbac/bootstrap"
	"github.com/skiff-dev/skiff/pkg/pki"
)

// userClient is a client authenticating with a fresh client certificate for
// name in groups.
func userClient(t *testing.T, name string, groups ...string) *kubernetes.Clientset {
	t.Helper()
	ca, err := pki.LoadCA(srvOpts.PKIDir())
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.NewClientCert(name, groups)
	if err != nil {
		t.Fatal(err)
	}
	c := &restclient.Config{Host: cfg.Host, QPS: -1, Burst: -1, TLSClientConfig: restclient.TLSClientConfig{
		CAData: cfg.CAData, CAFile: cfg.CAFile, CertData: certPEM, KeyData: keyPEM}}
	return mustClientset(t, c)
}

// eventually polls cond (the informers behind the authorizer lag writes).
func eventually(t *testing.T, what string, cond func(ctx context.Context) bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(testCtx(t), 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		return cond(ctx), nil
	}); err != nil {
		t.Fatalf("%s: not within 10s", what)
	}
}

func bindRole(t *testing.T, ns, name, kind, role string, subjects ...rbacv1.Subject) {
	t.Helper()
	_, err := cs.RbacV1().RoleBindings(ns).Create(testCtx(t), &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: role}, Subjects: subjects}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func userSubject(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}
}

func TestRBACDeniesWithUpstreamMessage(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	alice := userClient(t, "alice")
	_, err := alice.CoreV1().Pods(ns).List(testCtx(t), metav1.ListOptions{})
	s := wantStatusErr(t, err, 403, metav1.StatusReasonForbidden)
	if want := `pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "` + ns + `"`; s.Message != want {
		t.Errorf("message\n got %s\nwant %s", s.Message, want)
	}
	_, err = alice.RbacV1().ClusterRoles().Get(testCtx(t), "view", metav1.GetOptions{})
	s = wantStatusErr(t, err, 403, metav1.StatusReasonForbidden)
	if want := `clusterroles.rbac.authorization.k8s.io "view" is forbidden: User "alice" cannot get resource "clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope`; s.Message != want {
		t.Errorf("message\n got %s\nwant %s", s.Message, want)
	}
	// The bootstrap policy: discovery, whoami and public info for everyone
	// authenticated.
	if _, err := alice.Discovery().ServerGroups(); err != nil {
		t.Errorf("discovery as alice: %v", err)
	}
	if _, err := alice.AuthenticationV1().SelfSubjectReviews().Create(testCtx(t), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{}); err != nil {
		t.Errorf("whoami as alice: %v", err)
	}
	// The issuer discovery is for ServiceAccounts only.
	if _, err := alice.RESTClient().Get().AbsPath("/.well-known/openid-configuration").DoRaw(testCtx(t)); !apierrors.IsForbidden(err) {
		t.Errorf("openid-configuration as alice: %v, want forbidden", err)
	}
}

func TestRBACRoleBindingGrantsItsRules(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	alice := userClient(t, "alice-view")
	bindRole(t, ns, "a", "ClusterRole", "system:aggregate-to-view", userSubject("alice-view"))
	eventually(t, "alice-view lists pods", func(ctx context.Context) bool {
		_, err := alice.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err == nil
	})
	_, err := alice.CoreV1().Pods(ns).Create(testCtx(t), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}, metav1.CreateOptions{})
	s := wantStatusErr(t, err, 403, metav1.StatusReasonForbidden)
	if want := `pods is forbidden: User "alice-view" cannot create resource "pods" in API group "" in the namespace "` + ns + `"`; s.Message != want {
		t.Errorf("message\n got %s\nwant %s", s.Message, want)
	}
	// Only in the binding's namespace; secrets are not in view.
	if _, err := alice.CoreV1().Pods("default").List(testCtx(t), metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("pods in default: %v, want forbidden", err)
	}
	if _, err := alice.CoreV1().Secrets(ns).List(testCtx(t), metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("secrets: %v, want forbidden", err)
	}

	// A Role with resourceNames and a subresource, bound to a group.
	_, err = cs.RbacV1().Roles(ns).Create(testCtx(t), &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "cm"}, Rules: []rbacv1.PolicyRule{
		{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"one"}},
		{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods/log"}},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bindRole(t, ns, "g", "Role", "cm", rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "readers"})
	for _, c := range []struct {
		attrs authorizationv1.ResourceAttributes
		want  bool
	}{
		{authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "configmaps", Name: "one"}, true},
		{authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "configmaps", Name: "two"}, false},
		{authorizationv1.ResourceAttributes{Namespace: ns, Verb: "list", Resource: "configmaps"}, false},
		{authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "pods", Subresource: "log", Name: "p"}, true},
		{authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "pods", Subresource: "exec", Name: "p"}, false},
	} {
		attrs := c.attrs
		eventually(t, "review of "+attrs.Verb+" "+attrs.Resource+"/"+attrs.Subresource+" "+attrs.Name, func(ctx context.Context) bool {
			sar, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: "carol", Groups: []string{"readers"}, ResourceAttributes: &attrs}}, metav1.CreateOptions{})
			return err == nil && sar.Status.Allowed == c.want
		})
	}
}

func TestRBACServiceAccountToken(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(testCtx(t), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := cs.RbacV1().Roles(ns).Create(testCtx(t), &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "cm-reader"}, Rules: []rbacv1.PolicyRule{
		{Verbs: []string{"list"}, APIGroups: []string{""}, Resources: []string{"configmaps"}},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A ServiceAccount subject without namespace means the binding's.
	bindRole(t, ns, "robot", "Role", "cm-reader", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "robot"})
	token := requestToken(t, ns, "robot", authenticationv1.TokenRequestSpec{}).Status.Token
	eventually(t, "the token lists configmaps", func(ctx context.Context) bool {
		return getWith(t, token, "/api/v1/namespaces/"+ns+"/configmaps").code == 200
	})
	for _, p := range []string{"/api/v1/namespaces/" + ns + "/secrets", "/api/v1/namespaces/" + ns + "/pods", "/api/v1/namespaces/default/configmaps"} {
		if r := getWith(t, token, p); r.code != 403 {
			t.Errorf("GET %s with the token: %d, want 403", p, r.code)
		}
	}
	if r := getWith(t, token, "/openid/v1/jwks"); r.code != 200 {
		t.Errorf("jwks with the token: %d, want 200", r.code)
	}
}

func TestRBACEscalationPrevention(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	bob := userClient(t, "bob")
	_, err := cs.RbacV1().Roles(ns).Create(testCtx(t), &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "rbac-writer"}, Rules: []rbacv1.PolicyRule{
		{Verbs: []string{"create", "update", "get"}, APIGroups: []string{rbacv1.GroupName}, Resources: []string{"rolebindings", "roles"}},
		{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bindRole(t, ns, "bob", "Role", "rbac-writer", userSubject("bob"))
	eventually(t, "bob reads rolebindings", func(ctx context.Context) bool {
		_, err := bob.RbacV1().RoleBindings(ns).Get(ctx, "bob", metav1.GetOptions{})
		return err == nil
	})

	// Binding a role whose rules bob lacks.
	_, err = bob.RbacV1().RoleBindings(ns).Create(testCtx(t), &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "b"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:aggregate-to-admin"},
		Subjects: []rbacv1.Subject{userSubject("mallory")}}, metav1.CreateOptions{})
	s := wantStatusErr(t, err, 403, metav1.StatusReasonForbidden)
	wantPrefix := `rolebindings.rbac.authorization.k8s.io "b" is forbidden: user "bob" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:` + "\n"
	if !strings.HasPrefix(s.Message, wantPrefix) || !strings.Contains(s.Message, `{APIGroups:["authorization.k8s.io"], Resources:["localsubjectaccessreviews"], Verbs:["create"]}`) {
		t.Errorf("message\n got %s\nwant prefix %s", s.Message, wantPrefix)
	}
	// A Role with rules bob lacks.
	_, err = bob.RbacV1().Roles(ns).Create(testCtx(t), &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "more"}, Rules: []rbacv1.PolicyRule{
		{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"secrets"}},
	}}, metav1.CreateOptions{})
	s = wantStatusErr(t, err, 403, metav1.StatusReasonForbidden)
	if want := `roles.rbac.authorization.k8s.io "more" is forbidden: user "bob" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:` + "\n" +
		`{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}`; s.Message != want {
		t.Errorf("message\n got %s\nwant %s", s.Message, want)
	}
	// What bob holds he may grant.
	if _, err := bob.RbacV1().Roles(ns).Create(testCtx(t), &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "same"}, Rules: []rbacv1.PolicyRule{
		{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}},
	}}, metav1.CreateOptions{}); err != nil {
		t.Errorf("role within bob's rules: %v", err)
	}
	if _, err := bob.RbacV1().RoleBindings(ns).Create(testCtx(t), &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "same"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "same"},
		Subjects: []rbacv1.Subject{userSubject("mallory")}}, metav1.CreateOptions{}); err != nil {
		t.Errorf("binding a role within bob's rules: %v", err)
	}

	// "bind" on the ClusterRole and "escalate" on roles lift the checks.
	_, err = cs.RbacV1().Roles(ns).Create(testCtx(t), &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "binder"}, Rules: []rbacv1.PolicyRule{
		{Verbs: []string{"bind"}, APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterroles"}, ResourceNames: []string{"system:aggregate-to-admin"}},
		{Verbs: []string{"escalate"}, APIGroups: []string{rbacv1.GroupName}, Resources: []string{"roles"}},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bindRole(t, ns, "bob-binder", "Role", "binder", userSubject("bob"))
	eventually(t, "bob may bind system:aggregate-to-admin", func(ctx context.Context) bool {
		_, err := bob.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "b"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:aggregate-to-admin"},
			Subjects: []rbacv1.Subject{userSubject("mallory")}}, metav1.CreateOptions{})
		return err == nil
	})
	if _, err := bob.RbacV1().Roles(ns).Create(testCtx(t), &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "more"}, Rules: []rbacv1.PolicyRule{
		{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"secrets"}},
	}}, metav1.CreateOptions{}); err != nil {
		t.Errorf("role with escalate: %v", err)
	}
}

func TestRBACBootstrapPolicy(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	view, err := cs.RbacV1().ClusterRoles().Get(ctx, "view", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if view.AggregationRule == nil || len(view.AggregationRule.ClusterRoleSelectors) != 1 ||
		view.AggregationRule.ClusterRoleSelectors[0].MatchLabels[bootstrap.AggregateToView] != "true" ||
		view.Labels[bootstrap.AggregateToEdit] != "true" || view.Labels["kubernetes.io/bootstrapping"] != "rbac-defaults" ||
		view.Annotations[rbacv1.AutoUpdateAnnotationKey] != "true" {
		t.Errorf("view: %+v", view)
	}
	for name, want := range map[string][]rbacv1.Subject{
		"cluster-admin":     {{Kind: "Group", APIGroup: rbacv1.GroupName, Name: "system:masters"}},
		"system:basic-user": {{Kind: "Group", APIGroup: rbacv1.GroupName, Name: "system:authenticated"}},
		"system:public-info-viewer": {{Kind: "Group", APIGroup: rbacv1.GroupName, Name: "system:authenticated"},
			{Kind: "Group", APIGroup: rbacv1.GroupName, Name: "system:unauthenticated"}},
		"system:kube-scheduler":                   {{Kind: "User", APIGroup: rbacv1.GroupName, Name: "system:kube-scheduler"}},
		"system:kube-controller-manager":          {{Kind: "User", APIGroup: rbacv1.GroupName, Name: "system:kube-controller-manager"}},
		"system:node-proxier":                     {{Kind: "User", APIGroup: rbacv1.GroupName, Name: "system:kube-proxy"}},
		"system:service-account-issuer-discovery": {{Kind: "Group", APIGroup: rbacv1.GroupName, Name: "system:serviceaccounts"}},
	} {
		b, err := cs.RbacV1().ClusterRoleBindings().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if b.RoleRef.Name != name || !slices.Equal(b.Subjects, want) {
			t.Errorf("%s: roleRef %v subjects %v, want %v", name, b.RoleRef, b.Subjects, want)
		}
	}
	if _, err := cs.RbacV1().Roles("kube-system").Get(ctx, "extension-apiserver-authentication-reader", metav1.GetOptions{}); err != nil {
		t.Error(err)
	}

	// Reconciling again (as every start does) recreates what is missing,
	// adds what lacks, keeps additions and leaves autoupdate=false alone.
	if err := cs.RbacV1().ClusterRoles().Delete(ctx, "system:heapster", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	dns, err := cs.RbacV1().ClusterRoles().Get(ctx, "system:kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dns.Annotations[rbacv1.AutoUpdateAnnotationKey] = "false"
	dns.Rules = nil
	if _, err := cs.RbacV1().ClusterRoles().Update(ctx, dns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	npd, err := cs.RbacV1().ClusterRoles().Get(ctx, "system:node-problem-detector", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var npdRules []rbacv1.PolicyRule
	for _, r := range bootstrap.ClusterRoles() {
		if r.Name == "system:node-problem-detector" {
			npdRules = r.Rules
		}
	}
	extra := rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}}
	npd.Rules = append(slices.Clone(npdRules[1:]), extra) // drops one rule, adds one
	if _, err := cs.RbacV1().ClusterRoles().Update(ctx, npd, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := bootstrap.Ensure(ctx, cs, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().ClusterRoles().Get(ctx, "system:heapster", metav1.GetOptions{}); err != nil {
		t.Errorf("system:heapster not recreated: %v", err)
	}
	dns, err = cs.RbacV1().ClusterRoles().Get(ctx, "system:kube-dns", metav1.GetOptions{})
	if err != nil || len(dns.Rules) != 0 {
		t.Errorf("system:kube-dns with autoupdate=false: %v %v", dns.Rules, err)
	}
	npd, err = cs.RbacV1().ClusterRoles().Get(ctx, "system:node-problem-detector", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if covered, missing := rbachelpers.Covers(npd.Rules, append(npdRules, extra)); !covered {
		t.Errorf("system:node-problem-detector rules %v lack %v", npd.Rules, missing)
	}
	// Back to autoupdate, restored at the next reconciliation.
	dns.Annotations[rbacv1.AutoUpdateAnnotationKey] = "true"
	if _, err := cs.RbacV1().ClusterRoles().Update(ctx, dns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := bootstrap.Ensure(ctx, cs, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if dns, err := cs.RbacV1().ClusterRoles().Get(ctx, "system:kube-dns", metav1.GetOptions{}); err != nil || len(dns.Rules) == 0 {
		t.Errorf("system:kube-dns back to autoupdate: %v %v", dns.Rules, err)
	}
}

func TestAuthorizationReviews(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := testCtx(t)
	bindRole(t, ns, "dave", "ClusterRole", "system:aggregate-to-view", userSubject("dave"))
	pods := authorizationv1.ResourceAttributes{Namespace: ns, Verb: "list", Resource: "pods"}
	eventually(t, "dave may list pods", func(ctx context.Context) bool {
		sar, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: "dave", ResourceAttributes: &pods}}, metav1.CreateOptions{})
		return err == nil && sar.Status.Allowed && strings.HasPrefix(sar.Status.Reason, `RBAC: allowed by RoleBinding "dave/`+ns+`" of ClusterRole "system:aggregate-to-view" to User "dave"`)
	})
	create := authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Resource: "pods"}
	sar, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: "dave", ResourceAttributes: &create}}, metav1.CreateOptions{})
	if err != nil || sar.Status.Allowed || sar.Status.Denied {
		t.Errorf("create pods: %+v %v", sar, err)
	}
	// Validation.
	_, err = cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		ResourceAttributes: &pods}}, metav1.CreateOptions{})
	if s := wantStatusErr(t, err, 422, metav1.StatusReasonInvalid); !strings.Contains(s.Message, "at least one of user or group must be specified") {
		t.Errorf("message %s", s.Message)
	}
	// Local reviews: the namespace must match.
	lsar, err := cs.AuthorizationV1().LocalSubjectAccessReviews(ns).Create(ctx, &authorizationv1.LocalSubjectAccessReview{ObjectMeta: metav1.ObjectMeta{Namespace: ns},
		Spec: authorizationv1.SubjectAccessReviewSpec{User: "dave", ResourceAttributes: &pods}}, metav1.CreateOptions{})
	if err != nil || !lsar.Status.Allowed {
		t.Errorf("local review: %+v %v", lsar, err)
	}
	other := authorizationv1.ResourceAttributes{Namespace: "default", Verb: "list", Resource: "pods"}
	_, err = cs.AuthorizationV1().LocalSubjectAccessReviews(ns).Create(ctx, &authorizationv1.LocalSubjectAccessReview{ObjectMeta: metav1.ObjectMeta{Namespace: ns},
		Spec: authorizationv1.SubjectAccessReviewSpec{User: "dave", ResourceAttributes: &other}}, metav1.CreateOptions{})
	wantStatusErr(t, err, 422, metav1.StatusReasonInvalid)

	// Self reviews, as dave.
	dave := userClient(t, "dave")
	ssar, err := dave.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &pods}}, metav1.CreateOptions{})
	if err != nil || !ssar.Status.Allowed {
		t.Errorf("self review: %+v %v", ssar, err)
	}
	ssar, err = dave.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/apis/apps", Verb: "get"}}}, metav1.CreateOptions{})
	if err != nil || !ssar.Status.Allowed {
		t.Errorf("self review of /apis/apps: %+v %v", ssar, err)
	}
	ssrr, err := dave.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx, &authorizationv1.SelfSubjectRulesReview{Spec: authorizationv1.SelfSubjectRulesReviewSpec{
		Namespace: ns}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	has := func(verb, group, resource string) bool {
		return slices.ContainsFunc(ssrr.Status.ResourceRules, func(r authorizationv1.ResourceRule) bool {
			return slices.Contains(r.Verbs, verb) && slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource)
		})
	}
	if !has("list", "", "pods") || !has("create", "authorization.k8s.io", "selfsubjectaccessreviews") || has("create", "", "pods") || ssrr.Status.Incomplete {
		t.Errorf("rules of dave: %+v", ssrr.Status)
	}
	if !slices.ContainsFunc(ssrr.Status.NonResourceRules, func(r authorizationv1.NonResourceRule) bool { return slices.Contains(r.NonResourceURLs, "/apis/*") }) {
		t.Errorf("non-resource rules of dave: %+v", ssrr.Status.NonResourceRules)
	}
	// Reviewing others needs a grant.
	_, err = dave.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: "x", ResourceAttributes: &pods}}, metav1.CreateOptions{})
	wantStatusErr(t, err, 403, metav1.StatusReasonForbidden)

	// As the conformance spec "SubjectReview should support SubjectReview
	// API operations": the reviews agree with what an impersonated
	// ServiceAccount may actually do.
	sa, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "e2e"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	saUser := "system:serviceaccount:" + ns + ":e2e"
	saGroups := []string{"system:authenticated", "system:serviceaccounts", "system:serviceaccounts:" + ns}
	imp := restclient.CopyConfig(cfg)
	imp.Impersonate = restclient.ImpersonationConfig{UserName: saUser, UID: string(sa.UID), Groups: saGroups}
	_, listErr := mustClientset(t, imp).CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(listErr) {
		t.Fatalf("impersonated list: %v, want forbidden", listErr)
	}
	cms := authorizationv1.ResourceAttributes{Verb: "list", Resource: "configmaps", Namespace: ns, Version: "v1"}
	sar, err = cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: saUser, Groups: saGroups, UID: string(sa.UID), ResourceAttributes: &cms}}, metav1.CreateOptions{})
	if err != nil || sar.Status.Allowed {
		t.Errorf("review of the ServiceAccount: %+v %v", sar, err)
	}
	lsar, err = cs.AuthorizationV1().LocalSubjectAccessReviews(ns).Create(ctx, &authorizationv1.LocalSubjectAccessReview{ObjectMeta: metav1.ObjectMeta{Namespace: ns},
		Spec: authorizationv1.SubjectAccessReviewSpec{User: "e2e", Groups: saGroups, UID: string(sa.UID), ResourceAttributes: &cms}}, metav1.CreateOptions{})
	if err != nil || lsar.Status.Allowed {
		t.Errorf("local review of the ServiceAccount: %+v %v", lsar, err)
	}
}
