// Package healthcheck is kube-proxy's health server: /healthz and /livez
// answer 200 while the proxier keeps its rules in sync (and, for /healthz,
// while this node is not being deleted), 503 otherwise, as upstream's
// proxier health server; and the health-check node ports of LoadBalancer
// services with externalTrafficPolicy Local.
package healthcheck

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	basemetrics "k8s.io/component-base/metrics"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/skiff-dev/skiff/pkg/proxy/metrics"
)

// ToBeDeletedTaint is the cluster autoscaler's: a node with it is being
// drained, so load balancers should stop sending to it.
const ToBeDeletedTaint = "ToBeDeletedByClusterAutoscaler"

// ProxierHealth is one IP family's proxier health.
type ProxierHealth struct {
	LastUpdated time.Time `json:"lastUpdated"`
	Healthy     bool      `json:"healthy"`
}

// ProxyHealth is the body of /healthz and /livez (upstream's fields).
type ProxyHealth struct {
	LastUpdated  time.Time                     `json:"lastUpdated"`
	CurrentTime  time.Time                     `json:"currentTime"`
	NodeEligible *bool                         `json:"nodeEligible,omitempty"`
	Healthy      bool                          `json:"healthy"`
	Status       map[v1.IPFamily]ProxierHealth `json:"status,omitempty"`
}

// ProxyHealthServer tracks when rules were last synced and when a sync
// was first asked for since: a proxier that leaves a change unsynced for
// longer than the health timeout is unhealthy.
type ProxyHealthServer struct {
	addr          string
	healthTimeout time.Duration
	clock         clock.Clock
	// node is this node as last seen; nil if unknown.
	node func() *v1.Node

	mu            sync.RWMutex
	lastUpdated   map[v1.IPFamily]time.Time
	oldestPending map[v1.IPFamily]time.Time
}

// NewProxyHealthServer serves on addr; node tells this node's object.
func NewProxyHealthServer(addr string, healthTimeout time.Duration, node func() *v1.Node) *ProxyHealthServer {
	return newProxyHealthServer(addr, healthTimeout, node, clock.RealClock{})
}

func newProxyHealthServer(addr string, healthTimeout time.Duration, node func() *v1.Node, c clock.Clock) *ProxyHealthServer {
	return &ProxyHealthServer{addr: addr, healthTimeout: healthTimeout, clock: c, node: node,
		lastUpdated: map[v1.IPFamily]time.Time{}, oldestPending: map[v1.IPFamily]time.Time{}}
}

// Updated: family's rules were just synced (or the proxier started).
func (hs *ProxyHealthServer) Updated(family v1.IPFamily) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	delete(hs.oldestPending, family)
	hs.lastUpdated[family] = hs.clock.Now()
}

// QueuedUpdate: a sync of family's rules was asked for.
func (hs *ProxyHealthServer) QueuedUpdate(family v1.IPFamily) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if _, ok := hs.oldestPending[family]; !ok {
		hs.oldestPending[family] = hs.clock.Now()
	}
}

// Health is the proxiers' health now.
func (hs *ProxyHealthServer) Health() ProxyHealth {
	hs.mu.RLock()
	defer hs.mu.RUnlock()
	h := ProxyHealth{Healthy: true, Status: map[v1.IPFamily]ProxierHealth{}, CurrentTime: hs.clock.Now()}
	for family, at := range hs.lastUpdated {
		if at.After(h.LastUpdated) {
			h.LastUpdated = at
		}
		healthy := true
		if pending, ok := hs.oldestPending[family]; ok && h.CurrentTime.Sub(pending) >= hs.healthTimeout {
			healthy = false
			h.Healthy = false
		}
		h.Status[family] = ProxierHealth{LastUpdated: at, Healthy: healthy}
	}
	return h
}

// NodeEligible: this node is known and neither being deleted nor drained
// by the autoscaler.
func (hs *ProxyHealthServer) NodeEligible() bool {
	node := hs.node()
	if node == nil || node.DeletionTimestamp != nil {
		return false
	}
	for _, t := range node.Spec.Taints {
		if t.Key == ToBeDeletedTaint {
			return false
		}
	}
	return true
}

// Handler serves /healthz and /livez.
func (hs *ProxyHealthServer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		h := hs.Health()
		eligible := hs.NodeEligible()
		h.NodeEligible = &eligible
		hs.answer(w, h, h.Healthy && eligible, metrics.ProxyHealthzTotal)
	})
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) {
		h := hs.Health()
		hs.answer(w, h, h.Healthy, metrics.ProxyLivezTotal)
	})
	return mux
}

// answer writes h: 200 when healthy (lastUpdated then is now, as
// upstream's), 503 otherwise.
func (hs *ProxyHealthServer) answer(w http.ResponseWriter, h ProxyHealth, healthy bool, counter *basemetrics.CounterVec) {
	code := http.StatusServiceUnavailable
	if healthy {
		code = http.StatusOK
		h.LastUpdated = hs.clock.Now()
	}
	counter.WithLabelValues(strconv.Itoa(code)).Inc()
	writeJSON(w, code, h)
}

// Run serves until ctx ends.
func (hs *ProxyHealthServer) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", hs.addr)
	if err != nil {
		return err
	}
	return serve(ctx, ln, hs.Handler())
}

// serve serves handler on ln until ctx ends.
func serve(ctx context.Context, ln net.Listener, handler http.Handler) error {
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	klog.V(3).InfoS("Serving", "address", ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}
