package simulated

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"sync"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/kubelet"
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
}

// addressBase is where the nodes' InternalIPs start: the shared address
// space of RFC 6598, which no real network routes to pods.
var addressBase = netip.MustParseAddr("100.64.0.0")

// Run registers the nodes and keeps them alive until ctx ends.
func Run(ctx context.Context, client kubernetes.Interface, o Options) error {
	factory := informers.NewSharedInformerFactory(client, 0)
	nodes := factory.Core().V1().Nodes()
	lister := nodes.Lister()
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), nodes.Informer().HasSynced) {
		return ctx.Err()
	}
	klog.InfoS("Starting simulated nodes", "count", o.Count, "prefix", o.Prefix)
	var wg sync.WaitGroup
	for i := range o.Count {
		n := &kubelet.Node{Config: nodeConfig(o, i), Client: client, Runtime: Runtime{}, Nodes: lister}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.Run(ctx); err != nil && ctx.Err() == nil {
				klog.ErrorS(err, "Simulated node stopped", "node", n.Config.Name)
			}
		}()
	}
	wg.Wait()
	factory.Shutdown()
	return nil
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
