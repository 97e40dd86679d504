// Package controlplane installs what the API server does besides serving
// requests: its start-up and shutdown hooks and the loops they start, each
// in a package of its own. A new one is added in Install.
package controlplane

import (
	"context"
	"net"

	genericapiserver "k8s.io/apiserver/pkg/server"

	"github.com/skiff-dev/skiff/pkg/controlplane/apiserveridentity"
	"github.com/skiff-dev/skiff/pkg/controlplane/authenticationinfo"
	"github.com/skiff-dev/skiff/pkg/controlplane/bootstrappolicy"
	"github.com/skiff-dev/skiff/pkg/controlplane/kubernetesservice"
	"github.com/skiff-dev/skiff/pkg/controlplane/legacytokentracking"
	"github.com/skiff-dev/skiff/pkg/controlplane/priorityclasses"
	"github.com/skiff-dev/skiff/pkg/controlplane/serviceallocations"
	"github.com/skiff-dev/skiff/pkg/controlplane/systemnamespaces"
	"github.com/skiff-dev/skiff/pkg/registry/core/service"
)

// Config is what the hooks need of the server.
type Config struct {
	// ClientCAFile is the CA of the client certificates the server accepts.
	ClientCAFile string
	// ServiceIP is the kubernetes Service's ClusterIP; AdvertiseIP and
	// SecurePort are where its endpoint reaches this server.
	ServiceIP   net.IP
	AdvertiseIP net.IP
	SecurePort  int
	// Allocators are the ClusterIP and NodePort allocators to repair.
	Allocators *service.Allocators
	// AuthorizerSeesPolicy returns once the authorizer sees the bootstrap
	// RBAC policy.
	AuthorizerSeesPolicy func(context.Context) error
}

// Install adds every hook to server.
func Install(server *genericapiserver.GenericAPIServer, c Config) error {
	systemnamespaces.Install(server)
	if err := bootstrappolicy.Install(server, c.AuthorizerSeesPolicy); err != nil {
		return err
	}
	priorityclasses.Install(server)
	authenticationinfo.Install(server, c.ClientCAFile)
	kubernetesservice.Install(server, c.ServiceIP.String(), c.AdvertiseIP, c.SecurePort)
	apiserveridentity.Install(server)
	serviceallocations.Install(server, c.Allocators)
	// The day from which legacy token Secrets carry their last use.
	legacytokentracking.Install(server)
	return nil
}
