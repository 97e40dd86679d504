// Package certificate is the kubelet's serving certificate bootstrap
// (upstream's --rotate-server-certificates, serverTLSBootstrap): a
// kubernetes.io/kubelet-serving CSR made with the node's own credentials,
// for the node's names and addresses as its Node object reports them,
// kept in <root-dir>/pki/kubelet-server-current.pem and renewed by
// client-go's certificate manager at 70-90% of its lifetime, or as soon as
// the node's addresses change.
package certificate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"slices"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/certificate"
	"k8s.io/klog/v2"
)

// PairNamePrefix names the files of the store: kubelet-server-current.pem
// and the kubelet-server-<time>.pem it links to, as upstream's.
const PairNamePrefix = "kubelet-server"

// NewServingManager is the manager of nodeName's serving certificate,
// stored in certDir. addresses are the Node object's status.addresses
// (none yet: no request is made until it has some). Start it; until it
// has a certificate, Current is nil.
func NewServingManager(ctx context.Context, client kubernetes.Interface, nodeName, certDir string, addresses func() []corev1.NodeAddress) (certificate.Manager, error) {
	store, err := certificate.NewFileStoreWithLogger(klog.FromContext(ctx).V(2), PairNamePrefix, certDir, certDir, "", "")
	if err != nil {
		return nil, fmt.Errorf("kubelet serving certificate store in %s: %w", certDir, err)
	}
	m, err := certificate.NewManager(&certificate.Config{
		Ctx:         &ctx,
		ClientsetFn: func(*tls.Certificate) (kubernetes.Interface, error) { return client, nil },
		GetTemplate: func() *x509.CertificateRequest { return Template(nodeName, addresses()) },
		SignerName:  certificatesv1.KubeletServingSignerName,
		GetUsages:   certificate.DefaultKubeletServingGetUsages,
		// The store, not a bootstrap pair: the self-signed certificate is
		// the server's fallback, never a candidate for the manager.
		CertificateStore: store,
		Name:             "kubelet-serving",
	})
	if err != nil {
		return nil, fmt.Errorf("kubelet serving certificate manager: %w", err)
	}
	return m, nil
}

// Template is the CSR for nodeName's serving certificate: subject
// system:node:<name> in system:nodes, the host and DNS names and the IPs
// of addresses as SANs (sorted, without duplicates); nil without any.
func Template(nodeName string, addresses []corev1.NodeAddress) *x509.CertificateRequest {
	dnsNames, ips := SANs(addresses)
	if len(dnsNames) == 0 && len(ips) == 0 {
		return nil
	}
	return &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: "system:node:" + nodeName, Organization: []string{"system:nodes"}},
		DNSNames:    dnsNames,
		IPAddresses: ips,
	}
}

// SANs are the DNS names (Hostname, InternalDNS, ExternalDNS) and IPs
// (InternalIP, ExternalIP) of a node's addresses, as upstream's kubelet
// puts in its serving CSR.
func SANs(addresses []corev1.NodeAddress) (dnsNames []string, ips []net.IP) {
	seenIP := map[string]bool{}
	for _, a := range addresses {
		if a.Address == "" {
			continue
		}
		switch a.Type {
		case corev1.NodeHostName, corev1.NodeInternalDNS, corev1.NodeExternalDNS:
			if !slices.Contains(dnsNames, a.Address) {
				dnsNames = append(dnsNames, a.Address)
			}
		case corev1.NodeInternalIP, corev1.NodeExternalIP:
			ip := net.ParseIP(a.Address)
			if ip == nil || seenIP[ip.String()] {
				continue
			}
			seenIP[ip.String()] = true
			ips = append(ips, ip)
		}
	}
	slices.Sort(dnsNames)
	slices.SortFunc(ips, func(a, b net.IP) int { return slices.Compare(a.To16(), b.To16()) })
	return dnsNames, ips
}
