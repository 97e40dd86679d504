package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// ServiceHealthServer serves the health-check node ports: a load balancer
// asks each node whether it has local endpoints of the service (200) or
// not (503).
type ServiceHealthServer struct {
	// host is the address to listen on ("" or "0.0.0.0": all).
	host  string
	proxy *ProxyHealthServer

	mu       sync.RWMutex
	services map[types.NamespacedName]*serviceHealth
}

type serviceHealth struct {
	port      uint16
	server    *http.Server
	endpoints int
}

// NewServiceHealthServer listens on host (empty: every address); proxy's
// health is part of each answer.
func NewServiceHealthServer(host string, proxy *ProxyHealthServer) *ServiceHealthServer {
	return &ServiceHealthServer{host: host, proxy: proxy, services: map[types.NamespacedName]*serviceHealth{}}
}

// SyncServices opens the ports of services (service -> health-check node
// port) and closes the others.
func (s *ServiceHealthServer) SyncServices(services map[types.NamespacedName]uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, h := range s.services {
		if port, ok := services[name]; !ok || port != h.port {
			klog.V(2).InfoS("Closing healthcheck", "service", name, "port", h.port)
			_ = h.server.Close()
			delete(s.services, name)
		}
	}
	for name, port := range services {
		if s.services[name] != nil {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(s.host, strconv.Itoa(int(port))))
		if err != nil {
			klog.ErrorS(err, "Failed to start healthcheck", "service", name, "port", port)
			continue
		}
		klog.V(2).InfoS("Opening healthcheck", "service", name, "port", port)
		h := &serviceHealth{port: port}
		h.server = &http.Server{Handler: s.handler(name), ReadHeaderTimeout: 10 * time.Second}
		s.services[name] = h
		go func() {
			if err := h.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				klog.ErrorS(err, "Healthcheck closed", "service", name)
			}
		}()
	}
}

// SyncEndpoints sets each service's count of local ready endpoints.
func (s *ServiceHealthServer) SyncEndpoints(counts map[types.NamespacedName]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, h := range s.services {
		h.endpoints = counts[name]
	}
}

// Close closes every port.
func (s *ServiceHealthServer) Close() {
	s.SyncServices(nil)
}

// Run closes every port when ctx ends.
func (s *ServiceHealthServer) Run(ctx context.Context) {
	<-ctx.Done()
	s.Close()
}

func (s *ServiceHealthServer) handler(name types.NamespacedName) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.mu.RLock()
		h, ok := s.services[name]
		count := 0
		if ok {
			count = h.endpoints
		}
		s.mu.RUnlock()
		if !ok {
			return
		}
		healthy := s.proxy == nil || s.proxy.Health().Healthy
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Load-Balancing-Endpoint-Weight", strconv.Itoa(count))
		if count != 0 && healthy {
			w.WriteHeader(http.StatusOK)
		} else {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintf(w, "{\n\t\"service\": {\n\t\t\"namespace\": %q,\n\t\t\"name\": %q\n\t},\n\t\"localEndpoints\": %d,\n\t\"serviceProxyHealthy\": %v\n}",
			name.Namespace, name.Name, count, healthy)
	})
}
