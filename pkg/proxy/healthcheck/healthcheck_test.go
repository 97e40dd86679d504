package healthcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
)

func get(t *testing.T, h http.Handler, path string) (int, ProxyHealth) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	var body ProxyHealth
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s: %v: %s", path, err, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", path, ct)
	}
	return rec.Code, body
}

func TestProxyHealth(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	var node *v1.Node
	hs := newProxyHealthServer("", 30*time.Second, func() *v1.Node { return node }, clk)
	h := hs.Handler()

	// Node unknown: /healthz fails, /livez does not.
	hs.Updated(v1.IPv4Protocol)
	if code, body := get(t, h, "/healthz"); code != http.StatusServiceUnavailable || body.NodeEligible == nil || *body.NodeEligible {
		t.Errorf("/healthz without a node: %d %+v", code, body)
	}
	if code, _ := get(t, h, "/livez"); code != http.StatusOK {
		t.Errorf("/livez without a node: %d", code)
	}

	node = &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}}
	code, body := get(t, h, "/healthz")
	if code != http.StatusOK || !body.Healthy || !*body.NodeEligible || !body.LastUpdated.Equal(clk.Now()) || !body.CurrentTime.Equal(clk.Now()) {
		t.Errorf("/healthz synced: %d %+v", code, body)
	}

	// A queued update not synced within the timeout: unhealthy.
	hs.QueuedUpdate(v1.IPv4Protocol)
	clk.Step(29 * time.Second)
	if code, _ := get(t, h, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz within the timeout: %d", code)
	}
	clk.Step(2 * time.Second)
	code, body = get(t, h, "/livez")
	if code != http.StatusServiceUnavailable || body.Healthy || body.Status[v1.IPv4Protocol].Healthy {
		t.Errorf("/livez stale: %d %+v", code, body)
	}
	hs.Updated(v1.IPv4Protocol)
	if code, _ := get(t, h, "/livez"); code != http.StatusOK {
		t.Errorf("/livez after a sync: %d", code)
	}

	// A node being drained is not eligible.
	node.Spec.Taints = []v1.Taint{{Key: ToBeDeletedTaint, Effect: v1.TaintEffectNoSchedule}}
	if code, _ := get(t, h, "/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz of a drained node: %d", code)
	}
}

func freePort(t *testing.T) uint16 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

func TestServiceHealth(t *testing.T) {
	hs := NewProxyHealthServer("", time.Minute, func() *v1.Node { return &v1.Node{} })
	hs.Updated(v1.IPv4Protocol)
	s := NewServiceHealthServer("127.0.0.1", hs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	name := types.NamespacedName{Namespace: "ns", Name: "lb"}
	port := freePort(t)
	s.SyncServices(map[types.NamespacedName]uint16{name: port})
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	check := func(want int, weight string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want || resp.Header.Get("X-Load-Balancing-Endpoint-Weight") != weight {
			t.Errorf("status %d weight %q, want %d %q: %s", resp.StatusCode, resp.Header.Get("X-Load-Balancing-Endpoint-Weight"), want, weight, body)
		}
		var parsed struct {
			Service        map[string]string `json:"service"`
			LocalEndpoints int               `json:"localEndpoints"`
		}
		if err := json.Unmarshal(body, &parsed); err != nil || parsed.Service["name"] != "lb" {
			t.Errorf("body %s: %v", body, err)
		}
	}
	check(http.StatusServiceUnavailable, "0")
	s.SyncEndpoints(map[types.NamespacedName]int{name: 2})
	check(http.StatusOK, "2")
	s.SyncServices(nil)
	if _, err := http.Get(url); err == nil {
		t.Error("the port still answers after its service went")
	}
}
