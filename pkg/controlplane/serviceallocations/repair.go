// Package serviceallocations runs the repair loop of the ClusterIP and
// NodePort allocators (pkg/registry/core/service) in the API server, as
// kube-apiserver runs its repair controllers.
package serviceallocations

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	clientevents "k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/apis"
	"github.com/skiff-dev/skiff/pkg/registry/core/service"
)

// Install adds the post-start hook that repairs allocators.
func Install(server *genericapiserver.GenericAPIServer, allocators *service.Allocators) {
	server.AddPostStartHookOrDie("skiff-repair-service-allocations", func(hookCtx genericapiserver.PostStartHookContext) error {
		return repair(hookCtx, hookCtx.LoopbackClientConfig, allocators)
	})
}

// repair makes the ClusterIP and NodePort bitmaps agree
// with the Services once before the server is ready (so that allocations of
// objects written before a crash stay taken), then every
// service.RepairInterval while the server runs.
func repair(ctx context.Context, loopback *restclient.Config, allocators *service.Allocators) error {
	client, err := kubernetes.NewForConfig(loopback)
	if err != nil {
		return err
	}
	broadcaster := clientevents.NewBroadcaster(&clientevents.EventSinkImpl{Interface: client.EventsV1()})
	broadcaster.StartRecordingToSink(ctx.Done())
	repairer := &service.Repairer{
		Allocators: allocators,
		List: func(ctx context.Context) ([]corev1.Service, error) {
			list, err := client.CoreV1().Services(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, err
			}
			return list.Items, nil
		},
		IPEvents:   broadcaster.NewRecorder(apis.Scheme, "ipallocator-repair-controller"),
		PortEvents: broadcaster.NewRecorder(apis.Scheme, "portallocator-repair-controller"),
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := repairer.RunOnce(ctx); err != nil {
			klog.V(2).InfoS("Repairing service allocations failed, will retry", "err", err)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	go repairer.Run(ctx, service.RepairInterval)
	return nil
}
