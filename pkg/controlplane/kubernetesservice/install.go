package kubernetesservice

import (
	"net"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
)

// Install announces the server at address:port as an endpoint of the
// kubernetes Service (ClusterIP serviceIP) from start, and withdraws it
// when the server shuts down.
func Install(server *genericapiserver.GenericAPIServer, serviceIP string, address net.IP, port int) {
	var announcer *Reconciler
	server.AddPostStartHookOrDie("skiff-kubernetes-service", func(hookCtx genericapiserver.PostStartHookContext) error {
		// It writes the kubernetes Endpoints on purpose: no deprecation
		// warning in the log every ten seconds.
		quiet := restclient.CopyConfig(hookCtx.LoopbackClientConfig)
		quiet.WarningHandler = restclient.NoWarnings{}
		client, err := kubernetes.NewForConfig(quiet)
		if err != nil {
			return err
		}
		announcer = &Reconciler{Client: client, ServiceIP: serviceIP, Address: address, Port: port}
		go announcer.Run(hookCtx)
		return nil
	})
	server.AddPreShutdownHookOrDie("skiff-withdraw-endpoint", func() error {
		if announcer == nil {
			return nil
		}
		return announcer.Withdraw()
	})
}
