package agent

import (
	"context"
	"net"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

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
func (o *Options) server(ctx context.Context, client kubernetes.Interface, addresses []corev1.NodeAddress, rt *cri.Runtime, provider *stats.Provider, pods podList) (*server.Server, error) {
	certFile, keyFile := o.TLSCertFile, o.TLSKeyFile
	if certFile == "" {
		var ips []net.IP
		for _, a := range addresses {
			if ip := net.ParseIP(a.Address); ip != nil {
				ips = append(ips, ip)
			}
		}
		var err error
		if certFile, keyFile, err = server.SelfSignedCert(filepath.Join(o.RootDir, "pki"), o.NodeName, ips); err != nil {
			return nil, err
		}
	}
	auth, runAuth, err := server.WebhookAuth(client, o.ClientCAFile)
	if err != nil {
		return nil, err
	}
	go runAuth(ctx)
	return server.New(server.Config{
		NodeName: o.NodeName, Address: o.ServerAddress,
		TLSCertFile: certFile, TLSKeyFile: keyFile,
		Auth: auth, Pods: pods, Runtime: rt, Stats: provider,
	})
}
