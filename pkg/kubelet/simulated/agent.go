package simulated

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/kubelet"
	"github.com/skiff-dev/skiff/pkg/kubelet/status"
	"github.com/skiff-dev/skiff/pkg/version"
)

// Options describe the simulated nodes.
type Options struct {
	// Count nodes named <Prefix>0 ... <Prefix><Count-1>.
	Count  int
	Prefix string
	// Capacity of each node (also its allocatable).
	Capacity corev1.ResourceList
	Labels   map[string]string
	Taints   []corev1.Taint
	// StartDelay is the time from a pod's bind (its first sync) to
	// Running.
	StartDelay time.Duration
	// PodCIDRFromNode: pod IPs from the Node's spec.podCIDRs (set by node
	// IPAM) when it has them; else, and without it, from the node's /24 of
	// 10.88.0.0/13 (defaultPodCIDR).
	PodCIDRFromNode bool
	// Workers sync the pods of all nodes; 0: DefaultPodWorkers.
	Workers int
}

// DefaultPodWorkers is how many pods are synced at once, for all nodes.
const DefaultPodWorkers = 8

// podFieldSelector selects every bound pod: one watch serves all the
// simulated nodes (a field selector cannot name N nodes), and the pod
// workers ignore the pods of other nodes.
const podFieldSelector = "spec.nodeName!="

// addressBase is where the nodes' InternalIPs start: the shared address
// space of RFC 6598, which no real network routes to pods.
var addressBase = netip.MustParseAddr("100.64.0.0")

// Run registers the nodes and keeps them and their pods alive until ctx
// ends.
func Run(ctx context.Context, client kubernetes.Interface, o Options) error {
	factory := informers.NewSharedInformerFactory(client, 0)
	nodes := factory.Core().V1().Nodes()
	lister := nodes.Lister()
	podFactory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.FieldSelector = podFieldSelector }))
	pods := podFactory.Core().V1().Pods()

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()

	workers := kubelet.NewPodWorkers(pods.Lister(), lister, status.NewManager(client, nil), nil)
	var simNodes []*kubelet.Node
	for i := range o.Count {
		config := nodeConfig(o, i)
		recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: config.Name})
		hostIPs := kubelet.InternalIPs(config.Addresses)
		rt := &Runtime{StartDelay: o.StartDelay, HostIPs: hostIPs, Recorder: recorder,
			PodCIDRs: podCIDRs(lister, config.Name, i, o.PodCIDRFromNode)}
		workers.AddHost(&kubelet.PodHost{Name: config.Name, Runtime: rt, HostIPs: hostIPs,
			Allocatable: o.Capacity, Ready: Ready, Recorder: recorder})
		simNodes = append(simNodes, &kubelet.Node{Config: config, Client: client, Runtime: rt, Nodes: lister})
	}
	// The caches keep only what the simulation reads: at thousands of pods
	// their volumes, env, probes and managedFields would be most of the
	// agent's memory.
	if err := pods.Informer().SetTransform(slimPod); err != nil {
		return err
	}
	if err := nodes.Informer().SetTransform(dropManagedFields); err != nil {
		return err
	}
	if _, err := pods.Informer().AddEventHandler(workers.Handler()); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	podFactory.Start(ctx.Done())
	defer factory.Shutdown()
	defer podFactory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), nodes.Informer().HasSynced, pods.Informer().HasSynced) {
		return ctx.Err()
	}
	klog.InfoS("Starting simulated nodes", "count", o.Count, "prefix", o.Prefix)
	n := o.Workers
	if n <= 0 {
		n = DefaultPodWorkers
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		workers.Run(ctx, n)
	}()
	for _, node := range simNodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := node.Run(ctx); err != nil && ctx.Err() == nil {
				klog.ErrorS(err, "Simulated node stopped", "node", node.Config.Name)
			}
		}()
	}
	wg.Wait()
	return nil
}

func dropManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// slimPod is the part of a pod a simulated node reads: identity,
// annotations, deletion, the containers' names, images, resources and
// restart policies, what decides the phase, QoS and IPs, and the status.
func slimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	slim := &corev1.Pod{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID, ResourceVersion: pod.ResourceVersion,
			Generation: pod.Generation, CreationTimestamp: pod.CreationTimestamp,
			DeletionTimestamp: pod.DeletionTimestamp, DeletionGracePeriodSeconds: pod.DeletionGracePeriodSeconds,
			Annotations: simAnnotations(pod.Annotations),
		},
		Spec: corev1.PodSpec{
			NodeName: pod.Spec.NodeName, RestartPolicy: pod.Spec.RestartPolicy, HostNetwork: pod.Spec.HostNetwork,
			ReadinessGates: pod.Spec.ReadinessGates, Overhead: pod.Spec.Overhead, Resources: pod.Spec.Resources,
			TerminationGracePeriodSeconds: pod.Spec.TerminationGracePeriodSeconds,
			InitContainers:                slimContainers(pod.Spec.InitContainers),
			Containers:                    slimContainers(pod.Spec.Containers),
		},
		Status: pod.Status,
	}
	return slim, nil
}

func slimContainers(containers []corev1.Container) []corev1.Container {
	if containers == nil {
		return nil
	}
	out := make([]corev1.Container, len(containers))
	for i, c := range containers {
		out[i] = corev1.Container{Name: c.Name, Image: c.Image, Resources: c.Resources, RestartPolicy: c.RestartPolicy}
	}
	return out
}

// simAnnotations are the skiff.dev/sim-* annotations only.
func simAnnotations(annotations map[string]string) map[string]string {
	var out map[string]string
	for k, v := range annotations {
		if strings.HasPrefix(k, "skiff.dev/sim-") {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

// podCIDRs are node i's pod CIDRs: the Node's spec.podCIDRs if fromNode
// and it has them, else its default /24.
func podCIDRs(nodes corelisters.NodeLister, name string, i int, fromNode bool) func() []netip.Prefix {
	fallback := []netip.Prefix{defaultPodCIDR(i)}
	return func() []netip.Prefix {
		if !fromNode {
			return fallback
		}
		node, err := nodes.Get(name)
		if err != nil {
			return fallback
		}
		out := kubelet.PodCIDRs(node)
		if len(out) == 0 {
			return fallback
		}
		return out
	}
}

func nodeConfig(o Options, i int) kubelet.NodeConfig {
	name := fmt.Sprintf("%s%d", o.Prefix, i)
	ip := addressBase
	for range i + 1 {
		ip = ip.Next()
	}
	id := uuid.NewHash(sha256.New(), uuid.NameSpaceOID, []byte(name), 5).String()
	return kubelet.NodeConfig{
		Name:     name,
		Labels:   o.Labels,
		Taints:   o.Taints,
		Capacity: o.Capacity,
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: ip.String()},
			{Type: corev1.NodeHostName, Address: name},
		},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID:      id[:8] + id[9:13] + id[14:18] + id[19:23] + id[24:],
			SystemUUID:     id,
			BootID:         id,
			KernelVersion:  "simulated",
			OSImage:        "skiff simulated node",
			KubeletVersion: version.GitVersion(),
		},
	}
}
