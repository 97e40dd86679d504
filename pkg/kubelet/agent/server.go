package agent

import (
	"context"
	"net"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/pkg/kubelet/certificate"
	"github.com/skiff-dev/skiff/pkg/kubelet/cri"
	"github.com/skiff-dev/skiff/pkg/kubelet/server"
	"github.com/skiff-dev/skiff/pkg/kubelet/server/stats"
)

// podList is the server's view of the node's pods.
type podList func() []*corev1.Pod

func (f podList) Pods() []*corev1.Pod { return f() }

// server is the kubelet's HTTPS server on :10250: requests authenticated
// by client certificate or TokenReview and authorized by
// SubjectAccessReview against the API server, as upstream's
// --authentication-token-webhook --authorization-mode=Webhook.
//
// Its certificate: with RotateServerCertificates, a kubelet-serving one
// for the Node object's addresses (nodeAddresses), which the API server
// verifies against the cluster CA; until it is issued, and without
// RotateServerCertificates, TLSCertFile's or a self-signed one for the
// machine's addresses.
func (o *Options) server(ctx context.Context, client kubernetes.Interface, addresses []corev1.NodeAddress, nodeAddresses func() []corev1.NodeAddress, rt *cri.Runtime, provider *stats.Provider, pods podList) (*server.Server, error) {
	certFile, keyFile := o.TLSCertFile, o.TLSKeyFile
	pkiDir := filepath.Join(o.RootDir, "pki")
	if certFile == "" {
		var ips []net.IP
		for _, a := range addresses {
			if ip := net.ParseIP(a.Address); ip != nil {
				ips = append(ips, ip)
			}
		}
		var err error
		if certFile, keyFile, err = server.SelfSignedCert(pkiDir, o.NodeName, ips); err != nil {
			return nil, err
		}
	}
	cfg := server.Config{
		NodeName: o.NodeName, Address: o.ServerAddress,
		TLSCertFile: certFile, TLSKeyFile: keyFile,
		Pods: pods, Stats: provider,
	}
	if rt != nil {
		// A nil *cri.Runtime in the interface would not read as none.
		cfg.Runtime = rt
	}
	if o.RotateServerCertificates {
		m, err := certificate.NewServingManager(ctx, client, o.NodeName, pkiDir, nodeAddresses)
		if err != nil {
			return nil, err
		}
		// Stopped with ctx.
		m.Start()
		cfg.CurrentCertificate = m.Current
	}
	auth, runAuth, err := server.WebhookAuth(client, o.ClientCAFile)
	if err != nil {
		return nil, err
	}
	go runAuth(ctx)
	cfg.Auth = auth
	return server.New(cfg)
}

// nodeAddresses reads the Node object's status.addresses.
func nodeAddresses(get func() (*corev1.Node, error)) func() []corev1.NodeAddress {
	return func() []corev1.NodeAddress {
		node, err := get()
		if err != nil || node == nil {
			return nil
		}
		return node.Status.Addresses
	}
}
