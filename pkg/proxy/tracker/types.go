// Package tracker follows Services and EndpointSlices (discovery.k8s.io/v1,
// joined by the kubernetes.io/service-name label) as upstream kube-proxy's
// change trackers do: informer events are accumulated per Service, and each
// sync applies them to a ServicePortMap and an EndpointsMap that a proxier
// turns into rules.
package tracker

import (
	"net"
	"strconv"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ServicePortName names one port of a Service, as upstream's: its String
// ("ns/name:port") is what chain names are hashed from.
type ServicePortName struct {
	types.NamespacedName
	Port     string
	Protocol v1.Protocol
}

func (n ServicePortName) String() string {
	if n.Port == "" {
		return n.NamespacedName.String()
	}
	return n.NamespacedName.String() + ":" + n.Port
}

// ServicePort is what the proxy needs of one Service port in one IP family.
type ServicePort struct {
	ClusterIP net.IP
	Port      int
	Protocol  v1.Protocol
	NodePort  int
	// ExternalIPs and LoadBalancerVIPs are of the tracker's family only;
	// ingress IPs with ipMode Proxy are left to the load balancer.
	ExternalIPs              []net.IP
	LoadBalancerVIPs         []net.IP
	LoadBalancerSourceRanges []*net.IPNet
	SessionAffinity          v1.ServiceAffinity
	// StickyMaxAgeSeconds is the ClientIP affinity's timeout.
	StickyMaxAgeSeconds int
	// HealthCheckNodePort is set for LoadBalancer services with
	// externalTrafficPolicy Local.
	HealthCheckNodePort int
	ExternalPolicyLocal bool
	InternalPolicyLocal bool
}

// ExternallyAccessible: reachable by NodePort, load-balancer or external IPs.
func (p *ServicePort) ExternallyAccessible() bool {
	return p.NodePort != 0 || len(p.LoadBalancerVIPs) != 0 || len(p.ExternalIPs) != 0
}

// UsesClusterEndpoints: some traffic to the port goes to endpoints on any node.
func (p *ServicePort) UsesClusterEndpoints() bool {
	return !p.InternalPolicyLocal || p.ExternallyAccessible()
}

// UsesLocalEndpoints: some traffic to the port goes to this node's endpoints only.
func (p *ServicePort) UsesLocalEndpoints() bool {
	return p.InternalPolicyLocal || (p.ExternalPolicyLocal && p.ExternallyAccessible())
}

func (p *ServicePort) String() string {
	return net.JoinHostPort(p.ClusterIP.String(), strconv.Itoa(p.Port)) + "/" + string(p.Protocol)
}

// Endpoint is one address of an EndpointSlice for one service port.
type Endpoint struct {
	IP   string
	Port int
	// NodeName and Zone are the endpoint's, as its slice says.
	NodeName string
	Zone     string
	// Local: on this proxy's node.
	Local       bool
	Ready       bool
	Serving     bool
	Terminating bool
}

// String is "ip:port", what endpoint chain names are hashed from.
func (e *Endpoint) String() string {
	return net.JoinHostPort(e.IP, strconv.Itoa(e.Port))
}
