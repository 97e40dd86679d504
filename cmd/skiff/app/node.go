package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/authorizer/rbac/bootstrap"
	"github.com/skiff-dev/skiff/pkg/kubelet/agent"
	"github.com/skiff-dev/skiff/pkg/kubelet/eviction"
	"github.com/skiff-dev/skiff/pkg/kubelet/machine"
	"github.com/skiff-dev/skiff/pkg/kubelet/simulated"
	"github.com/skiff-dev/skiff/pkg/pki"
)

// nodeOptions are the flags of a real node, shared by skiff agent and the
// local node of skiff server (k3s's names).
type nodeOptions struct {
	nodeName                 string
	nodeIPs                  []string
	labels                   string
	taints                   string
	maxPods                  int
	containerRuntimeEndpoint string
	rootDir                  string
	// Where two nodes share a machine (tests): the kubelet port and the
	// pod bridge.
	kubeletPort     int
	cniBridge       string
	podManifestPath string
	eviction        eviction.Flags
	// REGISTRY=URL[,URL...] entries for skiff's own containerd.
	registryMirrors []string
	// Pods' DNS: upstream kubelet's flags.
	clusterDNS    []string
	clusterDomain string
	resolvConf    string
}

func (n *nodeOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&n.nodeName, "node-name", n.nodeName, "The node's name; empty: the hostname.")
	fs.StringSliceVar(&n.nodeIPs, "node-ip", n.nodeIPs, "The node's InternalIP(s); empty: the address of the default route's interface.")
	fs.StringVar(&n.labels, "node-labels", n.labels, "Labels the node registers with, key=value pairs.")
	fs.StringVar(&n.taints, "register-with-taints", n.taints, "Taints the node registers with, key[=value]:effect entries.")
	fs.IntVar(&n.maxPods, "max-pods", 110, "Pods the node runs at most.")
	fs.StringVar(&n.containerRuntimeEndpoint, "container-runtime-endpoint", n.containerRuntimeEndpoint, "A running CRI runtime's socket (unix:///run/containerd/containerd.sock); empty: skiff runs containerd with its data under the data dir, and stops it on exit.")
	fs.StringVar(&n.rootDir, "root-dir", n.rootDir, "The kubelet's root dir (pods' volumes); empty: <data-dir>/agent/kubelet.")
	fs.StringVar(&n.podManifestPath, "pod-manifest-path", n.podManifestPath, "Directory (or file) of static pods' manifests, run by the node with mirror pods in the API.")
	n.eviction.AddFlags(fs)
	fs.IntVar(&n.kubeletPort, "kubelet-port", 10250, "The port of the node's kubelet server.")
	fs.StringArrayVar(&n.registryMirrors, "registry-mirror", n.registryMirrors, "REGISTRY=URL[,URL...]: pull images named REGISTRY/... (e.g. registry.k8s.io) from these mirrors first, e.g. registry.k8s.io=http://127.0.0.1:5000; repeatable. Only for the containerd skiff runs itself.")
	fs.StringVar(&n.cniBridge, "cni-bridge", "cni0", "The Linux bridge of the pod network (another name lets two nodes share a machine, with distinct --cluster-cidr).")
	fs.StringSliceVar(&n.clusterDNS, "cluster-dns", n.clusterDNS, "IPs of the cluster DNS (the kube-dns Service's ClusterIP), the nameservers of dnsPolicy ClusterFirst pods; empty: those resolve as dnsPolicy Default pods, with a warning event.")
	fs.StringVar(&n.clusterDomain, "cluster-domain", "cluster.local", "The cluster's DNS domain: pods' search paths and FQDNs.")
	fs.StringVar(&n.resolvConf, "resolv-conf", n.resolvConf, "The resolver config of dnsPolicy Default pods (and the host search paths of ClusterFirst ones); empty: /etc/resolv.conf, or /run/systemd/resolve/resolv.conf when the former lists only loopback nameservers (systemd-resolved's stub, unreachable from pods).")
}

// agentOptions are the node's agent.Options with its data under dataDir.
func (n *nodeOptions) agentOptions(dataDir string) (agent.Options, error) {
	var errs []error
	o := agent.Options{
		NodeName:                 n.nodeName,
		MaxPods:                  n.maxPods,
		ContainerRuntimeEndpoint: n.containerRuntimeEndpoint,
		RootDir:                  n.rootDir,
		ContainerdDir:            filepath.Join(dataDir, "agent", "containerd"),
		ImagesDir:                filepath.Join(dataDir, "agent", "images"),
		ServerAddress:            fmt.Sprintf(":%d", n.kubeletPort),
		CNIBridge:                n.cniBridge,
		PodManifestPath:          n.podManifestPath,
		Eviction:                 n.eviction,
		ClusterDomain:            n.clusterDomain,
		ResolvConf:               n.resolvConf,
	}
	if o.RootDir == "" {
		o.RootDir = filepath.Join(dataDir, "agent", "kubelet")
	}
	for _, s := range n.nodeIPs {
		ip := net.ParseIP(s)
		if ip == nil {
			errs = append(errs, fmt.Errorf("--node-ip: %q is not an IP address", s))
			continue
		}
		o.NodeIPs = append(o.NodeIPs, ip)
	}
	for _, s := range n.clusterDNS {
		ip := net.ParseIP(s)
		if ip == nil {
			errs = append(errs, fmt.Errorf("--cluster-dns: %q is not an IP address", s))
			continue
		}
		o.ClusterDNS = append(o.ClusterDNS, ip)
	}
	if n.clusterDomain != "" {
		if msgs := validation.IsDNS1123Subdomain(strings.TrimSuffix(n.clusterDomain, ".")); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--cluster-domain: %q: %s", n.clusterDomain, strings.Join(msgs, "; ")))
		}
	}
	var err error
	if o.Labels, err = simulated.ParseLabels(n.labels); err != nil {
		errs = append(errs, fmt.Errorf("--node-labels: %w", err))
	}
	if o.Taints, err = simulated.ParseTaints(n.taints); err != nil {
		errs = append(errs, fmt.Errorf("--register-with-taints: %w", err))
	}
	if err := n.eviction.Apply(&eviction.Config{}); err != nil {
		errs = append(errs, err)
	}
	if o.RegistryMirrors, err = parseRegistryMirrors(n.registryMirrors); err != nil {
		errs = append(errs, fmt.Errorf("--registry-mirror: %w", err))
	} else if len(o.RegistryMirrors) > 0 && n.containerRuntimeEndpoint != "" {
		errs = append(errs, errors.New("--registry-mirror configures the containerd skiff runs; with --container-runtime-endpoint configure that runtime's mirrors instead"))
	}
	if n.kubeletPort <= 0 || n.kubeletPort > 65535 {
		errs = append(errs, fmt.Errorf("--kubelet-port must be a port number, got %d", n.kubeletPort))
	}
	if n.maxPods <= 0 {
		errs = append(errs, fmt.Errorf("--max-pods must be positive, got %d", n.maxPods))
	}
	return o, errors.Join(errs...)
}

// parseRegistryMirrors reads REGISTRY=URL[,URL...] entries; mirrors of one
// registry given twice are tried in the order given.
func parseRegistryMirrors(entries []string) (map[string][]string, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	mirrors := map[string][]string{}
	for _, e := range entries {
		registry, urls, ok := strings.Cut(e, "=")
		if !ok || registry == "" || urls == "" {
			return nil, fmt.Errorf("%q is not REGISTRY=URL[,URL...]", e)
		}
		if strings.ContainsAny(registry, "/\\ ") {
			return nil, fmt.Errorf("%q: registry %q is not a host[:port]", e, registry)
		}
		for _, raw := range strings.Split(urls, ",") {
			u, err := url.Parse(raw)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("%q: mirror %q is not an http(s)://host[:port] URL", e, raw)
			}
			mirrors[registry] = append(mirrors[registry], raw)
		}
	}
	return mirrors, nil
}

// runtimeMissing says why this machine cannot run skiff's own containerd,
// "" if it can.
func (n *nodeOptions) runtimeMissing() string {
	if n.containerRuntimeEndpoint != "" {
		return ""
	}
	if os.Geteuid() != 0 {
		return "running containers needs root"
	}
	for _, bin := range []string{"containerd", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Sprintf("%s is not installed (apt-get install containerd runc containernetworking-plugins, or hack/node-deps.sh)", bin)
		}
	}
	return ""
}

// serverNode is skiff server's local node, as k3s runs one: on this
// machine's containerd, with the API server's loopback client.
type serverNode struct {
	node            *nodeOptions
	network         *nodeNetworkOptions
	dataDir         string
	adminKubeconfig string
}

func (s *serverNode) Name() string { return "agent" }

// WaitedAtExit: skiff server waits for the node to stop its containerd.
func (s *serverNode) WaitedAtExit() {}

func (s *serverNode) Run(ctx context.Context, _ *restclient.Config) error {
	o, err := s.node.agentOptions(s.dataDir)
	if err != nil {
		return err
	}
	if o.NodeName == "" {
		if o.NodeName, err = os.Hostname(); err != nil {
			return err
		}
	}
	// The kubelet's serving certificate is the cluster CA's, which the API
	// server verifies it with; the API server's kubelet client certificate
	// is verified with the same CA.
	pkiDir := filepath.Join(s.dataDir, "pki")
	ca, err := pki.LoadCA(pkiDir)
	if err != nil {
		return fmt.Errorf("the cluster CA for the kubelet's certificate: %w", err)
	}
	hostname, _ := os.Hostname()
	hosts := []string{"localhost", "127.0.0.1"}
	if o.NodeName != "" {
		hosts = append(hosts, o.NodeName)
	} else if hostname != "" {
		hosts = append(hosts, hostname)
	}
	addrs, err := machine.Addresses(hostname, o.NodeIPs)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		hosts = append(hosts, a.Address)
	}
	files, err := ca.EnsureServingCert(filepath.Join(o.RootDir, "pki"), "kubelet", hosts)
	if err != nil {
		return err
	}
	o.TLSCertFile, o.TLSKeyFile = files.CertFile, files.KeyFile
	o.ClientCAFile = filepath.Join(pkiDir, "ca.crt")
	// The node's own identity, as a kubelet's: system:node:<name> in
	// system:nodes, authorized by the Node authorizer and NodeRestriction.
	cfg, err := certClientConfig(ca, s.adminKubeconfig, "system:node:"+o.NodeName, []string{"system:nodes"})
	if err != nil {
		return err
	}
	// The node's networking parts have an identity of their own: the
	// Node authorizer keeps the node's to its own Node and pods.
	networkCfg, err := certClientConfig(ca, s.adminKubeconfig, bootstrap.NodeNetworkUser, nil)
	if err != nil {
		return err
	}
	cfg = restclient.AddUserAgent(cfg, "kubelet")
	cfg.QPS, cfg.Burst = 50, 100
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	klog.InfoS("Starting the local node", "rootDir", o.RootDir, "containerd", o.ContainerdDir)
	return runNodeWithNetwork(ctx, client, o, &nodeNetwork{opts: s.network, config: networkCfg})
}

// certClientConfig is the API server of the admin kubeconfig (its address
// and CA) with a client certificate of user in groups.
func certClientConfig(ca *pki.CA, adminKubeconfig, user string, groups []string) (*restclient.Config, error) {
	admin, err := clientcmd.BuildConfigFromFlags("", adminKubeconfig)
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := ca.NewClientCert(user, groups)
	if err != nil {
		return nil, err
	}
	return &restclient.Config{Host: admin.Host, TLSClientConfig: restclient.TLSClientConfig{
		CAData: admin.CAData, CAFile: admin.CAFile, ServerName: admin.ServerName, CertData: certPEM, KeyData: keyPEM}}, nil
}
