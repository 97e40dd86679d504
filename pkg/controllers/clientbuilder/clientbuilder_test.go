package clientbuilder

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/transport"
)

// issuer is a fake API whose TokenRequests return token-1, token-2, ...
// valid for lifetime.
type issuer struct {
	*fake.Clientset
	mu       sync.Mutex
	issued   int
	lifetime time.Duration
}

func newIssuer(lifetime time.Duration) *issuer {
	i := &issuer{Clientset: fake.NewClientset(), lifetime: lifetime}
	i.PrependReactor("create", "serviceaccounts", func(action clienttesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() != "token" {
			return false, nil, nil
		}
		req := action.(clienttesting.CreateAction).GetObject().(*authenticationv1.TokenRequest)
		if req.Spec.ExpirationSeconds == nil || *req.Spec.ExpirationSeconds != DefaultExpirationSeconds {
			return true, nil, fmt.Errorf("expirationSeconds %v, want %d", req.Spec.ExpirationSeconds, DefaultExpirationSeconds)
		}
		i.mu.Lock()
		defer i.mu.Unlock()
		i.issued++
		return true, &authenticationv1.TokenRequest{Status: authenticationv1.TokenRequestStatus{
			Token: fmt.Sprintf("token-%d", i.issued), ExpirationTimestamp: metav1.NewTime(time.Now().Add(i.lifetime)),
		}}, nil
	})
	return i
}

func (i *issuer) count() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.issued
}

func builderFor(root *rest.Config, client kubernetes.Interface) *saBuilder {
	return &saBuilder{root: root, client: client, namespace: "kube-system", expirationSeconds: DefaultExpirationSeconds,
		sources: map[string]transport.ResettableTokenSource{}}
}

// apiServer records the Authorization and User-Agent headers and answers
// 401 to the tokens in rejected.
type apiServer struct {
	mu         sync.Mutex
	auth, ua   []string
	rejected   map[string]bool
	httpServer *httptest.Server
}

func newAPIServer(t *testing.T) *apiServer {
	s := &apiServer{rejected: map[string]bool{}}
	s.httpServer = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.auth = append(s.auth, r.Header.Get("Authorization"))
		s.ua = append(s.ua, r.Header.Get("User-Agent"))
		if s.rejected[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")] {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"kind":"NamespaceList","apiVersion":"v1","items":[]}`)
	}))
	t.Cleanup(s.httpServer.Close)
	return s
}

func (s *apiServer) last() (auth, ua string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.auth[len(s.auth)-1], s.ua[len(s.ua)-1]
}

func listNamespaces(t *testing.T, cfg *rest.Config) error {
	t.Helper()
	_, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
	return err
}

// TestServiceAccountCredentials: a controller's requests carry its own
// ServiceAccount's token, never the root credentials; the ServiceAccount is
// created; one token serves all of the controller's configs until the
// server refuses it.
func TestServiceAccountCredentials(t *testing.T) {
	api := newAPIServer(t)
	iss := newIssuer(time.Hour)
	root := &rest.Config{Host: api.httpServer.URL, BearerToken: "root-secret", Username: "u", Password: "p"}
	b := builderFor(root, iss)

	cfg, err := b.Config("namespace-controller")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BearerToken != "" || cfg.Username != "" || cfg.Password != "" {
		t.Fatalf("config carries root credentials: %+v", cfg)
	}
	if err := listNamespaces(t, cfg); err != nil {
		t.Fatal(err)
	}
	auth, ua := api.last()
	if auth != "Bearer token-1" {
		t.Errorf("Authorization %q, want the ServiceAccount's token-1", auth)
	}
	if !strings.HasSuffix(ua, "/system:serviceaccount:kube-system:namespace-controller") {
		t.Errorf("User-Agent %q", ua)
	}
	if _, err := iss.CoreV1().ServiceAccounts("kube-system").Get(context.Background(), "namespace-controller", metav1.GetOptions{}); err != nil {
		t.Errorf("the ServiceAccount was not created: %v", err)
	}

	// Another config of the same controller: the same token.
	again, _ := b.Config("namespace-controller")
	if err := listNamespaces(t, again); err != nil {
		t.Fatal(err)
	}
	if auth, _ := api.last(); auth != "Bearer token-1" || iss.count() != 1 {
		t.Errorf("second config: Authorization %q after %d TokenRequests, want token-1 after 1", auth, iss.count())
	}

	// Another controller: its own token.
	other, _ := b.Config("certificate-controller")
	if err := listNamespaces(t, other); err != nil {
		t.Fatal(err)
	}
	if auth, _ := api.last(); auth != "Bearer token-2" {
		t.Errorf("certificate-controller's Authorization %q, want token-2", auth)
	}

	// Refused (the ServiceAccount was deleted, say): the next request gets
	// a new token.
	api.mu.Lock()
	api.rejected["token-1"] = true
	api.mu.Unlock()
	if err := listNamespaces(t, cfg); err == nil {
		t.Fatal("a refused token gave no error")
	}
	if err := listNamespaces(t, cfg); err != nil {
		t.Fatalf("after a 401: %v", err)
	}
	if auth, _ := api.last(); auth != "Bearer token-3" {
		t.Errorf("Authorization after a 401: %q, want a new token-3", auth)
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	for _, a := range api.auth {
		if strings.Contains(a, "root-secret") || strings.HasPrefix(a, "Basic") {
			t.Errorf("a request carried the root credentials: %q", a)
		}
	}
}

// TestRenewal: a token is used until a fifth of its lifetime is left, and
// lifetimes shorter than TokenRequest's minimum (clock skew) count as it.
func TestRenewal(t *testing.T) {
	for _, tc := range []struct {
		lifetime, want time.Duration
	}{
		{time.Hour, 48 * time.Minute},
		{time.Minute, 8 * time.Minute},
	} {
		src := &tokenSource{b: builderFor(&rest.Config{}, newIssuer(tc.lifetime)), name: "x"}
		tok, err := src.Token()
		if err != nil {
			t.Fatal(err)
		}
		if got := time.Until(tok.Expiry); got > tc.want || got < tc.want-time.Minute {
			t.Errorf("lifetime %s: renewed in %s, want %s", tc.lifetime, got, tc.want)
		}
	}
}

// TestRoot: the root builder keeps the credentials and names the
// controller in the user agent.
func TestRoot(t *testing.T) {
	cfg, _ := Root(&rest.Config{BearerToken: "root"}).Config("namespace-controller")
	if cfg.BearerToken != "root" || !strings.HasSuffix(cfg.UserAgent, "/namespace-controller") {
		t.Errorf("root config %q %q", cfg.BearerToken, cfg.UserAgent)
	}
}
