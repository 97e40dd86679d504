package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeAuth: bearer tokens name users; allow decides.
type fakeAuth struct {
	mu    sync.Mutex
	allow func(authorizer.Attributes) (authorizer.Decision, error)
	asked []authorizer.Attributes
}

func (f *fakeAuth) AuthenticateRequest(r *http.Request) (*authenticator.Response, bool, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return nil, false, nil
	}
	if tok == "broken" {
		return nil, false, errors.New("token review failed")
	}
	return &authenticator.Response{User: &user.DefaultInfo{Name: tok}}, true, nil
}

func (f *fakeAuth) Authorize(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	f.mu.Lock()
	f.asked = append(f.asked, a)
	f.mu.Unlock()
	if f.allow == nil {
		return authorizer.DecisionAllow, "", nil
	}
	d, err := f.allow(a)
	return d, "", err
}

type fakePods []*corev1.Pod

func (p fakePods) Pods() []*corev1.Pod { return p }

type fakeRuntime struct{ rs internalapi.RuntimeService }

func (f fakeRuntime) RuntimeService() internalapi.RuntimeService { return f.rs }

func do(t *testing.T, h http.Handler, method, target, token string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func newTestServer(t *testing.T, auth Auth, pods PodSource, rt Runtime) *Server {
	t.Helper()
	s, err := New(Config{NodeName: "node-1", Auth: auth, Pods: pods, Runtime: rt})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRequestAttributes(t *testing.T) {
	cases := []struct {
		method, path string
		verb         string
		subresources []string
	}{
		{"GET", "/pods", "get", []string{"pods", "proxy"}},
		{"GET", "/pods/", "get", []string{"pods", "proxy"}},
		{"GET", "/runningpods/", "get", []string{"pods", "proxy"}},
		{"GET", "/allocatedPods/ns/p", "get", []string{"pods", "proxy"}},
		{"GET", "/podsx", "get", []string{"proxy"}},
		{"GET", "/healthz", "get", []string{"healthz", "proxy"}},
		{"GET", "/healthz/syncloop", "get", []string{"healthz", "proxy"}},
		{"GET", "/configz", "get", []string{"configz", "proxy"}},
		{"GET", "/flagz", "get", []string{"configz"}},
		{"GET", "/statusz", "get", []string{"statusz"}},
		{"GET", "/stats/summary", "get", []string{"stats"}},
		{"POST", "/stats/summary", "create", []string{"stats"}},
		{"GET", "/stats", "get", []string{"stats"}},
		{"GET", "/metrics", "get", []string{"metrics"}},
		{"GET", "/metrics/resource", "get", []string{"metrics"}},
		{"GET", "/metrics/cadvisor", "get", []string{"metrics"}},
		{"GET", "/logs/syslog", "get", []string{"log"}},
		{"POST", "/checkpoint/ns/p/c", "create", []string{"checkpoint"}},
		{"GET", "/spec", "get", []string{"proxy"}},
		{"GET", "/containerLogs/ns/p/c", "get", []string{"proxy"}},
		{"GET", "/exec/ns/p/c", "get", []string{"proxy"}},
		{"POST", "/exec/ns/p/c", "create", []string{"proxy"}},
		{"POST", "/attach/ns/p/c", "create", []string{"proxy"}},
		{"GET", "/portForward/ns/p", "get", []string{"proxy"}},
		{"POST", "/run/ns/p/c", "create", []string{"proxy"}},
		{"PUT", "/pods", "update", []string{"pods", "proxy"}},
		{"PATCH", "/spec", "patch", []string{"proxy"}},
		{"DELETE", "/metrics", "delete", []string{"metrics"}},
		{"HEAD", "/spec", "", []string{"proxy"}},
	}
	u := &user.DefaultInfo{Name: "alice"}
	for _, c := range cases {
		attrs := RequestAttributes("node-1", u, httptest.NewRequest(c.method, c.path, nil))
		var subs []string
		for _, a := range attrs {
			subs = append(subs, a.GetSubresource())
			if a.GetVerb() != c.verb || a.GetResource() != "nodes" || a.GetName() != "node-1" || a.GetAPIVersion() != "v1" || !a.IsResourceRequest() || a.GetUser().GetName() != "alice" || a.GetPath() != c.path {
				t.Errorf("%s %s: attributes %+v", c.method, c.path, a)
			}
		}
		if fmt.Sprint(subs) != fmt.Sprint(c.subresources) {
			t.Errorf("%s %s: subresources %v, want %v", c.method, c.path, subs, c.subresources)
		}
	}
}

func TestAuthFilter(t *testing.T) {
	auth := &fakeAuth{}
	s := newTestServer(t, auth, fakePods{}, nil)
	h := s.Handler()

	if code, body := do(t, h, "GET", "/pods", ""); code != 401 || body != "Unauthorized" {
		t.Errorf("no credentials: %d %q", code, body)
	}
	if code, body := do(t, h, "GET", "/pods", "broken"); code != 401 || body != "Unauthorized" {
		t.Errorf("authenticator error: %d %q", code, body)
	}

	auth.allow = func(authorizer.Attributes) (authorizer.Decision, error) { return authorizer.DecisionNoOpinion, nil }
	if code, body := do(t, h, "GET", "/pods", "alice"); code != 403 || body != "Forbidden (user=alice, verb=get, resource=nodes, subresource(s)=[pods proxy])\n" {
		t.Errorf("denied /pods: %d %q", code, body)
	}
	if code, body := do(t, h, "POST", "/exec/ns/p/c", "alice"); code != 403 || body != "Forbidden (user=alice, verb=create, resource=nodes, subresource(s)=[proxy])\n" {
		t.Errorf("denied exec: %d %q", code, body)
	}

	// nodes/proxy alone still reaches /pods: the fallback.
	auth.allow = func(a authorizer.Attributes) (authorizer.Decision, error) {
		if a.GetSubresource() == "proxy" {
			return authorizer.DecisionAllow, nil
		}
		return authorizer.DecisionDeny, nil
	}
	if code, body := do(t, h, "GET", "/pods", "bob"); code != 200 {
		t.Errorf("proxy-allowed /pods: %d %q", code, body)
	}
	if code, _ := do(t, h, "GET", "/stats/summary", "bob"); code != 403 {
		t.Errorf("proxy-allowed /stats/summary: %d, want 403", code)
	}
	// nodes/pods alone as well, asked first.
	auth.asked = nil
	auth.allow = func(a authorizer.Attributes) (authorizer.Decision, error) {
		if a.GetSubresource() == "pods" {
			return authorizer.DecisionAllow, nil
		}
		return authorizer.DecisionDeny, nil
	}
	if code, _ := do(t, h, "GET", "/pods", "carol"); code != 200 || len(auth.asked) != 1 {
		t.Errorf("pods-allowed /pods: %d after %d checks", code, len(auth.asked))
	}

	auth.allow = func(authorizer.Attributes) (authorizer.Decision, error) {
		return authorizer.DecisionNoOpinion, errors.New("SAR failed")
	}
	if code, body := do(t, h, "GET", "/metrics", "dave"); code != 500 || body != "Authorization error (user=dave, verb=get, resource=nodes, subresource=metrics)" {
		t.Errorf("authorizer error: %d %q", code, body)
	}
}

func TestPodsAndHealthz(t *testing.T) {
	pods := fakePods{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "u1"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "dns", UID: "u2"}},
	}
	unhealthy := errors.New("PLEG is not healthy")
	var healthErr error
	s, err := New(Config{NodeName: "node-1", Auth: &fakeAuth{}, Pods: pods, SyncLoopHealthy: func(*http.Request) error { return healthErr }})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	code, body := do(t, h, "GET", "/pods", "alice")
	if code != 200 || !strings.HasPrefix(body, `{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[{"metadata":{"name":"web","namespace":"default","uid":"u1"}`) || !strings.Contains(body, `"name":"dns"`) {
		t.Errorf("/pods: %d %s", code, body)
	}
	if code, _ := do(t, h, "POST", "/pods", "alice"); code != 405 {
		t.Errorf("POST /pods: %d, want 405", code)
	}
	if code, body := do(t, h, "GET", "/healthz", "alice"); code != 200 || body != "ok" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	healthErr = unhealthy
	if code, body := do(t, h, "GET", "/healthz", "alice"); code != 500 || !strings.Contains(body, "[-]syncloop failed") {
		t.Errorf("/healthz with a failing sync loop: %d %q", code, body)
	}
	if code, _ := do(t, h, "GET", "/healthz/ping", "alice"); code != 200 {
		t.Errorf("/healthz/ping: %d", code)
	}
	if code, body := do(t, h, "GET", "/spec", "alice"); code != 200 || !strings.Contains(body, `"num_cores":`) || !strings.Contains(body, `"memory_capacity":`) {
		t.Errorf("/spec: %d %s", code, body)
	}
	if code, _ := do(t, h, "GET", "/nothing", "alice"); code != 404 {
		t.Errorf("/nothing: %d", code)
	}
}

func TestMetrics(t *testing.T) {
	rs := newFakeCRI()
	rs.addSandbox("sb1", "default", "web", "u1", true)
	rs.addSandbox("sb2", "default", "old", "u2", false)
	rs.addContainer("c1", "sb1", "app", runtimeapi.ContainerState_CONTAINER_RUNNING, "")
	rs.addContainer("c2", "sb1", "side", runtimeapi.ContainerState_CONTAINER_EXITED, "")
	pods := fakePods{{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "u1"}}}
	s := newTestServer(t, &fakeAuth{}, pods, fakeRuntime{rs})
	code, body := do(t, s.Handler(), "GET", "/metrics", "alice")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		"kubelet_running_pods 1\n",
		`kubelet_running_containers{container_state="running"} 1` + "\n",
		`kubelet_running_containers{container_state="exited"} 1` + "\n",
		`kubelet_desired_pods{static="false"} 1` + "\n",
		"# HELP kubelet_running_pods [ALPHA] Number of pods that have a running pod sandbox",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
