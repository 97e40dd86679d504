// Package agent runs one real node: its containerd (started by skiff unless
// an endpoint is given), the CRI runtime, pod volumes and probes behind the
// pod workers of pkg/kubelet, the pod network's CNI config from the Node's
// podCIDRs, and the Node's registration, Lease and status.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/skiff-dev/skiff/pkg/kubelet"
	"github.com/skiff-dev/skiff/pkg/kubelet/cni"
	"github.com/skiff-dev/skiff/pkg/kubelet/containerd"
	"github.com/skiff-dev/skiff/pkg/kubelet/containerspec"
	"github.com/skiff-dev/skiff/pkg/kubelet/cri"
	"github.com/skiff-dev/skiff/pkg/kubelet/dnsconfig"
	"github.com/skiff-dev/skiff/pkg/kubelet/eviction"
	"github.com/skiff-dev/skiff/pkg/kubelet/machine"
	"github.com/skiff-dev/skiff/pkg/kubelet/prober"
	"github.com/skiff-dev/skiff/pkg/kubelet/server"
	"github.com/skiff-dev/skiff/pkg/kubelet/server/stats"
	"github.com/skiff-dev/skiff/pkg/kubelet/staticpod"
	"github.com/skiff-dev/skiff/pkg/kubelet/status"
	"github.com/skiff-dev/skiff/pkg/kubelet/volume"
	"github.com/skiff-dev/skiff/pkg/version"
)

// DefaultPodWorkers is how many pods are synced at once: a real node's
// syncs wait on its runtime.
const DefaultPodWorkers = 4

// Options say how to run the node.
type Options struct {
	// NodeName defaults to the hostname.
	NodeName string
	Labels   map[string]string
	Taints   []corev1.Taint
	// NodeIPs are the InternalIPs (--node-ip); none: the address of the
	// default route's interface.
	NodeIPs []net.IP
	// MaxPods defaults to upstream's 110.
	MaxPods int
	// RootDir is the kubelet's root dir (pods' volumes, termination logs).
	RootDir string
	// ContainerRuntimeEndpoint is a running CRI runtime's socket; empty:
	// skiff runs containerd with its data in ContainerdDir.
	ContainerRuntimeEndpoint string
	ContainerdDir            string
	// CNIConfDir is where the pod network's conflist goes when the runtime
	// is not skiff's own (with its own, it is that containerd's).
	CNIConfDir string
	// ImagesDir holds image archives (*.tar) imported at start, as k3s's
	// agent/images.
	ImagesDir string
	// PauseBinary builds the sandbox image when the runtime lacks it;
	// empty: "pause" next to the running executable.
	PauseBinary string
	// RegistryMirrors of skiff's containerd, e.g. registry.k8s.io →
	// http://127.0.0.1:5000.
	RegistryMirrors map[string][]string
	// Eviction are the --eviction-* flags.
	Eviction eviction.Flags
	// PodManifestPath holds static pods' manifests (--pod-manifest-path).
	PodManifestPath string
	// PodLogsDir overrides /var/log/pods (tests).
	PodLogsDir string
	// Workers: pods synced at once; default DefaultPodWorkers.
	Workers int

	// ServerAddress is the kubelet server's (default ":10250").
	ServerAddress string
	// TLSCertFile and TLSKeyFile are its serving certificate; empty: a
	// self-signed one in <RootDir>/pki.
	TLSCertFile, TLSKeyFile string
	// RotateServerCertificates requests the serving certificate with a
	// kubernetes.io/kubelet-serving CSR and renews it (upstream's
	// --rotate-server-certificates); TLSCertFile's or the self-signed one
	// is served until it is issued.
	RotateServerCertificates bool
	// CNIBridge names the pod network's bridge (default cni0).
	CNIBridge string
	// CNIMTU is the pods' interface MTU; 0 lets the bridge plugin choose.
	CNIMTU int
	// CNISkipMasquerade turns off the bridge plugin's masquerading, for
	// when the node's pod network masquerades traffic leaving the cluster
	// itself (pod-to-pod traffic across nodes keeps its source IP).
	CNISkipMasquerade bool
	// ClientCAFile verifies client certificates (the API server's kubelet
	// client certificate); empty: bearer tokens only.
	ClientCAFile string
	// ClusterDNS are the DNS servers of ClusterFirst pods (--cluster-dns);
	// none: they resolve as Default pods, with a warning.
	ClusterDNS []net.IP
	// ClusterDomain is --cluster-domain (pods' search paths and FQDNs);
	// empty: cluster.local.
	ClusterDomain string
	// ResolvConf is the host's resolver config of Default pods
	// (--resolv-conf); empty: /etc/resolv.conf, or systemd-resolved's
	// list when that holds only its loopback stub.
	ResolvConf string
}

// Node is a running node, for the kubelet server and tests.
type Node struct {
	Name    string
	Runtime *cri.Runtime
	Prober  *prober.Manager
	Pods    func() []*corev1.Pod
}

// Run runs the node until ctx ends. ready, if not nil, is called once the
// node's parts run.
func Run(ctx context.Context, client kubernetes.Interface, o Options, ready func(*Node)) error {
	if err := o.complete(); err != nil {
		return err
	}
	logger := klog.FromContext(ctx).WithValues("node", o.NodeName)
	if err := os.MkdirAll(o.RootDir, 0o750); err != nil {
		return err
	}
	host, err := machine.Read(o.RootDir)
	if err != nil {
		return err
	}
	addresses, err := machine.Addresses(host.Hostname, o.NodeIPs)
	if err != nil {
		return err
	}

	endpoint, confDir := o.ContainerRuntimeEndpoint, o.CNIConfDir
	if endpoint == "" {
		p, err := containerd.Start(ctx, containerd.Options{DataDir: o.ContainerdDir, RegistryMirrors: o.RegistryMirrors})
		if err != nil {
			return fmt.Errorf("starting containerd: %w", err)
		}
		endpoint, confDir = p.Endpoint(), p.CNIConfDir()
		logger.Info("Containerd runs", "pid", p.Pid(), "endpoint", endpoint, "version", p.Version())
		defer func() {
			// Stopped on a graceful exit only: after a kill -9 it outlives
			// us, and so do the containers (their shims outlive containerd
			// too).
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
			defer cancel()
			if err := p.Stop(stopCtx); err != nil {
				logger.Error(err, "Stopping containerd")
			}
		}()
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: o.NodeName})

	hostIPs := kubelet.InternalIPs(addresses)
	// The prober runs its exec probes through the runtime, and the runtime
	// asks it which containers failed their liveness probe.
	var probes *prober.Manager
	var workers *kubelet.PodWorkers
	volumes := &volume.Manager{Client: client, RootDir: o.RootDir, NodeName: o.NodeName}
	dnsConfig := &dnsconfig.Configurer{ClusterDNS: o.ClusterDNS, ClusterDomain: o.ClusterDomain, ResolvConf: o.ResolvConf,
		NodeIPs: parseIPs(hostIPs), Recorder: recorder, Logger: logger,
		NodeRef: &corev1.ObjectReference{Kind: "Node", Name: o.NodeName, UID: types.UID(o.NodeName)}}
	dnsConfig.CheckHostLimits()
	capacity := host.Capacity(o.MaxPods)
	allocatable := machine.Allocatable(capacity)
	rt, err := cri.New(cri.Config{
		// Unset limits in resourceFieldRef read as the node's allocatable.
		NodeAllocatable: func() corev1.ResourceList { return allocatable },
		MemoryCapacity:  host.MemoryCapacity,
		Endpoint:        endpoint, Client: client, Recorder: recorder, NodeName: o.NodeName, Volumes: volumes,
		RootDir: o.RootDir, HostIPs: func() []string { return hostIPs }, PodLogsDir: o.PodLogsDir,
		DNS: dnsConfig.PodDNS, ClusterDomain: o.ClusterDomain,
		ContainerToKill: func(pod *corev1.Pod, name, id string) (string, time.Duration, bool) {
			k, ok := probes.ContainerToKill(pod, name, id)
			if !ok {
				return "", 0, false
			}
			return k.Message, k.GracePeriod, true
		},
		// A background image pull that ended wakes its pod.
		Enqueue: func(uid types.UID) { workers.EnqueueUID(uid) },
	})
	if err != nil {
		return err
	}
	defer rt.Close()
	if err := ensureImages(ctx, rt.ImageService(), endpoint, o); err != nil {
		logger.Error(err, "Node images are missing; pods cannot start until the sandbox image is present", "image", containerd.DefaultSandboxImage)
	}

	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.FieldSelector = fields.OneTermEqualSelector(metav1.ObjectNameField, o.NodeName).String()
		}))
	nodes := factory.Core().V1().Nodes()
	podFactory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", o.NodeName).String()
		}))
	pods := podFactory.Core().V1().Pods()

	// Static pods (--pod-manifest-path) run beside the API's, their status
	// written to their mirror pods.
	var podLister corelisters.PodLister = pods.Lister()
	statuses := status.NewManager(client, nil)
	var static *staticpod.Source
	if o.PodManifestPath != "" {
		if static, err = staticpod.NewSource(staticpod.Options{Path: o.PodManifestPath, NodeName: o.NodeName}); err != nil {
			return err
		}
		podLister = staticpod.Lister(pods.Lister(), static)
		statuses.WriteUID = func(p *corev1.Pod) types.UID { return staticpod.MirrorUID(pods.Lister(), p) }
	}
	workers = kubelet.NewPodWorkers(podLister, nodes.Lister(), statuses, nil)
	if static != nil {
		changes := static.Changes()
		go static.Run(ctx)
		go staticpod.NewMirrors(client, o.NodeName).Run(ctx, static, 0)
		go syncStaticPods(ctx, static, changes, workers)
	}
	probes = prober.NewManager(prober.Options{Execer: rt, Recorder: recorder,
		OnUpdate: func(u prober.Update) { workers.EnqueueUID(u.PodUID) }})
	defer probes.Stop()
	runtime := &probingRuntime{Runtime: rt, probes: probes, volumes: &refresher{volumes: volumes}}
	provider, err := stats.New(stats.Config{NodeName: o.NodeName, Runtime: rt, RootDir: o.RootDir,
		ImageFsDir: o.ContainerdDir, PodLogsDir: o.PodLogsDir})
	if err != nil {
		return err
	}
	go provider.Run(ctx)
	// Eviction under node pressure and of pods over their local storage
	// limits, at upstream's default thresholds unless --eviction-* say.
	evictionCfg := eviction.Config{NodeName: o.NodeName, RootDir: o.RootDir, ImageFsDir: o.ContainerdDir,
		Summary:     func(ctx context.Context) (*statsapi.Summary, error) { return provider.Summary(ctx, false) },
		VolumeUsage: volumes.Usage,
		Pods: func() []*corev1.Pod {
			list, _ := pods.Lister().List(everything)
			return list
		},
		Kill: eviction.KillWith(runtime), Reclaim: rt.GarbageCollect, Client: client, Recorder: recorder}
	if err := o.Eviction.Apply(&evictionCfg); err != nil {
		return err
	}
	evictions, err := eviction.New(evictionCfg)
	if err != nil {
		return err
	}
	workers.AddHost(&kubelet.PodHost{Name: o.NodeName, Runtime: runtime, HostIPs: hostIPs,
		Allocatable: allocatable, Ready: probes.Ready, Started: probes.Started, Admit: evictions.Admit, Recorder: recorder})
	if _, err := pods.Informer().AddEventHandler(workers.Handler()); err != nil {
		return err
	}
	network := &podNetwork{confDir: confDir, dataDir: filepath.Join(o.RootDir, "cni"), bridge: o.CNIBridge, mtu: o.CNIMTU, skipMasquerade: o.CNISkipMasquerade}
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { network.update(ctx, obj) },
		UpdateFunc: func(_, obj any) { network.update(ctx, obj) },
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	podFactory.Start(ctx.Done())
	defer factory.Shutdown()
	defer podFactory.Shutdown()

	_, portText, _ := net.SplitHostPort(o.ServerAddress)
	port, _ := strconv.Atoi(portText)
	node := &kubelet.Node{
		Config: kubelet.NodeConfig{
			Name: o.NodeName, Labels: o.Labels, Taints: o.Taints,
			Capacity: capacity, Allocatable: allocatable, Addresses: addresses,
			NodeInfo:    host.NodeInfo(version.GitVersion()),
			KubeletPort: int32(port),
		},
		Client: client, Runtime: runtime, Nodes: nodes.Lister(), Pressure: evictions.Pressure,
	}
	if !cache.WaitForCacheSync(ctx.Done(), nodes.Informer().HasSynced, pods.Informer().HasSynced) {
		return ctx.Err()
	}
	go evictions.Run(ctx)
	logger.Info("Starting the node", "runtime", rt.Version(), "addresses", addresses, "rootDir", o.RootDir)
	// The kubelet server listens before the node runs: a node whose port
	// another owns would have its logs and execs answered by that one.
	srv, err := o.server(ctx, client, addresses, nodeAddresses(func() (*corev1.Node, error) { return nodes.Lister().Get(o.NodeName) }), rt, provider, func() []*corev1.Pod {
		list, _ := pods.Lister().List(everything)
		return list
	})
	if err != nil {
		return err
	}
	if _, err := srv.Listen(); err != nil {
		return fmt.Errorf("kubelet server on %s: %w", o.ServerAddress, err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		n := o.Workers
		if n <= 0 {
			n = DefaultPodWorkers
		}
		workers.Run(ctx, n)
	}()
	go func() {
		defer wg.Done()
		if err := node.Run(ctx); err != nil && ctx.Err() == nil {
			logger.Error(err, "Node stopped")
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Run(ctx); err != nil && ctx.Err() == nil {
			logger.Error(err, "Kubelet server stopped")
		}
	}()
	if ready != nil {
		ready(&Node{Name: o.NodeName, Runtime: rt, Prober: probes, Pods: func() []*corev1.Pod {
			list, _ := pods.Lister().List(everything)
			return list
		}})
	}
	wg.Wait()
	logger.Info("Node stopped")
	return nil
}

func (o *Options) complete() error {
	if o.NodeName == "" {
		name, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("no node name: %w", err)
		}
		o.NodeName = name
	}
	if o.MaxPods <= 0 {
		o.MaxPods = machine.DefaultMaxPods
	}
	if o.RootDir == "" {
		return errors.New("no kubelet root dir")
	}
	if o.ContainerRuntimeEndpoint == "" && o.ContainerdDir == "" {
		return errors.New("neither a container runtime endpoint nor a containerd dir")
	}
	if o.ServerAddress == "" {
		o.ServerAddress = fmt.Sprintf(":%d", server.DefaultPort)
	}
	if o.ContainerRuntimeEndpoint != "" && o.CNIConfDir == "" {
		o.CNIConfDir = "/etc/cni/net.d"
	}
	if o.ClusterDomain == "" {
		o.ClusterDomain = containerspec.DefaultClusterDomain
	}
	if o.ResolvConf == "" {
		o.ResolvConf = dnsconfig.HostResolvConf()
	}
	return nil
}

func parseIPs(list []string) []net.IP {
	var ips []net.IP
	for _, s := range list {
		if ip := net.ParseIP(s); ip != nil {
			ips = append(ips, ip)
		}
	}
	return ips
}

// podNetwork writes the CNI conflist of the Node's podCIDRs: until it has
// them the runtime's network is not ready, and so the node is not.
type podNetwork struct {
	confDir, dataDir, bridge string
	mtu                      int
	skipMasquerade           bool
	mu                       sync.Mutex
	written                  string
}

func (n *podNetwork) update(ctx context.Context, obj any) {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	prefixes := kubelet.PodCIDRs(node)
	if len(prefixes) == 0 {
		return
	}
	key := fmt.Sprint(prefixes)
	n.mu.Lock()
	defer n.mu.Unlock()
	if key == n.written {
		return
	}
	if err := cni.WriteConfig(n.confDir, cni.Config{PodCIDRs: prefixes, DataDir: n.dataDir, BridgeName: n.bridge, NetworkName: n.networkName(),
		MTU: n.mtu, SkipMasquerade: n.skipMasquerade}); err != nil {
		klog.FromContext(ctx).Error(err, "Writing the pod network's CNI config", "podCIDRs", key)
		return
	}
	n.written = key
	klog.FromContext(ctx).Info("Pod network configured", "podCIDRs", key, "confDir", n.confDir)
}

// networkName is the CNI network's: its own per bridge, so that cleaning
// one node's network (its iptables rules are marked with the name) leaves
// another's on the same machine alone.
func (n *podNetwork) networkName() string {
	if n.bridge == "" || n.bridge == cni.DefaultBridgeName {
		return cni.DefaultNetworkName
	}
	return cni.DefaultNetworkName + "-" + n.bridge
}

// syncStaticPods syncs the static pods again on every change of their
// manifests, those that went too (so that they are stopped).
func syncStaticPods(ctx context.Context, src *staticpod.Source, changes <-chan struct{}, workers *kubelet.PodWorkers) {
	known := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-changes:
		}
		now := map[string]bool{}
		for _, p := range src.Pods() {
			now[p.Namespace+"/"+p.Name] = true
			known[p.Namespace+"/"+p.Name] = true
		}
		for key := range known {
			namespace, name, _ := strings.Cut(key, "/")
			workers.Enqueue(namespace, name)
			if !now[key] {
				delete(known, key)
			}
		}
	}
}
