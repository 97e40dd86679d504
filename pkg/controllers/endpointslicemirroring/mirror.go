package endpointslicemirroring

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	endpointsliceutil "k8s.io/endpointslice/util"
	"k8s.io/klog/v2"
	utilnet "k8s.io/utils/net"

	"github.com/skiff-dev/skiff/pkg/controllers/endpoints"
)

// sliceKey is an address type and a set of ports: one slice each.
type sliceKey string

func newSliceKey(ports []discovery.EndpointPort, t discovery.AddressType) sliceKey {
	return sliceKey(fmt.Sprintf("%s-%s", t, endpointsliceutil.NewPortMapKey(ports)))
}

func (k sliceKey) addressType() discovery.AddressType {
	if strings.HasPrefix(string(k), string(discovery.AddressTypeIPv6)) {
		return discovery.AddressTypeIPv6
	}
	return discovery.AddressTypeIPv4
}

// desired is the endpoints wanted, by slice key.
type desired struct {
	ports     map[sliceKey][]discovery.EndpointPort
	endpoints map[sliceKey]endpointsliceutil.EndpointSet
}

// changes are what a sync writes.
type changes struct {
	create, update, delete []*discovery.EndpointSlice
}

// reconcile writes the slices that mirror the Endpoints.
func (r *Reconciler) reconcile(ctx context.Context, ep *corev1.Endpoints, existing []*discovery.EndpointSlice) error {
	logger := klog.FromContext(ctx)
	d := desired{ports: map[sliceKey][]discovery.EndpointPort{}, endpoints: map[sliceKey]endpointsliceutil.EndpointSet{}}
	invalid, skipped := 0, 0
	max := int(r.MaxEndpointsPerSubset)
	for _, subset := range endpoints.RepackSubsets(ep.Subsets) {
		ports := toSlicePorts(subset.Ports)
		keys := map[discovery.AddressType]sliceKey{}
		for _, t := range []discovery.AddressType{discovery.AddressTypeIPv4, discovery.AddressTypeIPv6} {
			k := newSliceKey(ports, t)
			keys[t] = k
			if d.endpoints[k] == nil {
				d.endpoints[k] = endpointsliceutil.EndpointSet{}
			}
			d.ports[k] = ports
		}
		added := 0
		add := func(addrs []corev1.EndpointAddress, ready bool) {
			for _, a := range addrs {
				if added >= max {
					return
				}
				e, t, ok := toEndpoint(a, ready)
				if !ok {
					invalid++
					logger.Info("Address in Endpoints is not a valid IP, it will not be mirrored to an EndpointSlice", "endpoints", klog.KObj(ep), "IP", a.IP)
					continue
				}
				d.endpoints[keys[t]].Insert(e)
				added++
			}
		}
		add(subset.Addresses, true)
		add(subset.NotReadyAddresses, false)
		skipped += len(subset.Addresses) + len(subset.NotReadyAddresses) - added
	}
	addressesSkippedPerSync.WithLabelValues().Observe(float64(skipped))
	if invalid > 0 {
		r.Recorder.Eventf(ep, corev1.EventTypeWarning, ReasonInvalidIPAddress,
			"Skipped %d invalid IP addresses when mirroring to EndpointSlices", invalid)
	}
	if skipped > invalid {
		logger.Info("Addresses in Endpoints were skipped due to exceeding MaxEndpointsPerSubset", "skippedAddresses", skipped, "endpoints", klog.KObj(ep))
		r.Recorder.Eventf(ep, corev1.EventTypeWarning, ReasonTooManyAddressesToMirror,
			"A max of %d addresses can be mirrored to EndpointSlices per Endpoints subset. %d addresses were skipped", max, skipped)
	}

	byKey := map[sliceKey][]*discovery.EndpointSlice{}
	for _, s := range existing {
		k := newSliceKey(s.Ports, s.AddressType)
		byKey[k] = append(byKey[k], s)
	}
	var c changes
	var totals totals
	for k, want := range d.endpoints {
		totals.add(r.reconcileKey(ep, byKey[k], want, d.ports[k], k.addressType(), &c))
	}
	for k, slices := range byKey {
		if _, ok := d.endpoints[k]; !ok {
			c.delete = append(c.delete, slices...)
		}
	}
	endpointsAddedPerSync.WithLabelValues().Observe(float64(totals.added))
	endpointsUpdatedPerSync.WithLabelValues().Observe(float64(totals.updated))
	endpointsRemovedPerSync.WithLabelValues().Observe(float64(totals.removed))
	return r.finalize(ctx, ep, c)
}

// reconcileKey: the first existing slice of the key is kept (updated if
// its endpoints, labels or annotations differ, or it is owned by an
// earlier Endpoints of the name), the others deleted; none existing, one
// is created. With nothing wanted, all go.
func (r *Reconciler) reconcileKey(ep *corev1.Endpoints, existing []*discovery.EndpointSlice, want endpointsliceutil.EndpointSet,
	ports []discovery.EndpointPort, t discovery.AddressType, c *changes) (n totals) {
	if want.Len() == 0 {
		c.delete = append(c.delete, existing...)
		for _, s := range existing {
			n.removed += len(s.Endpoints)
		}
		return n
	}
	name := ""
	if len(existing) == 0 {
		n.added = want.Len()
	} else {
		c.delete = append(c.delete, existing[1:]...)
		first := existing[0]
		wantAnnotations := withoutKeys(ep.Annotations, corev1.EndpointsLastChangeTriggerTime, corev1.LastAppliedConfigAnnotation)
		haveLabels := withoutKeys(first.Labels, discovery.LabelManagedBy, discovery.LabelServiceName)
		n = countChanges(first, want)
		if n == (totals{}) &&
			apiequality.Semantic.DeepEqual(ep.Labels, haveLabels) &&
			apiequality.Semantic.DeepEqual(wantAnnotations, first.Annotations) &&
			!ownedByEarlier(ep, first) {
			if !r.tracker.Has(first) {
				r.tracker.Update(first)
			}
			return n
		}
		name = first.Name
	}
	s := newSlice(ep, ports, t, name)
	for want.Len() > 0 && len(s.Endpoints) < int(r.MaxEndpointsPerSubset) {
		e, _ := want.PopAny()
		s.Endpoints = append(s.Endpoints, *e)
	}
	if name != "" {
		c.update = append(c.update, s)
	} else {
		c.create = append(c.create, s)
	}
	return n
}

// totals count the endpoints a sync adds, updates and removes.
type totals struct{ added, updated, removed int }

func (t *totals) add(o totals) {
	t.added += o.added
	t.updated += o.updated
	t.removed += o.removed
}

// countChanges compares the slice's endpoints with the wanted ones.
func countChanges(s *discovery.EndpointSlice, want endpointsliceutil.EndpointSet) (n totals) {
	matches := 0
	for i := range s.Endpoints {
		got := want.Get(&s.Endpoints[i])
		if got == nil {
			n.removed++
			continue
		}
		matches++
		if !endpointsliceutil.EndpointsEqualBeyondHash(got, &s.Endpoints[i]) {
			n.updated++
		}
	}
	n.added = want.Len() - matches
	return n
}

// ownedByEarlier: the slice belongs to an Endpoints of this name that was
// deleted and created again.
func ownedByEarlier(ep *corev1.Endpoints, s *discovery.EndpointSlice) bool {
	for _, o := range s.OwnerReferences {
		if o.Kind == "Endpoints" && o.Name == ep.Name && o.UID != ep.UID {
			return true
		}
	}
	return false
}

// finalize writes the changes; a slice to create of an address type with
// one to delete updates that one instead.
func (r *Reconciler) finalize(ctx context.Context, ep *corev1.Endpoints, c changes) error {
	recycle(&c)
	api := r.Core.DiscoveryV1().EndpointSlices(ep.Namespace)
	if ep.DeletionTimestamp == nil {
		for _, s := range c.create {
			created, err := api.Create(ctx, s, metav1.CreateOptions{})
			if err != nil {
				if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
					return nil
				}
				return fmt.Errorf("failed to create EndpointSlice for Endpoints %s/%s: %v", ep.Namespace, ep.Name, err)
			}
			r.tracker.Update(created)
			sliceChanges.WithLabelValues("create").Inc()
		}
	}
	for _, s := range c.update {
		updated, err := api.Update(ctx, s, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("failed to update %s EndpointSlice for Endpoints %s/%s: %v", s.Name, ep.Namespace, ep.Name, err)
		}
		r.tracker.Update(updated)
		sliceChanges.WithLabelValues("update").Inc()
	}
	for _, s := range c.delete {
		if err := api.Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("failed to delete %s EndpointSlice for Endpoints %s/%s: %v", s.Name, ep.Namespace, ep.Name, err)
		}
		r.tracker.ExpectDeletion(s)
		sliceChanges.WithLabelValues("delete").Inc()
	}
	return nil
}

// recycle turns, per address type, pairs of a slice to create and one to
// delete into an update of the latter.
func recycle(c *changes) {
	var create, del []*discovery.EndpointSlice
	used := map[*discovery.EndpointSlice]bool{}
	for _, s := range c.create {
		var victim *discovery.EndpointSlice
		for _, d := range c.delete {
			if !used[d] && d.AddressType == s.AddressType {
				victim = d
				break
			}
		}
		if victim == nil {
			create = append(create, s)
			continue
		}
		used[victim] = true
		s.Name, s.GenerateName = victim.Name, ""
		c.update = append(c.update, s)
	}
	for _, d := range c.delete {
		if !used[d] {
			del = append(del, d)
		}
	}
	c.create, c.delete = create, del
}

// newSlice is the slice of the Endpoints for the ports and address type,
// named name (else generated).
func newSlice(ep *corev1.Endpoints, ports []discovery.EndpointPort, t discovery.AddressType, name string) *discovery.EndpointSlice {
	owner := metav1.NewControllerRef(ep, schema.GroupVersionKind{Version: "v1", Kind: "Endpoints"})
	s := &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       ep.Namespace,
			Labels:          map[string]string{},
			Annotations:     map[string]string{},
			OwnerReferences: []metav1.OwnerReference{*owner},
		},
		AddressType: t,
		Ports:       ports,
		Endpoints:   []discovery.Endpoint{},
	}
	for k, v := range ep.Labels {
		s.Labels[k] = v
	}
	s.Labels[discovery.LabelServiceName] = ep.Name
	s.Labels[discovery.LabelManagedBy] = ControllerName
	for k, v := range ep.Annotations {
		if k != corev1.EndpointsLastChangeTriggerTime && k != corev1.LastAppliedConfigAnnotation {
			s.Annotations[k] = v
		}
	}
	if name != "" {
		s.Name = name
	} else {
		s.GenerateName = namePrefix(ep.Name)
	}
	return s
}

// namePrefix is "<name>-", or the name if that is no valid name prefix.
func namePrefix(name string) string {
	if p := name + "-"; len(validation.NameIsDNSSubdomain(p, true)) == 0 {
		return p
	}
	return name
}

// toEndpoint is the address as an endpoint of its family; false for no
// valid IP.
func toEndpoint(a corev1.EndpointAddress, ready bool) (*discovery.Endpoint, discovery.AddressType, bool) {
	ip := utilnet.ParseIPSloppy(a.IP)
	if ip == nil {
		return nil, "", false
	}
	t := discovery.AddressTypeIPv4
	if ip.To4() == nil {
		t = discovery.AddressTypeIPv6
	}
	e := &discovery.Endpoint{
		Addresses:  []string{ip.String()},
		Conditions: discovery.EndpointConditions{Ready: &ready},
		TargetRef:  a.TargetRef,
		NodeName:   a.NodeName,
	}
	if a.Hostname != "" {
		h := a.Hostname
		e.Hostname = &h
	}
	return e, t, true
}

func toSlicePorts(ports []corev1.EndpointPort) []discovery.EndpointPort {
	out := []discovery.EndpointPort{}
	for _, p := range ports {
		p := p.DeepCopy()
		out = append(out, discovery.EndpointPort{Name: &p.Name, Port: &p.Port, Protocol: &p.Protocol, AppProtocol: p.AppProtocol})
	}
	return out
}

// withoutKeys is m without keys (a copy; nil-ness kept for no keys).
func withoutKeys(m map[string]string, keys ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for _, k := range keys {
		delete(out, k)
	}
	return out
}
