package apiserver_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apiserver/options"
)

const issuer = options.DefaultServiceAccountIssuer

// requestToken asks for a token of the ServiceAccount ns/name.
func requestToken(t *testing.T, ns, name string, spec authenticationv1.TokenRequestSpec) *authenticationv1.TokenRequest {
	t.Helper()
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(testCtx(t), name, &authenticationv1.TokenRequest{Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("requesting a token for %s/%s: %v", ns, name, err)
	}
	return tr
}

// claimsOf decodes a JWT's payload without verifying it.
func claimsOf(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(data, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// tokenConfig is a client config that presents token and nothing else.
func tokenConfig(token string) *restclient.Config {
	c := restclient.AnonymousClientConfig(cfg)
	c.BearerToken = token
	return c
}

// whoami is the SelfSubjectReview of the token's user.
func whoami(t *testing.T, token string) (*authenticationv1.SelfSubjectReview, error) {
	t.Helper()
	client, err := kubernetes.NewForConfig(tokenConfig(token))
	if err != nil {
		t.Fatal(err)
	}
	return client.AuthenticationV1().SelfSubjectReviews().Create(testCtx(t), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
}

// getWith sends GET path with the token as bearer.
func getWith(t *testing.T, token, path string) response {
	t.Helper()
	client, err := restclient.HTTPClientFor(restclient.AnonymousClientConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	header := map[string]string{}
	if token != "" {
		header["Authorization"] = "Bearer " + token
	}
	return do(t, client, http.MethodGet, path, header, nil)
}

func TestServiceAccountToken(t *testing.T) {
	ns := newNamespace(t)
	ctx := testCtx(t)
	sa, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	before := time.Now().Truncate(time.Second)
	tr := requestToken(t, ns, "default", authenticationv1.TokenRequestSpec{})
	if tr.Name != "default" || tr.Namespace != ns || tr.UID != sa.UID {
		t.Errorf("TokenRequest metadata %+v", tr.ObjectMeta)
	}
	if !slices.Equal(tr.Spec.Audiences, []string{issuer}) || ptr.Deref(tr.Spec.ExpirationSeconds, 0) != 3600 {
		t.Errorf("spec defaults: audiences %v expirationSeconds %v", tr.Spec.Audiences, tr.Spec.ExpirationSeconds)
	}
	if exp := tr.Status.ExpirationTimestamp.Time; exp.Before(before.Add(time.Hour)) || exp.After(time.Now().Add(time.Hour+time.Second)) {
		t.Errorf("expirationTimestamp %v, want an hour from now", exp)
	}
	claims := claimsOf(t, tr.Status.Token)
	if claims["iss"] != issuer || claims["sub"] != "system:serviceaccount:"+ns+":default" {
		t.Errorf("iss %v sub %v", claims["iss"], claims["sub"])
	}
	if exp := int64(claims["exp"].(float64)); exp < tr.Status.ExpirationTimestamp.Unix() || exp > tr.Status.ExpirationTimestamp.Unix()+1 {
		t.Errorf("exp %d, status says %v", exp, tr.Status.ExpirationTimestamp)
	}
	k8s, _ := json.Marshal(claims["kubernetes.io"])
	if want := `{"namespace":"` + ns + `","serviceaccount":{"name":"default","uid":"` + string(sa.UID) + `"}}`; string(k8s) != want {
		t.Errorf("kubernetes.io claims %s, want %s", k8s, want)
	}

	// The token authenticates: whoami answers, listing pods is forbidden
	// (403: no RBAC grant), not unauthorized.
	review, err := whoami(t, tr.Status.Token)
	if err != nil {
		t.Fatalf("selfsubjectreview with the token: %v", err)
	}
	u := review.Status.UserInfo
	if u.Username != "system:serviceaccount:"+ns+":default" || u.UID != string(sa.UID) {
		t.Errorf("user %q uid %q", u.Username, u.UID)
	}
	if want := []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}; !slices.Equal(u.Groups, want) {
		t.Errorf("groups %v, want %v", u.Groups, want)
	}
	if id := u.Extra["authentication.kubernetes.io/credential-id"]; len(id) != 1 || id[0] != "JTI="+claims["jti"].(string) {
		t.Errorf("credential id %v, jti %v", id, claims["jti"])
	}
	if r := getWith(t, tr.Status.Token, "/api/v1/namespaces/"+ns+"/pods"); r.code != http.StatusForbidden {
		t.Errorf("GET pods with the token: %d, want 403\n%s", r.code, r.body)
	}

	// Token reviews (by the admin) see the same user; a bad token fails.
	tokenReview, err := cs.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: tr.Status.Token}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !tokenReview.Status.Authenticated || tokenReview.Status.User.Username != u.Username || !slices.Equal(tokenReview.Status.Audiences, []string{issuer}) {
		t.Errorf("token review status %+v", tokenReview.Status)
	}
	bad, err := cs.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: tr.Status.Token + "x"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if bad.Status.Authenticated || bad.Status.Error == "" || bad.Status.User.Username != "" {
		t.Errorf("token review of a broken token: %+v", bad.Status)
	}

	// Deleting the ServiceAccount revokes the token (401), once the cached
	// verdict (10s, as upstream) has expired.
	if err := cs.CoreV1().ServiceAccounts(ns).Delete(ctx, "default", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var last response
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 20*time.Second, true, func(_ context.Context) (bool, error) {
		last = getWith(t, tr.Status.Token, "/api")
		return last.code == http.StatusUnauthorized, nil
	})
	if err != nil {
		t.Fatalf("the token of a deleted service account still gets %d\n%s", last.code, last.body)
	}
	// A new ServiceAccount of the same name is another identity.
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if r := getWith(t, tr.Status.Token, "/api"); r.code != http.StatusUnauthorized {
		t.Errorf("the old token after the service account was recreated: %d, want 401", r.code)
	}
}

func TestServiceAccountTokenRequestValidation(t *testing.T) {
	ns := newNamespace(t)
	ctx := testCtx(t)
	sas := cs.CoreV1().ServiceAccounts(ns)

	_, err := sas.CreateToken(ctx, "nobody", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	wantStatusErr(t, err, 404, metav1.StatusReasonNotFound)

	_, err = sas.CreateToken(ctx, "default", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](60)}}, metav1.CreateOptions{})
	if s := wantStatusErr(t, err, 422, metav1.StatusReasonInvalid); !strings.Contains(s.Message, "may not specify a duration less than 10 minutes") {
		t.Errorf("message %q", s.Message)
	}

	_, err = sas.CreateToken(ctx, "default", &authenticationv1.TokenRequest{ObjectMeta: metav1.ObjectMeta{UID: "not-it"}}, metav1.CreateOptions{})
	wantStatusErr(t, err, 409, metav1.StatusReasonConflict)

	_, err = sas.CreateToken(ctx, "default", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "ConfigMap", APIVersion: "v1", Name: "x"}}}, metav1.CreateOptions{})
	wantStatusErr(t, err, 400, metav1.StatusReasonBadRequest)

	_, err = sas.CreateToken(ctx, "default", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "missing"}}}, metav1.CreateOptions{})
	wantStatusErr(t, err, 404, metav1.StatusReasonNotFound)

	// A token for another audience does not authenticate to the API, but a
	// token review for that audience accepts it.
	tr := requestToken(t, ns, "default", authenticationv1.TokenRequestSpec{Audiences: []string{"vault"}, ExpirationSeconds: ptr.To[int64](7200)})
	if r := getWith(t, tr.Status.Token, "/api"); r.code != http.StatusUnauthorized {
		t.Errorf("GET /api with a vault token: %d, want 401", r.code)
	}
	review, err := cs.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{
		Token: tr.Status.Token, Audiences: []string{"vault"}}}, metav1.CreateOptions{})
	if err != nil || !review.Status.Authenticated || !slices.Equal(review.Status.Audiences, []string{"vault"}) {
		t.Errorf("token review for vault: %v %+v", err, review)
	}
	if exp := int64(claimsOf(t, tr.Status.Token)["exp"].(float64)) - int64(claimsOf(t, tr.Status.Token)["iat"].(float64)); exp != 7200 {
		t.Errorf("lifetime %ds, want 7200", exp)
	}
}

func TestServiceAccountBoundTokens(t *testing.T) {
	ns := newNamespace(t)
	ctx := testCtx(t)

	// A pod without a ServiceAccount runs as default with the token volume.
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{NodeName: "node-x", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Spec.ServiceAccountName != "default" || pod.Spec.DeprecatedServiceAccount != "default" {
		t.Errorf("serviceAccountName %q", pod.Spec.ServiceAccountName)
	}
	if len(pod.Spec.Volumes) != 1 || !strings.HasPrefix(pod.Spec.Volumes[0].Name, "kube-api-access-") || pod.Spec.Volumes[0].Projected == nil {
		t.Fatalf("volumes %+v", pod.Spec.Volumes)
	}
	projected := pod.Spec.Volumes[0].Projected
	if ptr.Deref(projected.DefaultMode, 0) != 0o644 || len(projected.Sources) != 3 ||
		ptr.Deref(projected.Sources[0].ServiceAccountToken.ExpirationSeconds, 0) != 3607 ||
		projected.Sources[1].ConfigMap.Name != "kube-root-ca.crt" || projected.Sources[2].DownwardAPI.Items[0].FieldRef.FieldPath != "metadata.namespace" {
		t.Errorf("projected volume %+v", projected)
	}
	if m := pod.Spec.Containers[0].VolumeMounts; len(m) != 1 || m[0].MountPath != "/var/run/secrets/kubernetes.io/serviceaccount" || !m[0].ReadOnly {
		t.Errorf("mounts %+v", m)
	}

	// The kubelet's request for that volume: bound to the pod, extended.
	tr := requestToken(t, ns, "default", authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3607),
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "p", UID: pod.UID}})
	claims := claimsOf(t, tr.Status.Token)
	if life := int64(claims["exp"].(float64)) - int64(claims["iat"].(float64)); life != 365*24*3600 {
		t.Errorf("extended lifetime %ds, want a year", life)
	}
	if time.Until(tr.Status.ExpirationTimestamp.Time) > 3607*time.Second {
		t.Errorf("status.expirationTimestamp %v is not the requested hour", tr.Status.ExpirationTimestamp)
	}
	k8s := claims["kubernetes.io"].(map[string]any)
	if p := k8s["pod"].(map[string]any); p["name"] != "p" || p["uid"] != string(pod.UID) || k8s["warnafter"] == nil {
		t.Errorf("kubernetes.io claims %v", k8s)
	}
	if n := k8s["node"].(map[string]any); n["name"] != "node-x" {
		t.Errorf("node claim %v", n)
	}
	review, err := whoami(t, tr.Status.Token)
	if err != nil {
		t.Fatal(err)
	}
	extra := review.Status.UserInfo.Extra
	if extra["authentication.kubernetes.io/pod-name"][0] != "p" || extra["authentication.kubernetes.io/pod-uid"][0] != string(pod.UID) ||
		extra["authentication.kubernetes.io/node-name"][0] != "node-x" {
		t.Errorf("extra %v", extra)
	}

	_, err = cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "default", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "p", UID: types.UID("other")}}}, metav1.CreateOptions{})
	wantStatusErr(t, err, 409, metav1.StatusReasonConflict)

	// Secret- and Node-bound tokens.
	secret, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secretToken := requestToken(t, ns, "default", authenticationv1.TokenRequestSpec{
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Secret", APIVersion: "v1", Name: "s"}}).Status.Token
	if s := claimsOf(t, secretToken)["kubernetes.io"].(map[string]any)["secret"].(map[string]any); s["uid"] != string(secret.UID) {
		t.Errorf("secret claim %v", s)
	}
	node, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "sa-" + ns}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Nodes().Delete(testCtx(t), node.Name, metav1.DeleteOptions{}) })
	nodeToken := requestToken(t, ns, "default", authenticationv1.TokenRequestSpec{
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Node", APIVersion: "v1", Name: node.Name}}).Status.Token
	for name, token := range map[string]string{"pod": tr.Status.Token, "secret": secretToken, "node": nodeToken} {
		if _, err := whoami(t, token); err != nil {
			t.Errorf("%s-bound token: %v", name, err)
		}
	}

	// The bound objects go, and their tokens with them (after the 10s
	// verdict cache).
	zero := int64(0)
	if err := cs.CoreV1().Pods(ns).Delete(ctx, "p", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Secrets(ns).Delete(ctx, "s", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Nodes().Delete(ctx, node.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, token := range map[string]string{"pod": tr.Status.Token, "secret": secretToken, "node": nodeToken} {
		var last response
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 20*time.Second, true, func(_ context.Context) (bool, error) {
			last = getWith(t, token, "/api")
			return last.code == http.StatusUnauthorized, nil
		})
		if err != nil {
			t.Errorf("%s-bound token after its object was deleted: %d", name, last.code)
		}
	}
}

func TestServiceAccountAdmissionRefusesMissingServiceAccount(t *testing.T) {
	ns := newNamespace(t)
	_, err := cs.CoreV1().Pods(ns).Create(testCtx(t), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{ServiceAccountName: "robot", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}, metav1.CreateOptions{})
	s := wantStatusErr(t, err, 403, metav1.StatusReasonForbidden)
	if want := `pods "p" is forbidden: error looking up service account ` + ns + `/robot: serviceaccount "robot" not found`; s.Message != want {
		t.Errorf("message\n got %s\nwant %s", s.Message, want)
	}
	// automountServiceAccountToken: false on the ServiceAccount.
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(testCtx(t), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"},
		AutomountServiceAccountToken: ptr.To(false)}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := cs.CoreV1().Pods(ns).Create(testCtx(t), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{ServiceAccountName: "robot", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pod.Spec.Volumes) != 0 || len(pod.Spec.Containers[0].VolumeMounts) != 0 {
		t.Errorf("volumes %v mounts %v, want none", pod.Spec.Volumes, pod.Spec.Containers[0].VolumeMounts)
	}
}

func TestServiceAccountIssuerDiscovery(t *testing.T) {
	ns := newNamespace(t)
	token := requestToken(t, ns, "default", authenticationv1.TokenRequestSpec{}).Status.Token

	if r := getWith(t, "", "/.well-known/openid-configuration"); r.code != http.StatusForbidden {
		t.Errorf("anonymous GET of the discovery document: %d, want 403", r.code)
	}
	r := getWith(t, token, "/.well-known/openid-configuration")
	if r.code != 200 || r.header.Get("Content-Type") != "application/json" || r.header.Get("Cache-Control") != "public, max-age=3600" {
		t.Fatalf("discovery document: %d %v\n%s", r.code, r.header, r.body)
	}
	var doc struct {
		Issuer        string   `json:"issuer"`
		JWKSURI       string   `json:"jwks_uri"`
		ResponseTypes []string `json:"response_types_supported"`
		SubjectTypes  []string `json:"subject_types_supported"`
		Algs          []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Issuer != issuer || !strings.HasSuffix(doc.JWKSURI, ":"+itoa(srvOpts.SecurePort)+"/openid/v1/jwks") ||
		!slices.Equal(doc.Algs, []string{"RS256"}) || !slices.Equal(doc.ResponseTypes, []string{"id_token"}) || !slices.Equal(doc.SubjectTypes, []string{"public"}) {
		t.Errorf("discovery document %s", r.body)
	}

	r = do(t, nil, http.MethodGet, "/openid/v1/jwks", nil, nil)
	if r.code != 200 || r.header.Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("jwks: %d %v\n%s", r.code, r.header, r.body)
	}
	var set struct {
		Keys []struct{ Kty, Alg, Use, Kid, N, E string } `json:"keys"`
	}
	if err := json.Unmarshal(r.body, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("jwks %s: %v", r.body, err)
	}
	header, _ := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	var h struct{ Alg, Kid string }
	_ = json.Unmarshal(header, &h)
	if k := set.Keys[0]; k.Kty != "RSA" || k.Alg != "RS256" || k.Use != "sig" || k.Kid != h.Kid || k.E != "AQAB" || k.N == "" {
		t.Errorf("jwk %+v, token header %s", k, header)
	}
}

func TestAuthenticationAPIDiscovery(t *testing.T) {
	resources, err := cs.Discovery().ServerResourcesForGroupVersion("authentication.k8s.io/v1")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range resources.APIResources {
		got[r.Name] = r.Kind + " " + strings.Join(r.Verbs, ",")
	}
	if got["tokenreviews"] != "TokenReview create" || got["selfsubjectreviews"] != "SelfSubjectReview create" || len(got) != 2 {
		t.Errorf("authentication.k8s.io/v1 resources %v", got)
	}
	core, err := cs.Discovery().ServerResourcesForGroupVersion("v1")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range core.APIResources {
		if r.Name == "serviceaccounts/token" {
			if r.Group != "authentication.k8s.io" || r.Version != "v1" || r.Kind != "TokenRequest" || !slices.Equal(r.Verbs, []string{"create"}) {
				t.Errorf("serviceaccounts/token %+v", r)
			}
			return
		}
	}
	t.Error("serviceaccounts/token is not served")
}

// TestServiceAccountTokenVerdictsAreCached: repeated requests with one token
// are answered from the token cache (upstream's 10s success cache), not by
// verifying the token and looking its ServiceAccount up each time.
func TestServiceAccountTokenVerdictsAreCached(t *testing.T) {
	ns := newNamespace(t)
	token := requestToken(t, ns, "default", authenticationv1.TokenRequestSpec{}).Status.Token
	hitsBefore := tokenCacheHits(t)
	for i := 0; i < 5; i++ {
		if r := getWith(t, token, "/api"); r.code != http.StatusOK {
			t.Fatalf("GET /api with the token: %d\n%s", r.code, r.body)
		}
	}
	if hits := tokenCacheHits(t) - hitsBefore; hits < 4 {
		t.Errorf("%v token cache hits for 5 requests with one token, want at least 4", hits)
	}
}

// tokenCacheHits reads authentication_token_cache_request_total{status="hit"}
// from the server's /metrics.
func tokenCacheHits(t *testing.T) float64 {
	t.Helper()
	r := do(t, httpc, http.MethodGet, "/metrics", nil, nil)
	if r.code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", r.code)
	}
	for _, line := range strings.Split(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(line, `authentication_token_cache_request_total{status="hit"} `); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return f
		}
	}
	return 0
}
