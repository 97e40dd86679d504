// Package systemnamespaces creates the system namespaces at start and, as
// upstream's system namespaces controller, again every minute: a deleted
// kube-node-lease (the one deletable system namespace) comes back.
package systemnamespaces

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/klog/v2"
)

// interval is how often missing system namespaces are created again
// (upstream's interval).
const interval = time.Minute

// Names are the namespaces that exist from the first start on.
var Names = []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease}

// Install adds the post-start hook that creates them and keeps them.
func Install(server *genericapiserver.GenericAPIServer) {
	server.AddPostStartHookOrDie("skiff-system-namespaces", func(hookCtx genericapiserver.PostStartHookContext) error {
		if err := ensure(hookCtx, hookCtx.LoopbackClientConfig); err != nil {
			return err
		}
		go wait.Until(func() {
			if err := ensure(hookCtx, hookCtx.LoopbackClientConfig); err != nil && hookCtx.Err() == nil {
				klog.ErrorS(err, "Ensuring the system namespaces")
			}
		}, interval, hookCtx.Done())
		return nil
	})
}

// ensure creates the system namespaces, retrying until the API accepts
// writes.
func ensure(ctx context.Context, loopback *restclient.Config) error {
	client, err := kubernetes.NewForConfig(loopback)
	if err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, name := range Names {
			// Written as upstream's: field manager kube-apiserver.
			_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{FieldManager: "kube-apiserver"})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				klog.V(2).InfoS("Creating system namespace failed, will retry", "namespace", name, "err", err)
				return false, nil
			}
		}
		return true, nil
	})
}
