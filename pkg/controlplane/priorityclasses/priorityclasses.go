// Package priorityclasses creates the system priority classes
// (system-node-critical, system-cluster-critical) at start, as
// kube-apiserver's post-start hook does.
package priorityclasses

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/apis/scheduling"
)

// hookName is upstream's name of the hook that creates the system priority
// classes.
const hookName = "scheduling/bootstrap-system-priority-classes"

// Install registers the post-start hook that creates
// system-node-critical and system-cluster-critical unless they exist.
// Existing ones are left alone (validation keeps them as defined).
func Install(server *genericapiserver.GenericAPIServer) {
	server.AddPostStartHookOrDie(hookName, func(hookCtx genericapiserver.PostStartHookContext) error {
		return Ensure(hookCtx, hookCtx.LoopbackClientConfig)
	})
}

// Ensure creates the missing system priority classes,
// retrying until the API accepts writes. As upstream, failing for a minute
// fails the hook (and so the server's start).
func Ensure(ctx context.Context, loopback *restclient.Config) error {
	client, err := kubernetes.NewForConfig(loopback)
	if err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, pc := range scheduling.SystemPriorityClasses() {
			_, err := client.SchedulingV1().PriorityClasses().Get(ctx, pc.Name, metav1.GetOptions{})
			if err == nil {
				continue
			}
			if !apierrors.IsNotFound(err) {
				klog.V(2).InfoS("Reading system priority class failed, will retry", "priorityClass", pc.Name, "err", err)
				return false, nil
			}
			if _, err := client.SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				klog.V(2).InfoS("Creating system priority class failed, will retry", "priorityClass", pc.Name, "err", err)
				return false, nil
			}
			klog.InfoS("Created system priority class", "priorityClass", pc.Name, "value", pc.Value)
		}
		return true, nil
	})
}
