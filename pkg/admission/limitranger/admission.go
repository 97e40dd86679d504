// Package limitranger is upstream's LimitRanger admission plugin: the
// LimitRanges of a pod's namespace default its containers' requests and
// limits (type Container: defaultRequest, default) and bound them
// (min, max, maxLimitRequestRatio per Container and per Pod); claims'
// storage requests are bounded by type PersistentVolumeClaim. Messages are
// upstream's.
package limitranger

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"
)

const (
	// PluginName is the plugin's name in upstream's admission chain.
	PluginName = "LimitRanger"
	// annotation records which defaults the plugin set on a pod.
	annotation = "kubernetes.io/limit-ranger"
	liveTTL    = 30 * time.Second
)

// Plugin is the LimitRanger admission plugin.
type Plugin struct {
	*admission.Handler
	client kubernetes.Interface
	lister corelisters.LimitRangeLister

	// live remembers recent live lookups of namespaces whose LimitRanges
	// the informer has none of (it may lag behind a just-created one).
	mu   sync.Mutex
	live map[string]liveEntry
}

type liveEntry struct {
	expiry time.Time
	items  []*corev1.LimitRange
}

var (
	_ admission.MutationInterface   = &Plugin{}
	_ admission.ValidationInterface = &Plugin{}
)

// New returns the plugin reading LimitRanges from factory (started by the
// caller) and, on a miss, through client.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory) *Plugin {
	informer := factory.Core().V1().LimitRanges()
	p := &Plugin{
		Handler: admission.NewHandler(admission.Create, admission.Update),
		client:  client,
		lister:  informer.Lister(),
		live:    map[string]liveEntry{},
	}
	p.SetReadyFunc(informer.Informer().HasSynced)
	return p
}

// Admit applies the Container defaults to pods.
func (p *Plugin) Admit(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	return p.run(ctx, a, mutate)
}

// Validate enforces min, max and maxLimitRequestRatio.
func (p *Plugin) Validate(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	return p.run(ctx, a, validate)
}

func supports(a admission.Attributes) bool {
	kind := a.GetKind().GroupKind()
	isPod := kind == corev1.SchemeGroupVersion.WithKind("Pod").GroupKind()
	if a.GetSubresource() == "resize" && isPod && a.GetOperation() == admission.Update {
		return true
	}
	if a.GetSubresource() != "" {
		return false
	}
	// Containers are immutable: pod updates need no checks.
	if isPod && a.GetOperation() == admission.Update {
		return false
	}
	return isPod || kind == corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim").GroupKind()
}

func (p *Plugin) run(ctx context.Context, a admission.Attributes, fn func(*corev1.LimitRange, string, any) error) error {
	if !supports(a) {
		return nil
	}
	if !p.WaitForReady() {
		return admission.NewForbidden(a, fmt.Errorf("not yet ready to handle request"))
	}
	if old := a.GetOldObject(); old != nil {
		accessor, err := meta.Accessor(old)
		if err != nil {
			return admission.NewForbidden(a, err)
		}
		if accessor.GetDeletionTimestamp() != nil {
			return nil
		}
	}
	items, err := p.limitRanges(ctx, a)
	if err != nil {
		return err
	}
	for _, lr := range items {
		if err := fn(lr, a.GetResource().Resource, a.GetObject()); err != nil {
			return admission.NewForbidden(a, err)
		}
	}
	return nil
}

func (p *Plugin) limitRanges(ctx context.Context, a admission.Attributes) ([]*corev1.LimitRange, error) {
	ns := a.GetNamespace()
	items, err := p.lister.LimitRanges(ns).List(labels.Everything())
	if err != nil {
		return nil, admission.NewForbidden(a, fmt.Errorf("unable to %s %v at this time because there was an error enforcing limit ranges", a.GetOperation(), a.GetResource()))
	}
	if len(items) > 0 {
		return items, nil
	}
	p.mu.Lock()
	entry, ok := p.live[ns]
	p.mu.Unlock()
	if ok && entry.expiry.After(time.Now()) {
		return entry.items, nil
	}
	list, err := p.client.CoreV1().LimitRanges(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, admission.NewForbidden(a, err)
	}
	entry = liveEntry{expiry: time.Now().Add(liveTTL)}
	for i := range list.Items {
		entry.items = append(entry.items, &list.Items[i])
	}
	p.mu.Lock()
	if len(p.live) > 10000 {
		clear(p.live)
	}
	p.live[ns] = entry
	p.mu.Unlock()
	return entry.items, nil
}

func mutate(lr *corev1.LimitRange, resourceName string, obj any) error {
	if pod, ok := obj.(*corev1.Pod); ok && resourceName == "pods" {
		defaults := defaultRequirements(lr)
		mergePodResources(pod, &defaults)
	}
	return nil
}

func validate(lr *corev1.LimitRange, resourceName string, obj any) error {
	switch resourceName {
	case "pods":
		if pod, ok := obj.(*corev1.Pod); ok {
			return ValidatePod(lr, pod)
		}
	case "persistentvolumeclaims":
		if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok {
			return ValidateClaim(lr, pvc)
		}
	}
	return nil
}

// defaultRequirements are the Container defaults of a LimitRange.
func defaultRequirements(lr *corev1.LimitRange) corev1.ResourceRequirements {
	r := corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
	for _, l := range lr.Spec.Limits {
		if l.Type != corev1.LimitTypeContainer {
			continue
		}
		for k, v := range l.DefaultRequest {
			r.Requests[k] = v.DeepCopy()
		}
		for k, v := range l.Default {
			r.Limits[k] = v.DeepCopy()
		}
	}
	return r
}

func mergeContainerResources(c *corev1.Container, defaults *corev1.ResourceRequirements, prefix string, notes []string) []string {
	var setRequests, setLimits []string
	if c.Resources.Limits == nil {
		c.Resources.Limits = corev1.ResourceList{}
	}
	if c.Resources.Requests == nil {
		c.Resources.Requests = corev1.ResourceList{}
	}
	for k, v := range defaults.Limits {
		if _, found := c.Resources.Limits[k]; !found {
			c.Resources.Limits[k] = v.DeepCopy()
			setLimits = append(setLimits, string(k))
		}
	}
	for k, v := range defaults.Requests {
		if _, found := c.Resources.Requests[k]; !found {
			c.Resources.Requests[k] = v.DeepCopy()
			setRequests = append(setRequests, string(k))
		}
	}
	if len(setRequests) > 0 {
		sort.Strings(setRequests)
		notes = append(notes, strings.Join(setRequests, ", ")+fmt.Sprintf(" request for %s %s", prefix, c.Name))
	}
	if len(setLimits) > 0 {
		sort.Strings(setLimits)
		notes = append(notes, strings.Join(setLimits, ", ")+fmt.Sprintf(" limit for %s %s", prefix, c.Name))
	}
	return notes
}

func mergePodResources(pod *corev1.Pod, defaults *corev1.ResourceRequirements) {
	var notes []string
	for i := range pod.Spec.Containers {
		notes = mergeContainerResources(&pod.Spec.Containers[i], defaults, "container", notes)
	}
	for i := range pod.Spec.InitContainers {
		notes = mergeContainerResources(&pod.Spec.InitContainers[i], defaults, "init container", notes)
	}
	// Upstream's internal pods lose empty resource lists on the way to
	// storage; the v1 object keeps them, so drop them here.
	for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range cs {
			if len(cs[i].Resources.Limits) == 0 {
				cs[i].Resources.Limits = nil
			}
			if len(cs[i].Resources.Requests) == 0 {
				cs[i].Resources.Requests = nil
			}
		}
	}
	if len(notes) > 0 {
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[annotation] = "LimitRanger plugin set: " + strings.Join(notes, "; ")
	}
}

// enforcedValues are the quantities at a common precision.
func enforcedValues(req, lim, enforced resource.Quantity) (int64, int64, int64) {
	r, l, e := req.Value(), lim.Value(), enforced.Value()
	if r <= resource.MaxMilliValue && l <= resource.MaxMilliValue && e <= resource.MaxMilliValue {
		r, l, e = req.MilliValue(), lim.MilliValue(), enforced.MilliValue()
	}
	return r, l, e
}

func minConstraint(limitType, name string, enforced resource.Quantity, request, limit corev1.ResourceList) error {
	req, reqExists := request[corev1.ResourceName(name)]
	lim, limExists := limit[corev1.ResourceName(name)]
	r, l, e := enforcedValues(req, lim, enforced)
	if !reqExists {
		return fmt.Errorf("minimum %s usage per %s is %s.  No request is specified", name, limitType, enforced.String())
	}
	if r < e {
		return fmt.Errorf("minimum %s usage per %s is %s, but request is %s", name, limitType, enforced.String(), req.String())
	}
	if limExists && l < e {
		return fmt.Errorf("minimum %s usage per %s is %s, but limit is %s", name, limitType, enforced.String(), lim.String())
	}
	return nil
}

func maxRequestConstraint(limitType, name string, enforced resource.Quantity, request corev1.ResourceList) error {
	req, reqExists := request[corev1.ResourceName(name)]
	r, _, e := enforcedValues(req, resource.Quantity{}, enforced)
	if !reqExists {
		return fmt.Errorf("maximum %s usage per %s is %s.  No request is specified", name, limitType, enforced.String())
	}
	if r > e {
		return fmt.Errorf("maximum %s usage per %s is %s, but request is %s", name, limitType, enforced.String(), req.String())
	}
	return nil
}

func maxConstraint(limitType, name string, enforced resource.Quantity, request, limit corev1.ResourceList) error {
	req, reqExists := request[corev1.ResourceName(name)]
	lim, limExists := limit[corev1.ResourceName(name)]
	r, l, e := enforcedValues(req, lim, enforced)
	if !limExists {
		return fmt.Errorf("maximum %s usage per %s is %s.  No limit is specified", name, limitType, enforced.String())
	}
	if l > e {
		return fmt.Errorf("maximum %s usage per %s is %s, but limit is %s", name, limitType, enforced.String(), lim.String())
	}
	if reqExists && r > e {
		return fmt.Errorf("maximum %s usage per %s is %s, but request is %s", name, limitType, enforced.String(), req.String())
	}
	return nil
}

func ratioConstraint(limitType, name string, enforced resource.Quantity, request, limit corev1.ResourceList) error {
	req, reqExists := request[corev1.ResourceName(name)]
	lim, limExists := limit[corev1.ResourceName(name)]
	r, l, _ := enforcedValues(req, lim, enforced)
	if !reqExists || r == 0 {
		return fmt.Errorf("%s max limit to request ratio per %s is %s, but no request is specified or request is 0", name, limitType, enforced.String())
	}
	if !limExists || l == 0 {
		return fmt.Errorf("%s max limit to request ratio per %s is %s, but no limit is specified or limit is 0", name, limitType, enforced.String())
	}
	observed := float64(l) / float64(r)
	display := observed
	maxRatio := float64(enforced.Value())
	if enforced.Value() <= resource.MaxMilliValue {
		observed *= 1000
		maxRatio = float64(enforced.MilliValue())
	}
	if observed > maxRatio {
		return fmt.Errorf("%s max limit to request ratio per %s is %s, but provided ratio is %f", name, limitType, enforced.String(), display)
	}
	return nil
}

// ValidateClaim bounds a claim's storage requests by the
// PersistentVolumeClaim limits.
func ValidateClaim(lr *corev1.LimitRange, pvc *corev1.PersistentVolumeClaim) error {
	var errs []error
	for _, l := range lr.Spec.Limits {
		if l.Type != corev1.LimitTypePersistentVolumeClaim {
			continue
		}
		for k, v := range l.Min {
			if err := minConstraint(string(l.Type), string(k), v, pvc.Spec.Resources.Requests, corev1.ResourceList{}); err != nil {
				errs = append(errs, err)
			}
		}
		for k, v := range l.Max {
			if err := maxRequestConstraint(string(l.Type), string(k), v, pvc.Spec.Resources.Requests); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return utilerrors.NewAggregate(errs)
}

// ValidatePod bounds each container by the Container limits and the pod's
// totals by the Pod limits.
func ValidatePod(lr *corev1.LimitRange, pod *corev1.Pod) error {
	var errs []error
	check := func(limitType string, l corev1.LimitRangeItem, requests, limits corev1.ResourceList) {
		for k, v := range l.Min {
			if err := minConstraint(limitType, string(k), v, requests, limits); err != nil {
				errs = append(errs, err)
			}
		}
		for k, v := range l.Max {
			if err := maxConstraint(limitType, string(k), v, requests, limits); err != nil {
				errs = append(errs, err)
			}
		}
		for k, v := range l.MaxLimitRequestRatio {
			if err := ratioConstraint(limitType, string(k), v, requests, limits); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, l := range lr.Spec.Limits {
		switch l.Type {
		case corev1.LimitTypeContainer:
			for _, c := range pod.Spec.Containers {
				check(string(l.Type), l, c.Resources.Requests, c.Resources.Limits)
			}
			for _, c := range pod.Spec.InitContainers {
				check(string(l.Type), l, c.Resources.Requests, c.Resources.Limits)
			}
		case corev1.LimitTypePod:
			// The spec's totals: no overhead, no status resources.
			opts := resourcehelper.PodResourcesOptions{ExcludeOverhead: true}
			check(string(l.Type), l, resourcehelper.PodRequests(pod, opts), resourcehelper.PodLimits(pod, opts))
		}
	}
	return utilerrors.NewAggregate(errs)
}
