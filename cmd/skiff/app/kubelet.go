package app

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/apiserver/options"
	"github.com/skiff-dev/skiff/pkg/kubelet/agent"
)

// newKubeletCommand is the kubelet alone, with upstream kubelet's flag
// names where they exist (--hostname-override, --root-dir,
// --container-runtime-endpoint, --node-ip, --node-labels,
// --register-with-taints, --max-pods, --tls-cert-file, --client-ca-file,
// --rotate-server-certificates).
func newKubeletCommand() *cobra.Command {
	node := &nodeOptions{rootDir: "/var/lib/kubelet"}
	var kubeconfig, tlsCert, tlsKey, clientCA, address string
	var rotateServerCerts bool
	port := 10250
	dataDir := options.DefaultDataDir()
	qps, burst := float32(50), 100
	cmd := &cobra.Command{
		Use:   "kubelet --kubeconfig FILE",
		Short: "Run the kubelet alone (skiff agent is the kubelet and, to come, the proxy)",
		Long: `Run the kubelet of this machine against the API server of --kubeconfig: it
registers the Node, renews its Lease, runs the pods bound to it on containerd
over CRI (skiff's own containerd with its data in <data-dir>/agent/containerd
unless --container-runtime-endpoint names a running one) and serves the kubelet
API on --address:--port, authenticating with client certificates of
--client-ca-file or TokenReview, authorizing with SubjectAccessReview.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if kubeconfig == "" {
				return errors.New("invalid options: --kubeconfig is required")
			}
			if (tlsCert == "") != (tlsKey == "") {
				return errors.New("invalid options: --tls-cert-file and --tls-private-key-file go together")
			}
			o, err := node.agentOptions(dataDir)
			if err != nil {
				return fmt.Errorf("invalid options: %w", err)
			}
			if why := node.runtimeMissing(); why != "" {
				return fmt.Errorf("cannot run a node here: %s", why)
			}
			o.TLSCertFile, o.TLSKeyFile, o.ClientCAFile = tlsCert, tlsKey, clientCA
			// Default: on, unless the certificate is given.
			if !cmd.Flags().Changed("rotate-server-certificates") {
				rotateServerCerts = tlsCert == ""
			}
			o.RotateServerCertificates = rotateServerCerts
			o.ServerAddress = fmt.Sprintf("%s:%d", address, port)
			cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return err
			}
			cfg = restclient.AddUserAgent(cfg, "kubelet")
			cfg.QPS, cfg.Burst = qps, burst
			client, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			klog.InfoS("Starting skiff kubelet", "server", cfg.Host)
			return agent.Run(genericapiserver.SetupSignalContext(), client, o, nil)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&kubeconfig, "kubeconfig", kubeconfig, "Path to the kubeconfig file with the API server's address and the kubelet's credentials (required).")
	fs.StringVar(&dataDir, "data-dir", dataDir, "Directory of skiff's own containerd and of images to import at start (<data-dir>/agent/images).")
	fs.StringVar(&address, "address", "0.0.0.0", "The IP address the kubelet server listens on.")
	fs.IntVar(&port, "port", port, "The kubelet server's port.")
	fs.StringVar(&tlsCert, "tls-cert-file", "", "The kubelet server's certificate; empty: the kubelet-serving one of --rotate-server-certificates, a self-signed one in <root-dir>/pki until it is issued (and without it).")
	fs.StringVar(&tlsKey, "tls-private-key-file", "", "The key of --tls-cert-file.")
	fs.BoolVar(&rotateServerCerts, "rotate-server-certificates", true, "Request the serving certificate with a kubernetes.io/kubelet-serving CSR (approved by skiff's csrapproving controller when its names are the Node's) and renew it as it nears expiry; the self-signed (or --tls-cert-file's) one is served until it is issued. Default: true unless --tls-cert-file is given.")
	fs.StringVar(&clientCA, "client-ca-file", "", "CA bundle that verifies client certificates (the API server's kubelet client certificate); empty: bearer tokens only.")
	fs.Float32Var(&qps, "kube-api-qps", qps, "QPS of the requests to the API server.")
	fs.IntVar(&burst, "kube-api-burst", burst, "Burst of the requests to the API server.")
	node.addFlags(fs)
	// Upstream kubelet's name for the node name.
	fs.Lookup("node-name").Hidden = true
	fs.Lookup("kubelet-port").Hidden = true
	fs.StringVar(&node.nodeName, "hostname-override", "", "The node's name; empty: the hostname.")
	return cmd
}
