package core

import (
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/registry/rest"
	proxymetrics "k8s.io/apiserver/pkg/util/proxy/metrics"

	"github.com/skiff-dev/skiff/pkg/kubeletclient"
	"github.com/skiff-dev/skiff/pkg/registry/core/node"
	"github.com/skiff-dev/skiff/pkg/registry/core/pod"
	// The option kinds of the subresources below decode from the query.
	_ "github.com/skiff-dev/skiff/pkg/registry/core/queryparams"
	"github.com/skiff-dev/skiff/pkg/registry/core/service"
	"github.com/skiff-dev/skiff/pkg/registry/store"
)

// Connections are what the subresources served by nodes and pods reach
// them with.
type Connections struct {
	// Kubelet is the --kubelet-* connection.
	Kubelet kubeletclient.Config
	// EndpointSlices find a service's endpoints for services/proxy; nil:
	// services/proxy answers 503 (no endpoints).
	EndpointSlices service.EndpointSliceGetter
	// Authorizer checks "create" on WebSocket exec, attach and
	// portforward (their GET is authorized as "get").
	Authorizer authorizer.Authorizer
}

// addConnectSubresources adds pods/{log,exec,attach,portforward,proxy},
// nodes/proxy and services/proxy to m.
func addConnectSubresources(m map[string]rest.Storage, c Connections) error {
	proxymetrics.Register()
	pods := m["pods"].(*store.REST).Store
	nodes := m["nodes"].(*store.REST).Store
	services := m["services"].(*store.REST).Store
	kubelet, err := kubeletclient.New(nodes, c.Kubelet)
	if err != nil {
		return err
	}
	transport := kubeletclient.ProxyTransport()
	m["pods/log"] = &pod.LogREST{Pods: pods, Kubelet: kubelet}
	m["pods/exec"] = &pod.ExecREST{Pods: pods, Kubelet: kubelet, Authorizer: c.Authorizer}
	m["pods/attach"] = &pod.AttachREST{Pods: pods, Kubelet: kubelet, Authorizer: c.Authorizer}
	m["pods/portforward"] = &pod.PortForwardREST{Pods: pods, Kubelet: kubelet, Authorizer: c.Authorizer}
	m["pods/proxy"] = &pod.ProxyREST{Pods: pods, Transport: transport}
	m["nodes/proxy"] = &node.ProxyREST{Kubelet: kubelet, Transport: transport}
	m["services/proxy"] = &service.ProxyREST{Services: services, Pods: pods, EndpointSlices: c.EndpointSlices, Transport: transport}
	return nil
}
