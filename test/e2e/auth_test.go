package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestUnauthenticated talks to the shared server with plain net/http,
// trusting its CA but presenting no client certificate.
func TestUnauthenticated(t *testing.T) {
	srv := sharedServer(t)
	client, err := anonymousClient(srv)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		t.Helper()
		code, body, err := httpGet(client, srv.URL+path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return code, body
	}

	for _, path := range []string{"/api/v1/namespaces", "/api/v1/namespaces/default/secrets", "/apis/apps/v1/deployments", "/metrics"} {
		code, body := get(path)
		if code != http.StatusUnauthorized && code != http.StatusForbidden {
			t.Errorf("anonymous GET %s: status %d, want 401 or 403; body: %.500s", path, code, body)
		}
		if strings.Contains(body, `"items"`) {
			t.Errorf("anonymous GET %s returned a list: %.500s", path, body)
		}
	}

	for _, path := range []string{"/healthz", "/livez", "/readyz"} {
		code, body := get(path)
		if code != http.StatusOK || strings.TrimSpace(body) != "ok" {
			t.Errorf("anonymous GET %s: status %d body %q, want 200 \"ok\"", path, code, body)
		}
	}

	code, body := get("/version")
	var v struct{ GitVersion string }
	if code != http.StatusOK {
		t.Fatalf("anonymous GET /version: status %d, want 200; body: %.500s", code, body)
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil || !strings.HasPrefix(v.GitVersion, "v1.37") {
		t.Errorf("anonymous GET /version: gitVersion %q (%v), want v1.37.*; body: %.500s", v.GitVersion, err, body)
	}
}
