package framework

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/skiff-dev/skiff/pkg/apis/core/helper"
)

// The requests upstream assumes for scoring a container that has none, so
// that zero-request pods do not all pile onto one node.
const (
	DefaultMilliCPURequest int64 = 100               // 0.1 core
	DefaultMemoryRequest   int64 = 200 * 1024 * 1024 // 200 MiB
)

// Score bounds: every Score plugin's normalised scores lie in between.
const (
	MaxNodeScore int64 = 100
	MinNodeScore int64 = 0
	// MaxTotalScore bounds the weighted sum over all plugins.
	MaxTotalScore int64 = 1<<63 - 1
)

// Resource is an amount of each schedulable resource.
type Resource struct {
	MilliCPU         int64
	Memory           int64
	EphemeralStorage int64
	// AllowedPodNumber is the node's pod capacity (allocatable "pods").
	AllowedPodNumber int
	// ScalarResources: extended resources, hugepages, attachable volumes.
	ScalarResources map[v1.ResourceName]int64
}

// NewResource adds up a ResourceList.
func NewResource(rl v1.ResourceList) *Resource {
	r := &Resource{}
	r.Add(rl)
	return r
}

// Add adds rl's quantities.
func (r *Resource) Add(rl v1.ResourceList) {
	if r == nil {
		return
	}
	for name, q := range rl {
		switch name {
		case v1.ResourceCPU:
			r.MilliCPU += q.MilliValue()
		case v1.ResourceMemory:
			r.Memory += q.Value()
		case v1.ResourcePods:
			r.AllowedPodNumber += int(q.Value())
		case v1.ResourceEphemeralStorage:
			r.EphemeralStorage += q.Value()
		default:
			if IsScalarResourceName(name) {
				r.AddScalar(name, q.Value())
			}
		}
	}
}

// AddScalar adds q of a scalar resource.
func (r *Resource) AddScalar(name v1.ResourceName, q int64) {
	if r.ScalarResources == nil {
		r.ScalarResources = map[v1.ResourceName]int64{}
	}
	r.ScalarResources[name] += q
}

// SetScalar sets a scalar resource.
func (r *Resource) SetScalar(name v1.ResourceName, q int64) {
	if r.ScalarResources == nil {
		r.ScalarResources = map[v1.ResourceName]int64{}
	}
	r.ScalarResources[name] = q
}

// AddResource adds o.
func (r *Resource) AddResource(o *Resource) {
	r.MilliCPU += o.MilliCPU
	r.Memory += o.Memory
	r.EphemeralStorage += o.EphemeralStorage
	r.AllowedPodNumber += o.AllowedPodNumber
	for k, v := range o.ScalarResources {
		r.AddScalar(k, v)
	}
}

// SubResource subtracts o.
func (r *Resource) SubResource(o *Resource) {
	r.MilliCPU -= o.MilliCPU
	r.Memory -= o.Memory
	r.EphemeralStorage -= o.EphemeralStorage
	r.AllowedPodNumber -= o.AllowedPodNumber
	for k, v := range o.ScalarResources {
		r.AddScalar(k, -v)
	}
}

// Clone is a deep copy.
func (r *Resource) Clone() *Resource {
	c := *r
	if r.ScalarResources != nil {
		c.ScalarResources = make(map[v1.ResourceName]int64, len(r.ScalarResources))
		for k, v := range r.ScalarResources {
			c.ScalarResources[k] = v
		}
	}
	return &c
}

// Get is the amount of one resource (pods as a count).
func (r *Resource) Get(name v1.ResourceName) int64 {
	switch name {
	case v1.ResourceCPU:
		return r.MilliCPU
	case v1.ResourceMemory:
		return r.Memory
	case v1.ResourcePods:
		return int64(r.AllowedPodNumber)
	case v1.ResourceEphemeralStorage:
		return r.EphemeralStorage
	default:
		return r.ScalarResources[name]
	}
}

// IsScalarResourceName: extended resources (domain-qualified names outside
// kubernetes.io, and requests.*-less), hugepages-* and attachable-volumes-*,
// as upstream's schedutil.IsScalarResourceName.
func IsScalarResourceName(name v1.ResourceName) bool {
	s := string(name)
	if len(s) > len(v1.ResourceHugePagesPrefix) && s[:len(v1.ResourceHugePagesPrefix)] == v1.ResourceHugePagesPrefix {
		return true
	}
	if len(s) > len(v1.ResourceAttachableVolumesPrefix) && s[:len(v1.ResourceAttachableVolumesPrefix)] == v1.ResourceAttachableVolumesPrefix {
		return true
	}
	return helper.IsExtendedResourceName(name)
}

// PodInfo is a pod with what the plugins compute from it once.
type PodInfo struct {
	Pod *v1.Pod
	// Requests: what the pod asks of a node (init containers, sidecars and
	// overhead counted as upstream, by component-helpers' PodRequests).
	Requests *Resource
	// NonZeroRequests: Requests' cpu and memory with containers that ask
	// for none counted as DefaultMilliCPURequest and DefaultMemoryRequest
	// (for scoring only).
	NonZeroRequests *Resource
}

// NewPodInfo computes a pod's PodInfo.
func NewPodInfo(pod *v1.Pod) *PodInfo {
	reqs := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	nonZero := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{
		NonMissingContainerRequests: v1.ResourceList{
			v1.ResourceCPU:    *resource.NewMilliQuantity(DefaultMilliCPURequest, resource.DecimalSI),
			v1.ResourceMemory: *resource.NewQuantity(DefaultMemoryRequest, resource.DecimalSI),
		},
	})
	nz := &Resource{}
	nz.MilliCPU = nonZero.Cpu().MilliValue()
	nz.Memory = nonZero.Memory().Value()
	return &PodInfo{Pod: pod, Requests: NewResource(reqs), NonZeroRequests: nz}
}

// HasAffinity: the pod has required or preferred pod (anti-)affinity.
func (p *PodInfo) HasAffinity() bool {
	a := p.Pod.Spec.Affinity
	return a != nil && (a.PodAffinity != nil || a.PodAntiAffinity != nil)
}

// HasRequiredAntiAffinity: the pod has required pod anti-affinity, which
// other pods must respect (upstream's existing-pods anti-affinity check).
func (p *PodInfo) HasRequiredAntiAffinity() bool {
	a := p.Pod.Spec.Affinity
	return a != nil && a.PodAntiAffinity != nil && len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0
}

// HostPortInfo: the host ports in use on a node, by IP and protocol.
type HostPortInfo map[string]map[ProtocolPort]struct{}

// ProtocolPort is one protocol's port.
type ProtocolPort struct {
	Protocol string
	Port     int32
}

// DefaultBindAllHostIP is the host IP of a hostPort without hostIP.
const DefaultBindAllHostIP = "0.0.0.0"

// Add records ip/protocol/port in use.
func (h HostPortInfo) Add(ip, protocol string, port int32) {
	if port <= 0 {
		return
	}
	ip, protocol = sanitize(ip, protocol)
	if h[ip] == nil {
		h[ip] = map[ProtocolPort]struct{}{}
	}
	h[ip][ProtocolPort{protocol, port}] = struct{}{}
}

// Remove frees ip/protocol/port.
func (h HostPortInfo) Remove(ip, protocol string, port int32) {
	if port <= 0 {
		return
	}
	ip, protocol = sanitize(ip, protocol)
	if m, ok := h[ip]; ok {
		delete(m, ProtocolPort{protocol, port})
		if len(m) == 0 {
			delete(h, ip)
		}
	}
}

// CheckConflict: ip/protocol/port collides with a port in use (0.0.0.0
// collides with every IP, as upstream).
func (h HostPortInfo) CheckConflict(ip, protocol string, port int32) bool {
	if port <= 0 {
		return false
	}
	ip, protocol = sanitize(ip, protocol)
	pp := ProtocolPort{protocol, port}
	if ip == DefaultBindAllHostIP {
		for _, m := range h {
			if _, ok := m[pp]; ok {
				return true
			}
		}
		return false
	}
	for _, key := range []string{ip, DefaultBindAllHostIP} {
		if _, ok := h[key][pp]; ok {
			return true
		}
	}
	return false
}

func sanitize(ip, protocol string) (string, string) {
	if ip == "" {
		ip = DefaultBindAllHostIP
	}
	if protocol == "" {
		protocol = string(v1.ProtocolTCP)
	}
	return ip, protocol
}

// ImageStateSummary: an image on a node, and on how many nodes it is.
type ImageStateSummary struct {
	Size     int64
	NumNodes int
}

// podKey identifies a pod across updates.
func podKey(p *v1.Pod) types.UID { return p.UID }
