package endpointslice

// What the endpoints, EndpointSlice and EndpointSlice mirroring controllers
// share: client-go listers over the manager's cache (k8s.io/endpointslice's
// helpers take listers), the pod event handler that wakes the Services
// selecting a pod, and an event recorder started with the manager.

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	endpointsliceutil "k8s.io/endpointslice/util"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// NewServiceLister is a client-go ServiceLister reading r (the manager's
// cache). The Services it returns are the cache's own: read only.
func NewServiceLister(r client.Reader) corelisters.ServiceLister {
	return serviceLister{r: r}
}

type serviceLister struct {
	r  client.Reader
	ns string
}

func (l serviceLister) List(selector labels.Selector) ([]*corev1.Service, error) {
	var list corev1.ServiceList
	opts := []client.ListOption{client.MatchingLabelsSelector{Selector: selector}, client.UnsafeDisableDeepCopy}
	if l.ns != "" {
		opts = append(opts, client.InNamespace(l.ns))
	}
	if err := l.r.List(context.Background(), &list, opts...); err != nil {
		return nil, err
	}
	out := make([]*corev1.Service, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

func (l serviceLister) Services(namespace string) corelisters.ServiceNamespaceLister {
	return serviceLister{r: l.r, ns: namespace}
}

func (l serviceLister) Get(name string) (*corev1.Service, error) {
	svc := &corev1.Service{}
	if err := l.r.Get(context.Background(), types.NamespacedName{Namespace: l.ns, Name: name}, svc); err != nil {
		return nil, err
	}
	return svc, nil
}

// NewNodeLister is a client-go NodeLister reading r (the manager's cache),
// for the slice reconciler's zones. The Nodes it returns are read only.
func NewNodeLister(r client.Reader) corelisters.NodeLister {
	return nodeLister{r: r}
}

type nodeLister struct{ r client.Reader }

func (l nodeLister) List(selector labels.Selector) ([]*corev1.Node, error) {
	var list corev1.NodeList
	if err := l.r.List(context.Background(), &list, client.MatchingLabelsSelector{Selector: selector}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	out := make([]*corev1.Node, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

func (l nodeLister) Get(name string) (*corev1.Node, error) {
	n := &corev1.Node{}
	if err := l.r.Get(context.Background(), types.NamespacedName{Name: name}, n); err != nil {
		return nil, err
	}
	return n, nil
}

// PodHandler sends, for a pod's change that can change Endpoints (its IPs,
// readiness, labels, hostname, deletion...), the Services selecting it
// before or after, batchPeriod later (upstream's
// --endpoint(slice)-updates-batch-period; 0: at once).
func PodHandler(services corelisters.ServiceLister, batchPeriod time.Duration) handler.EventHandler {
	send := func(ctx context.Context, key *endpointsliceutil.PodProjectionKey, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		if key == nil {
			return
		}
		keys, err := endpointsliceutil.GetServicesToUpdate(services, key)
		if err != nil {
			klog.FromContext(ctx).Error(err, "Failed to find the Services of a pod", "namespace", key.Namespace)
			return
		}
		for k := range keys {
			ns, name, err := cache.SplitMetaNamespaceKey(k)
			if err != nil {
				continue
			}
			req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}
			if batchPeriod > 0 {
				q.AddAfter(req, batchPeriod)
			} else {
				q.Add(req)
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			send(ctx, endpointsliceutil.GetPodUpdateProjectionKey(nil, e.Object), q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			send(ctx, endpointsliceutil.GetPodUpdateProjectionKey(e.ObjectOld, e.ObjectNew), q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			send(ctx, endpointsliceutil.GetPodUpdateProjectionKey(e.Object, nil), q)
		},
	}
}
