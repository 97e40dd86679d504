// Package resourcequota is skiff's ResourceQuota controller, after
// upstream's: it keeps every quota's status.hard equal to spec.hard and
// status.used to what the namespace's objects use (upstream's evaluators,
// pkg/quota/core, and an object count for any other count/<resource>.<group>).
// A namespace's quotas are recomputed when a quota is created or its spec
// changes, when a tracked object is deleted or changes what it is charged
// (a pod ending, a service changing type, a claim resizing), and every
// ResyncPeriod. ResourceQuota admission charges new objects in between.
package resourcequota

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	quota "k8s.io/apiserver/pkg/quota/v1"
	"k8s.io/apiserver/pkg/quota/v1/generic"
	"k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	quotacore "github.com/skiff-dev/skiff/pkg/quota/core"
)

// DefaultResyncPeriod is upstream's full recalculation period.
const DefaultResyncPeriod = 5 * time.Minute

// typed are the resources whose evaluators need whole objects; the others
// are only counted, from their metadata.
var typed = map[schema.GroupResource]bool{
	// ResourceQuotas too: a quota's own creation triggers the recount, and
	// a separate metadata cache may not hold it yet (it would count 0).
	corev1.Resource("resourcequotas"):         true,
	corev1.Resource("pods"):                   true,
	corev1.Resource("services"):               true,
	corev1.Resource("persistentvolumeclaims"): true,
}

// Reconciler recomputes the status of the ResourceQuotas of one namespace
// (the request's Name).
type Reconciler struct {
	// Client reads through the manager's cache and writes to the API.
	Client client.Client
	// Mapper resolves count/<resource>.<group> to a kind.
	Mapper meta.RESTMapper
	// ResyncPeriod: DefaultResyncPeriod when zero.
	ResyncPeriod time.Duration

	mu       sync.Mutex
	registry quota.Registry
}

// SetupWithManager registers the reconciler for ResourceQuotas and the
// objects they count.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.ResyncPeriod == 0 {
		r.ResyncPeriod = DefaultResyncPeriod
	}
	if r.Mapper == nil {
		r.Mapper = mgr.GetRESTMapper()
	}
	r.registry = generic.NewRegistry(quotacore.NewEvaluators(r.listerFor))
	toNamespace := handler.EnqueueRequestsFromMapFunc(namespaceOf)
	b := ctrl.NewControllerManagedBy(mgr).Named("resourcequota").
		Watches(&corev1.ResourceQuota{}, toNamespace, builder.WithPredicates(quotaChanged())).
		Watches(&corev1.Pod{}, toNamespace, builder.WithPredicates(chargeChanged(podChargeChanged))).
		Watches(&corev1.Service{}, toNamespace, builder.WithPredicates(chargeChanged(generationChanged))).
		Watches(&corev1.PersistentVolumeClaim{}, toNamespace, builder.WithPredicates(chargeChanged(claimChargeChanged)))
	// Counted objects: their deletion, from metadata only.
	for _, gvk := range []schema.GroupVersionKind{
		corev1.SchemeGroupVersion.WithKind("ConfigMap"),
		corev1.SchemeGroupVersion.WithKind("Secret"),
		corev1.SchemeGroupVersion.WithKind("ReplicationController"),
		appsv1.SchemeGroupVersion.WithKind("ReplicaSet"),
		appsv1.SchemeGroupVersion.WithKind("Deployment"),
		appsv1.SchemeGroupVersion.WithKind("StatefulSet"),
		appsv1.SchemeGroupVersion.WithKind("DaemonSet"),
		batchv1.SchemeGroupVersion.WithKind("Job"),
		batchv1.SchemeGroupVersion.WithKind("CronJob"),
	} {
		obj := &metav1.PartialObjectMetadata{}
		obj.SetGroupVersionKind(gvk)
		b = b.Watches(obj, toNamespace, builder.WithPredicates(chargeChanged(never)), builder.OnlyMetadata)
	}
	return b.Complete(r)
}

func namespaceOf(_ context.Context, obj client.Object) []reconcile.Request {
	if obj.GetNamespace() == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: obj.GetNamespace()}}}
}

// quotaChanged passes quota creations and spec changes, and quotas whose
// status.hard is not spec.hard, as upstream: admission's charges to
// status.used are left alone (recomputing then from a cache that may not
// hold the charged object yet would undo them).
func quotaChanged() predicate.Funcs {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		old, ok1 := e.ObjectOld.(*corev1.ResourceQuota)
		q, ok2 := e.ObjectNew.(*corev1.ResourceQuota)
		if !ok1 || !ok2 {
			return true
		}
		return !apiequality.Semantic.DeepEqual(old.Spec, q.Spec) || !apiequality.Semantic.DeepEqual(q.Spec.Hard, q.Status.Hard)
	}}
}

// chargeChanged passes deletions and the updates changed says may change
// an object's charge. Creations are charged by admission (as upstream, a
// recount on them could race admission's charges of objects not stored yet).
func chargeChanged(changed func(old, obj client.Object) bool) predicate.Funcs {
	return predicate.Funcs{CreateFunc: func(event.CreateEvent) bool { return false }, UpdateFunc: func(e event.UpdateEvent) bool {
		if e.ObjectOld.GetDeletionTimestamp().IsZero() != e.ObjectNew.GetDeletionTimestamp().IsZero() {
			return true
		}
		return changed(e.ObjectOld, e.ObjectNew)
	}}
}

func never(_, _ client.Object) bool { return false }

func generationChanged(old, obj client.Object) bool {
	return old.GetGeneration() != obj.GetGeneration()
}

func podChargeChanged(old, obj client.Object) bool {
	o, ok1 := old.(*corev1.Pod)
	p, ok2 := obj.(*corev1.Pod)
	if !ok1 || !ok2 {
		return true
	}
	return o.Generation != p.Generation || o.Status.Phase != p.Status.Phase ||
		!apiequality.Semantic.DeepEqual(o.Status.ContainerStatuses, p.Status.ContainerStatuses) && resized(o, p)
}

// resized: the resources the kubelet reports changed (in-place resize).
func resized(o, p *corev1.Pod) bool {
	res := func(pod *corev1.Pod) []*corev1.ResourceRequirements {
		var out []*corev1.ResourceRequirements
		for i := range pod.Status.ContainerStatuses {
			out = append(out, pod.Status.ContainerStatuses[i].Resources)
		}
		return out
	}
	return !apiequality.Semantic.DeepEqual(res(o), res(p))
}

func claimChargeChanged(old, obj client.Object) bool {
	o, ok1 := old.(*corev1.PersistentVolumeClaim)
	c, ok2 := obj.(*corev1.PersistentVolumeClaim)
	if !ok1 || !ok2 {
		return true
	}
	return o.Generation != c.Generation || quotacore.RequiresQuotaReplenish(c, o)
}

// Reconcile recomputes the status of every quota of the namespace.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var quotas corev1.ResourceQuotaList
	if err := r.Client.List(ctx, &quotas, client.InNamespace(req.Name)); err != nil {
		return ctrl.Result{}, err
	}
	if len(quotas.Items) == 0 {
		return ctrl.Result{}, nil
	}
	var errs []error
	for i := range quotas.Items {
		if err := r.sync(ctx, &quotas.Items[i]); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("quota %s/%s: %w", quotas.Items[i].Namespace, quotas.Items[i].Name, err))
		}
	}
	if len(errs) > 0 {
		return ctrl.Result{}, utilerrors.NewAggregate(errs)
	}
	return ctrl.Result{RequeueAfter: r.ResyncPeriod}, nil
}

// sync sets status.hard to spec.hard and status.used to the measured
// usage of the hard resources, as upstream's syncResourceQuota.
func (r *Reconciler) sync(ctx context.Context, q *corev1.ResourceQuota) error {
	dirty := !apiequality.Semantic.DeepEqual(q.Spec.Hard, q.Status.Hard) || q.Status.Hard == nil || q.Status.Used == nil
	used := corev1.ResourceList{}
	if q.Status.Used != nil {
		used = quota.Add(corev1.ResourceList{}, q.Status.Used)
	}
	hard := quota.Add(corev1.ResourceList{}, q.Spec.Hard)

	var errs []error
	usage, err := quota.CalculateUsage(q.Namespace, q.Spec.Scopes, hard, r.registryFor(hard), q.Spec.ScopeSelector)
	if err != nil {
		errs = append(errs, err)
	}
	for k, v := range usage {
		used[k] = v
	}
	used = quota.Mask(used, quota.ResourceNames(hard))

	updated := q.DeepCopy()
	updated.Status = corev1.ResourceQuotaStatus{Hard: hard, Used: used}
	if dirty || !quota.Equals(updated.Status.Used, q.Status.Used) {
		if err := r.Client.Status().Update(ctx, updated); err != nil {
			errs = append(errs, err)
		}
	}
	return utilerrors.NewAggregate(errs)
}

// registryFor returns the registry, first adding object-count evaluators
// for the count/<resource>.<group> names of hard that none handles yet.
func (r *Reconciler) registryFor(hard corev1.ResourceList) quota.Registry {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name := range hard {
		s := string(name)
		if !strings.HasPrefix(s, "count/") {
			continue
		}
		gr := schema.ParseGroupResource(strings.TrimPrefix(s, "count/"))
		if r.registry.Get(gr) != nil {
			continue
		}
		gvr, err := r.Mapper.ResourceFor(gr.WithVersion(""))
		if err != nil {
			continue // not served (yet): nothing to count
		}
		r.registry.Add(generic.NewObjectCountEvaluator(gr, generic.ListResourceUsingListerFunc(r.listerFor, gvr), ""))
	}
	return r.registry
}

// listerFor lists a resource through the manager's cache: whole objects
// for the typed resources, metadata for the others.
func (r *Reconciler) listerFor(gvr schema.GroupVersionResource) (cache.GenericLister, error) {
	gvk, err := r.Mapper.KindFor(gvr)
	if err != nil {
		return nil, err
	}
	return &lister{client: r.Client, gvk: gvk, typed: typed[gvr.GroupResource()]}, nil
}

// lister is a cache.GenericLister over the controller-runtime client.
type lister struct {
	client    client.Client
	gvk       schema.GroupVersionKind
	typed     bool
	namespace string
}

func (l *lister) newList() (client.ObjectList, error) {
	listGVK := l.gvk.GroupVersion().WithKind(l.gvk.Kind + "List")
	if l.typed {
		obj, err := l.client.Scheme().New(listGVK)
		if err != nil {
			return nil, err
		}
		list, ok := obj.(client.ObjectList)
		if !ok {
			return nil, fmt.Errorf("%v is not a list", listGVK)
		}
		return list, nil
	}
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(listGVK)
	return list, nil
}

func (l *lister) List(selector labels.Selector) ([]runtime.Object, error) {
	list, err := l.newList()
	if err != nil {
		return nil, err
	}
	opts := []client.ListOption{client.MatchingLabelsSelector{Selector: selector}}
	if l.namespace != "" {
		opts = append(opts, client.InNamespace(l.namespace))
	}
	if err := l.client.List(context.TODO(), list, opts...); err != nil {
		return nil, err
	}
	return meta.ExtractList(list)
}

func (l *lister) Get(string) (runtime.Object, error) {
	return nil, fmt.Errorf("get is not supported")
}

func (l *lister) ByNamespace(namespace string) cache.GenericNamespaceLister {
	c := *l
	c.namespace = namespace
	return &c
}
