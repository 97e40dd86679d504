package endpoints

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/fnv"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/dump"
)

// RepackSubsets gives subsets upstream's canonical form: an address (IP
// and target UID) is in one subset with every port it has, the subsets
// of the same addresses merged; an address ready on one port but not on
// another counts as not ready. Sorted as upstream sorts them (addresses
// by IP and UID, ports and subsets by their hash), so that the same
// endpoints always give the same object.
func RepackSubsets(subsets []corev1.EndpointSubset) []corev1.EndpointSubset {
	all := map[addressKey]*corev1.EndpointAddress{}
	byPort := map[corev1.EndpointPort]addressSet{}
	for i := range subsets {
		ports := subsets[i].Ports
		if len(ports) == 0 {
			// A sentinel: addresses without ports.
			ports = []corev1.EndpointPort{{Port: -1}}
		}
		for _, port := range ports {
			for k := range subsets[i].Addresses {
				addAddress(&subsets[i].Addresses[k], port, true, all, byPort)
			}
			for k := range subsets[i].NotReadyAddresses {
				addAddress(&subsets[i].NotReadyAddresses[k], port, false, all, byPort)
			}
		}
	}
	// Ports with the same addresses (and readiness) form one subset.
	sets := map[string]addressSet{}
	portsOf := map[string][]corev1.EndpointPort{}
	for port, addrs := range byPort {
		key := hashAddresses(addrs)
		sets[key] = addrs
		if port.Port > 0 {
			portsOf[key] = append(portsOf[key], port)
		} else if _, ok := portsOf[key]; !ok {
			portsOf[key] = nil
		}
	}
	out := []corev1.EndpointSubset{}
	for key, ports := range portsOf {
		var ready, notReady []corev1.EndpointAddress
		for addr, isReady := range sets[key] {
			if isReady {
				ready = append(ready, *addr)
			} else {
				notReady = append(notReady, *addr)
			}
		}
		out = append(out, corev1.EndpointSubset{Addresses: ready, NotReadyAddresses: notReady, Ports: ports})
	}
	return sortSubsets(out)
}

type addressKey struct {
	ip  string
	uid types.UID
}

// addressSet is addresses with their readiness.
type addressSet map[*corev1.EndpointAddress]bool

func addAddress(addr *corev1.EndpointAddress, port corev1.EndpointPort, ready bool, all map[addressKey]*corev1.EndpointAddress, byPort map[corev1.EndpointPort]addressSet) {
	key := addressKey{ip: addr.IP}
	if addr.TargetRef != nil {
		key.uid = addr.TargetRef.UID
	}
	a := all[key]
	if a == nil {
		c := *addr
		a = &c
		all[key] = a
	}
	set := byPort[port]
	if set == nil {
		set = addressSet{}
		byPort[port] = set
	}
	// Not ready once not ready on this port.
	if was, ok := set[a]; !ok || was {
		set[a] = ready
	}
}

type addrReady struct {
	addr  *corev1.EndpointAddress
	ready bool
}

func hashAddresses(addrs addressSet) string {
	list := make([]addrReady, 0, len(addrs))
	for a, ready := range addrs {
		list = append(list, addrReady{a, ready})
	}
	sort.Slice(list, func(i, j int) bool { return lessAddress(list[i].addr, list[j].addr) })
	return hex.EncodeToString(hashObject(fnv.New128a(), list))
}

// lessAddress orders by IP, then target UID (none first).
func lessAddress(a, b *corev1.EndpointAddress) bool {
	if c := bytes.Compare([]byte(a.IP), []byte(b.IP)); c != 0 {
		return c < 0
	}
	if b.TargetRef == nil {
		return false
	}
	if a.TargetRef == nil {
		return true
	}
	return a.TargetRef.UID < b.TargetRef.UID
}

// hashObject is upstream's DeepHashObject: the FNV hash of the object's
// dump.
func hashObject(h hash.Hash, obj any) []byte {
	h.Reset()
	fmt.Fprintf(h, "%v", dump.ForHash(obj))
	return h.Sum(nil)
}

func sortSubsets(subsets []corev1.EndpointSubset) []corev1.EndpointSubset {
	h := fnv.New128a()
	less := func(a, b any) bool { return bytes.Compare(hashObject(h, a), hashObject(h, b)) < 0 }
	for i := range subsets {
		s := &subsets[i]
		sort.Slice(s.Addresses, func(i, j int) bool { return lessAddress(&s.Addresses[i], &s.Addresses[j]) })
		sort.Slice(s.NotReadyAddresses, func(i, j int) bool { return lessAddress(&s.NotReadyAddresses[i], &s.NotReadyAddresses[j]) })
		sort.Slice(s.Ports, func(i, j int) bool { return less(s.Ports[i], s.Ports[j]) })
	}
	sort.Slice(subsets, func(i, j int) bool { return less(subsets[i], subsets[j]) })
	return subsets
}
