// Package legacytokentracking keeps the ConfigMap
// kube-system/kube-apiserver-legacy-service-account-token-tracking, as
// kube-apiserver's legacy token tracking controller: its `since` is the day
// (UTC) from which the API servers label each legacy token Secret with its
// last use (kubernetes.io/legacy-token-last-used), so that a Secret without
// the label has not been used since then. A missing ConfigMap is created
// (at most once per 30 minutes, so that API servers with and without the
// tracking do not fight over it), an unreadable date is replaced by today.
package legacytokentracking

import (
	"context"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	genericapiserver "k8s.io/apiserver/pkg/server"
	corev1informers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

const (
	// ConfigMapName is upstream's.
	ConfigMapName = "kube-apiserver-legacy-service-account-token-tracking"
	// ConfigMapDataKey holds the date, 2006-01-02.
	ConfigMapDataKey = "since"
	dateFormat       = "2006-01-02"

	key = metav1.NamespaceSystem + "/" + ConfigMapName
)

// Install adds upstream's post-start hook that runs the controller.
func Install(server *genericapiserver.GenericAPIServer) {
	server.AddPostStartHookOrDie("start-legacy-token-tracking-controller", func(ctx genericapiserver.PostStartHookContext) error {
		client, err := kubernetes.NewForConfig(ctx.LoopbackClientConfig)
		if err != nil {
			return err
		}
		go New(client).Run(ctx)
		return nil
	})
}

// Controller keeps the ConfigMap.
type Controller struct {
	client   kubernetes.Interface
	informer cache.SharedIndexInformer
	queue    workqueue.TypedRateLimitingInterface[string]
	// creations limits how often the ConfigMap is created.
	creations *rate.Limiter
	clock     clock.Clock
}

// New returns a controller writing through client.
func New(client kubernetes.Interface) *Controller {
	return newController(client, clock.RealClock{}, rate.NewLimiter(rate.Every(30*time.Minute), 1))
}

func newController(client kubernetes.Interface, clk clock.Clock, creations *rate.Limiter) *Controller {
	informer := corev1informers.NewFilteredConfigMapInformer(client, metav1.NamespaceSystem, 12*time.Hour, cache.Indexers{},
		func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", ConfigMapName).String()
		})
	c := &Controller{
		client:   client,
		informer: informer,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "legacy_token_tracking_controller"}),
		creations: creations,
		clock:     clk,
	}
	enqueue := func(any) { c.queue.Add(key) }
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(any, any) { c.queue.Add(key) },
		DeleteFunc: enqueue,
	})
	return c
}

// Run runs the controller until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	defer c.queue.ShutDown()
	klog.InfoS("Starting legacy_token_tracking_controller")
	defer klog.InfoS("Shutting down legacy_token_tracking_controller")
	go c.informer.Run(ctx.Done())
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.informer.HasSynced) {
		return
	}
	c.queue.Add(key)
	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		for c.processNext(ctx) {
		}
	}, time.Second)
	<-ctx.Done()
}

func (c *Controller) processNext(ctx context.Context) bool {
	k, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(k)
	if err := c.sync(ctx); err != nil {
		klog.ErrorS(err, "Error while syncing ConfigMap", "configmap", k)
		c.queue.AddRateLimited(k)
		return true
	}
	c.queue.Forget(k)
	return true
}

// sync creates the ConfigMap if it is missing (unless one was created less
// than the limiter allows: then later) and repairs an unreadable date.
func (c *Controller) sync(ctx context.Context) error {
	obj, exists, err := c.informer.GetStore().GetByKey(key)
	if err != nil {
		return err
	}
	now := c.clock.Now()
	configMaps := c.client.CoreV1().ConfigMaps(metav1.NamespaceSystem)
	if !exists {
		r := c.creations.ReserveN(now, 1)
		if delay := r.DelayFrom(now); delay > 0 {
			c.queue.AddAfter(key, delay)
			r.CancelAt(now)
			return nil
		}
		_, err := configMaps.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceSystem, Name: ConfigMapName},
			Data:       map[string]string{ConfigMapDataKey: now.UTC().Format(dateFormat)},
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		if err != nil {
			// A failed attempt does not count against the limit.
			r.CancelAt(now)
		}
		return err
	}
	cm := obj.(*corev1.ConfigMap)
	if _, err := time.Parse(dateFormat, cm.Data[ConfigMapDataKey]); err == nil {
		return nil
	}
	cm = cm.DeepCopy()
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[ConfigMapDataKey] = now.UTC().Format(dateFormat)
	_, err = configMaps.Update(ctx, cm, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		// Its event brings the newer state back.
		return nil
	}
	return err
}
