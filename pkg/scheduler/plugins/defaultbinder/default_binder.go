// Package defaultbinder is the DefaultBinder plugin: it binds a pod by
// POSTing a Binding to its pods/binding subresource.
package defaultbinder

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/names"
)

// Name is the plugin's name in configuration.
const Name = names.DefaultBinder

// DefaultBinder binds through the API server.
type DefaultBinder struct {
	handle framework.Handle
}

var _ framework.BindPlugin = &DefaultBinder{}

// New builds the plugin; it takes no args.
func New(_ context.Context, _ runtime.Object, h framework.Handle) (framework.Plugin, error) {
	if h == nil {
		return nil, fmt.Errorf("DefaultBinder needs a framework handle")
	}
	return &DefaultBinder{handle: h}, nil
}

// Name is the plugin's name.
func (b *DefaultBinder) Name() string { return Name }

// Bind creates the pod's Binding to nodeName. The pod's UID is in the
// Binding so a pod deleted and recreated under the same name meanwhile is
// not bound by mistake. Transient server errors are retried with
// client-go's default backoff, as upstream.
func (b *DefaultBinder) Bind(ctx context.Context, _ *framework.CycleState, p *v1.Pod, nodeName string) *framework.Status {
	cs := b.handle.ClientSet()
	if cs == nil {
		return framework.NewStatus(framework.Error, "no client")
	}
	klog.FromContext(ctx).V(3).Info("Attempting to bind pod to node", "pod", klog.KObj(p), "node", klog.KRef("", nodeName))
	binding := &v1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, UID: p.UID},
		Target:     v1.ObjectReference{Kind: "Node", Name: nodeName},
	}
	err := retry.OnError(retry.DefaultBackoff, retriable, func() error {
		return cs.CoreV1().Pods(binding.Namespace).Bind(ctx, binding, metav1.CreateOptions{})
	})
	return framework.AsStatus(err)
}

// retriable: errors worth another try (upstream's util.Retriable).
func retriable(err error) bool {
	return apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) || utilnet.IsConnectionRefused(err)
}
