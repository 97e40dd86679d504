package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestServiceAccounts checks, with every kubectl found, what the
// ServiceAccount machinery gives a namespace and a pod, and the tokens of
// `kubectl create token`.
func TestServiceAccounts(t *testing.T) {
	forEachKubectl(t, func(t *testing.T, k *kctl) {
		t.Run("NamespaceDefaults", func(t *testing.T) { testNamespaceDefaults(t, k) })
		t.Run("PodServiceAccount", func(t *testing.T) { testPodServiceAccount(t, k) })
		t.Run("CreateToken", func(t *testing.T) { testCreateToken(t, k) })
		t.Run("SecretToken", func(t *testing.T) { testSecretToken(t, k) })
	})
}

// eventually retries f (which reports what is still wrong, or "") for up to
// timeout.
func eventually(t *testing.T, timeout time.Duration, f func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		problem := f()
		if problem == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, problem)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// creationTime is the metadata.creationTimestamp of `kubectl get args`.
func creationTime(t *testing.T, k *kctl, args ...string) (time.Time, bool) {
	t.Helper()
	r := k.run(append(append([]string{"get"}, args...), "-o", "jsonpath={.metadata.creationTimestamp}")...)
	if r.err != nil {
		return time.Time{}, false
	}
	ts, err := time.Parse(time.RFC3339, strings.TrimSpace(r.stdout))
	return ts, err == nil
}

// testNamespaceDefaults: a new namespace gets its `default` ServiceAccount
// and kube-root-ca.crt ConfigMap within a second, and both come back when
// deleted or changed.
func testNamespaceDefaults(t *testing.T, k *kctl) {
	ns := k.ns + "-defaults"
	k.ok(t, "create", "namespace", ns)
	t.Cleanup(func() { k.run("delete", "namespace", ns, "--wait=false") })
	nsCreated, ok := creationTime(t, k, "namespace", ns)
	if !ok {
		t.Fatalf("namespace %s has no creationTimestamp", ns)
	}
	// kubectl itself takes a while to start: wait a few seconds for the
	// objects, then judge the controllers by the server's timestamps.
	for _, obj := range []string{"serviceaccount/default", "configmap/kube-root-ca.crt"} {
		eventually(t, 10*time.Second, func() string {
			created, ok := creationTime(t, k, "-n", ns, obj)
			if !ok {
				return obj + " does not exist"
			}
			if d := created.Sub(nsCreated); d > time.Second {
				t.Errorf("%s was created %s after its namespace, want within a second", obj, d)
			}
			return ""
		})
	}

	caPEM, err := os.ReadFile(k.caFile())
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Metadata struct{ Annotations map[string]string }
		Data     map[string]string
	}
	k.getJSON(t, &cm, "-n", ns, "configmap", "kube-root-ca.crt")
	if cm.Data["ca.crt"] != string(caPEM) || len(cm.Data) != 1 {
		t.Errorf("kube-root-ca.crt data %v, want ca.crt = the cluster CA", cm.Data)
	}
	if d := cm.Metadata.Annotations["kubernetes.io/description"]; !strings.HasPrefix(d, "Contains a CA bundle that can be used to verify the kube-apiserver") {
		t.Errorf("kube-root-ca.crt description %q", d)
	}

	// Deleted or changed: restored.
	uid := k.jsonpath(t, "{.metadata.uid}", "-n", ns, "serviceaccount", "default")
	k.ok(t, "-n", ns, "delete", "serviceaccount", "default")
	eventually(t, 10*time.Second, func() string {
		r := k.run("-n", ns, "get", "serviceaccount", "default", "-o", "jsonpath={.metadata.uid}")
		if r.err != nil || strings.TrimSpace(r.stdout) == uid {
			return "serviceaccount/default was not recreated"
		}
		return ""
	})
	k.ok(t, "-n", ns, "patch", "configmap", "kube-root-ca.crt", "--type=merge", "-p", `{"data":{"ca.crt":"bogus"}}`)
	eventually(t, 10*time.Second, func() string {
		if got := k.jsonpath(t, "{.data.ca\\.crt}", "-n", ns, "configmap", "kube-root-ca.crt"); strings.TrimSpace(got) != strings.TrimSpace(string(caPEM)) {
			return "kube-root-ca.crt was not restored after a change"
		}
		return ""
	})
	k.ok(t, "-n", ns, "delete", "configmap", "kube-root-ca.crt")
	eventually(t, 10*time.Second, func() string {
		if r := k.run("-n", ns, "get", "configmap", "kube-root-ca.crt"); r.err != nil {
			return "kube-root-ca.crt was not recreated"
		}
		return ""
	})
}

// testPodServiceAccount: a pod that names no ServiceAccount runs as
// `default` with the projected kube-api-access volume in every container.
func testPodServiceAccount(t *testing.T, k *kctl) {
	applyPod(t, k)
	var pod struct {
		Spec struct {
			ServiceAccountName string
			Volumes            []struct {
				Name      string
				Projected *struct {
					DefaultMode int
					Sources     []map[string]json.RawMessage
				}
			}
			Containers []struct {
				VolumeMounts []struct {
					Name, MountPath string
					ReadOnly        bool
				}
			}
		}
	}
	k.getJSON(t, &pod, "pod", "web-pod")
	if pod.Spec.ServiceAccountName != "default" {
		t.Errorf("serviceAccountName %q, want default", pod.Spec.ServiceAccountName)
	}
	if len(pod.Spec.Volumes) != 1 || !strings.HasPrefix(pod.Spec.Volumes[0].Name, "kube-api-access-") || pod.Spec.Volumes[0].Projected == nil {
		t.Fatalf("volumes %+v, want one kube-api-access-* projected volume", pod.Spec.Volumes)
	}
	v := pod.Spec.Volumes[0]
	var kinds []string
	for _, src := range v.Projected.Sources {
		for kind, body := range src {
			var compact bytes.Buffer
			_ = json.Compact(&compact, body)
			kinds = append(kinds, kind+compact.String())
		}
	}
	want := []string{
		`serviceAccountToken{"expirationSeconds":3607,"path":"token"}`,
		`configMap{"items":[{"key":"ca.crt","path":"ca.crt"}],"name":"kube-root-ca.crt"}`,
		`downwardAPI{"items":[{"fieldRef":{"apiVersion":"v1","fieldPath":"metadata.namespace"},"path":"namespace"}]}`,
	}
	if strings.Join(kinds, "\n") != strings.Join(want, "\n") || v.Projected.DefaultMode != 0o644 {
		t.Errorf("projected sources (defaultMode %d):\n%s\nwant:\n%s", v.Projected.DefaultMode, strings.Join(kinds, "\n"), strings.Join(want, "\n"))
	}
	for _, c := range pod.Spec.Containers {
		if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].Name != v.Name || c.VolumeMounts[0].MountPath != "/var/run/secrets/kubernetes.io/serviceaccount" || !c.VolumeMounts[0].ReadOnly {
			t.Errorf("volume mounts %+v", c.VolumeMounts)
		}
	}
	out := k.ok(t, "describe", "pod", "web-pod")
	assertContains(t, out, "Service Account:", "kube-api-access-", "/var/run/secrets/kubernetes.io/serviceaccount from kube-api-access-")

	out = k.fail(t, "run", "lonely", "--image=busybox", "--overrides", `{"spec":{"serviceAccountName":"nobody"}}`)
	assertContains(t, out, `error looking up service account `+k.ns+`/nobody: serviceaccount "nobody" not found`)
}

// jwtClaims decodes a token's claims without verifying it.
func jwtClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("kubectl create token printed %q, not a JWT", token)
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

// caFile is the cluster CA of the server k talks to.
func (k *kctl) caFile() string { return filepath.Join(k.srv.Dir, "pki", "ca.crt") }

// asToken runs kubectl presenting only token (no client certificate).
func (k *kctl) asToken(token string, args ...string) *result {
	base := []string{"--kubeconfig=/dev/null", "--server=" + k.srv.URL, "--certificate-authority=" + k.caFile(), "--token=" + token}
	return k.run(append(base, args...)...)
}

// testCreateToken: `kubectl create token` prints a JWT that authenticates
// as the ServiceAccount until the ServiceAccount is deleted.
func testCreateToken(t *testing.T, k *kctl) {
	const issuer = "https://kubernetes.default.svc.cluster.local"
	k.ok(t, "create", "serviceaccount", "robot")
	uid := k.jsonpath(t, "{.metadata.uid}", "serviceaccount", "robot")
	before := time.Now().Unix()
	token := k.ok(t, "create", "token", "robot")
	c := jwtClaims(t, token)
	if c["iss"] != issuer || c["sub"] != "system:serviceaccount:"+k.ns+":robot" {
		t.Errorf("iss %v sub %v", c["iss"], c["sub"])
	}
	if aud, _ := c["aud"].([]any); len(aud) != 1 || aud[0] != issuer {
		t.Errorf("aud %v, want [%s]", c["aud"], issuer)
	}
	iat, exp := int64(c["iat"].(float64)), int64(c["exp"].(float64))
	if iat < before-1 || exp-iat != 3600 {
		t.Errorf("iat %d exp %d: want a one-hour token issued now", iat, exp)
	}
	k8s, _ := json.Marshal(c["kubernetes.io"])
	if want := fmt.Sprintf(`{"namespace":%q,"serviceaccount":{"name":"robot","uid":%q}}`, k.ns, uid); string(k8s) != want {
		t.Errorf("kubernetes.io claims %s, want %s", k8s, want)
	}
	long := jwtClaims(t, k.ok(t, "create", "token", "robot", "--duration=2h", "--audience=vault"))
	if aud, _ := long["aud"].([]any); int64(long["exp"].(float64))-int64(long["iat"].(float64)) != 7200 || len(aud) != 1 || aud[0] != "vault" {
		t.Errorf("--duration=2h --audience=vault: exp-iat %v aud %v", long["exp"].(float64)-long["iat"].(float64), long["aud"])
	}

	// The token authenticates (no RBAC binding grants it pods: the request
	// is forbidden, for the ServiceAccount's user).
	user := "system:serviceaccount:" + k.ns + ":robot"
	r := k.asToken(token, "get", "pods", "-n", k.ns)
	if r.err == nil || !strings.Contains(r.stderr, "Forbidden") || !strings.Contains(r.stderr, `User "`+user+`"`) {
		t.Errorf("get pods with the token: want Forbidden for %s:\n%s", user, r)
	}
	if minor(k.bin.version) >= 28 {
		// auth whoami uses authentication.k8s.io/v1 from kubectl 1.28 on.
		r = k.asToken(token, "auth", "whoami")
		if r.err != nil {
			t.Errorf("auth whoami with the token:\n%s", r)
		}
		out := normalize(r.stdout)
		assertContains(t, out, "Username "+user, "Groups [system:serviceaccounts system:serviceaccounts:"+k.ns+" system:authenticated]",
			"authentication.kubernetes.io/credential-id [JTI="+c["jti"].(string)+"]")
	}

	// The issuer's discovery endpoints, for ServiceAccounts
	// (system:service-account-issuer-discovery).
	r = k.asToken(token, "get", "--raw", "/.well-known/openid-configuration")
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if r.err != nil || json.Unmarshal([]byte(r.stdout), &doc) != nil || doc.Issuer != issuer || !strings.HasSuffix(doc.JWKSURI, "/openid/v1/jwks") {
		t.Errorf("openid-configuration:\n%s", r)
	}
	r = k.asToken(token, "get", "--raw", "/openid/v1/jwks")
	header, _ := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	var h struct{ Kid string }
	_ = json.Unmarshal(header, &h)
	if r.err != nil || h.Kid == "" || !strings.Contains(r.stdout, `"kid":"`+h.Kid+`"`) || !strings.Contains(r.stdout, `"alg":"RS256"`) {
		t.Errorf("jwks does not hold the token's key %q:\n%s", h.Kid, r)
	}

	// Without its ServiceAccount the token is refused (401), once the
	// cached verdict (10s, as upstream) has expired.
	k.ok(t, "delete", "serviceaccount", "robot")
	eventually(t, 20*time.Second, func() string {
		r := k.asToken(token, "get", "--raw", "/api")
		if r.err == nil || !strings.Contains(r.stderr, "Unauthorized") {
			return fmt.Sprintf("the token of a deleted ServiceAccount is not refused with 401:\n%s", r)
		}
		return ""
	})
}

// minor is the minor version of a kubectl gitVersion ("v1.33.1": 33).
func minor(version string) int {
	var major, m int
	fmt.Sscanf(strings.TrimPrefix(version, "v"), "%d.%d", &major, &m)
	return m
}

// tokenSecretYAML is a kubernetes.io/service-account-token Secret for sa,
// as a user writes it: the annotation only.
func tokenSecretYAML(name, sa string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: %s
  annotations:
    kubernetes.io/service-account.name: %s
type: kubernetes.io/service-account-token
`, name, sa)
}

// filledToken waits for the tokens controller to fill the Secret in and
// returns its decoded data.
func filledToken(t *testing.T, k *kctl, name string) map[string]string {
	t.Helper()
	data := map[string]string{}
	eventually(t, 10*time.Second, func() string {
		var s struct{ Data map[string][]byte }
		k.getJSON(t, &s, "secret", name)
		if len(s.Data["token"]) == 0 {
			return "secret/" + name + " got no token"
		}
		for key, v := range s.Data {
			data[key] = string(v)
		}
		return ""
	})
	return data
}

// testSecretToken: a kubernetes.io/service-account-token Secret that a user
// creates is filled in by the tokens controller with a legacy token, which
// authenticates as the ServiceAccount while the Secret holds it; Secrets
// without their ServiceAccount are deleted.
func testSecretToken(t *testing.T, k *kctl) {
	k.ok(t, "create", "serviceaccount", "legacy")
	uid := k.jsonpath(t, "{.metadata.uid}", "serviceaccount", "legacy")
	assertContains(t, k.okStdin(t, tokenSecretYAML("legacy-token", "legacy"), "create", "-f", "-"), "secret/legacy-token created")
	data := filledToken(t, k, "legacy-token")
	caPEM, err := os.ReadFile(k.caFile())
	if err != nil {
		t.Fatal(err)
	}
	if data["ca.crt"] != string(caPEM) || data["namespace"] != k.ns || len(data) != 3 {
		t.Errorf("data keys %d, namespace %q, ca.crt is the cluster CA: %v", len(data), data["namespace"], data["ca.crt"] == string(caPEM))
	}
	if got := k.jsonpath(t, `{.metadata.annotations.kubernetes\.io/service-account\.uid}`, "secret", "legacy-token"); got != uid {
		t.Errorf("service-account.uid annotation %q, want the ServiceAccount's %q", got, uid)
	}
	token := data["token"]
	c := jwtClaims(t, token)
	want := map[string]any{
		"iss":                                    "kubernetes/serviceaccount",
		"sub":                                    "system:serviceaccount:" + k.ns + ":legacy",
		"kubernetes.io/serviceaccount/namespace": k.ns,
		"kubernetes.io/serviceaccount/secret.name":          "legacy-token",
		"kubernetes.io/serviceaccount/service-account.name": "legacy",
		"kubernetes.io/serviceaccount/service-account.uid":  uid,
	}
	if len(c) != len(want) {
		t.Errorf("claims %v, want exactly %v", c, want)
	}
	for key, v := range want {
		if c[key] != v {
			t.Errorf("claim %s = %v, want %v", key, c[key], v)
		}
	}

	user := "system:serviceaccount:" + k.ns + ":legacy"
	if minor(k.bin.version) >= 28 {
		r := k.asToken(token, "auth", "whoami")
		if r.err != nil {
			t.Fatalf("auth whoami with the Secret's token:\n%s", r)
		}
		assertContains(t, normalize(r.stdout), "Username "+user, "UID "+uid,
			"Groups [system:serviceaccounts system:serviceaccounts:"+k.ns+" system:authenticated]")
	} else if r := k.asToken(token, "get", "--raw", "/api"); r.err != nil {
		t.Fatalf("get --raw /api with the Secret's token:\n%s", r)
	}
	if r := k.asToken(token, "get", "pods"); r.err == nil || !strings.Contains(r.stderr, `User "`+user+`"`) {
		t.Errorf("get pods with the token: want Forbidden for %s:\n%s", user, r)
	}
	// Its use is recorded on the Secret, by the day (UTC).
	today := time.Now().UTC().Format("2006-01-02")
	if got := k.jsonpath(t, `{.metadata.labels.kubernetes\.io/legacy-token-last-used}`, "secret", "legacy-token"); got != today && got != time.Now().UTC().AddDate(0, 0, 1).Format("2006-01-02") {
		t.Errorf("legacy-token-last-used label %q, want %s", got, today)
	}

	// And counted, as upstream's serviceaccount_* metrics.
	metricsOut := k.ok(t, "get", "--raw", "/metrics")
	if !regexp.MustCompile(`(?m)^serviceaccount_legacy_manual_token_uses_total [1-9]`).MatchString(metricsOut) ||
		!regexp.MustCompile(`(?m)^serviceaccount_legacy_tokens_total [1-9]`).MatchString(metricsOut) {
		t.Errorf("/metrics does not count the legacy token's use (serviceaccount_legacy_manual_token_uses_total, serviceaccount_legacy_tokens_total)")
	}

	// The API servers record since when they track the uses.
	eventually(t, 10*time.Second, func() string {
		r := k.run("-n", "kube-system", "get", "configmap", "kube-apiserver-legacy-service-account-token-tracking", "-o", "jsonpath={.data.since}")
		if _, err := time.Parse("2006-01-02", strings.TrimSpace(r.stdout)); r.err != nil || err != nil {
			return fmt.Sprintf("kube-system/kube-apiserver-legacy-service-account-token-tracking has no date in since:\n%s", r)
		}
		return ""
	})

	// A Secret labeled invalid no longer authenticates.
	k.okStdin(t, tokenSecretYAML("legacy-invalid", "legacy"), "create", "-f", "-")
	invalid := filledToken(t, k, "legacy-invalid")["token"]
	k.ok(t, "label", "secret", "legacy-invalid", "kubernetes.io/legacy-token-invalid-since=2026-01-01")
	if r := k.asToken(invalid, "get", "--raw", "/api"); r.err == nil || !strings.Contains(r.stderr, "Unauthorized") {
		t.Errorf("the token of a Secret labeled invalid: want 401:\n%s", r)
	}

	// Deleting the Secret revokes its token, once the cached verdict (10s,
	// as upstream) has expired.
	k.ok(t, "delete", "secret", "legacy-token")
	eventually(t, 20*time.Second, func() string {
		if r := k.asToken(token, "get", "--raw", "/api"); r.err == nil || !strings.Contains(r.stderr, "Unauthorized") {
			return fmt.Sprintf("the token of a deleted Secret is not refused with 401:\n%s", r)
		}
		return ""
	})

	// A Secret naming a ServiceAccount that does not exist is deleted; the
	// token Secrets of a deleted ServiceAccount go with it.
	k.okStdin(t, tokenSecretYAML("orphan-token", "nobody"), "create", "-f", "-")
	gone := func(name string) func() string {
		return func() string {
			if r := k.run("get", "secret", name); r.err == nil || !strings.Contains(r.stderr, "NotFound") {
				return "secret/" + name + " still exists"
			}
			return ""
		}
	}
	eventually(t, 10*time.Second, gone("orphan-token"))
	k.ok(t, "delete", "serviceaccount", "legacy")
	eventually(t, 10*time.Second, gone("legacy-invalid"))
}
