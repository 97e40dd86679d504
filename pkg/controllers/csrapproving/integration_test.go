package csrapproving

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"

	"github.com/skiff-dev/skiff/test/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}

// TestServingCSRs, on a real skiff server: a node's kubelet-serving CSR
// for its Node's addresses, made with its own credentials, is approved and
// signed by the cluster CA; one with a foreign SAN, or made by another
// user than the node, stays pending with a NotAutoApproved event (another
// node may not make one: NodeRestriction); one made before its
// Node reports the addresses is approved once it does.
func TestServingCSRs(t *testing.T) {
	s := harness.StartSkiffTest(t, harness.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cfg := s.AdminConfig(t)
	admin := kubernetes.NewForConfigOrDie(cfg)
	caPEM, err := os.ReadFile(filepath.Join(s.Dir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)

	n1, n2 := nodeClient(t, ctx, s, "csr-n1"), nodeClient(t, ctx, s, "csr-n2")
	register(t, ctx, n1, "csr-n1", "10.9.0.1")
	register(t, ctx, n2, "csr-n2", "10.9.0.2")

	good := create(t, ctx, n1, "csr-n1", []string{"csr-n1.example"}, []string{"10.9.0.1"})
	foreignDNS := create(t, ctx, n1, "csr-n1", []string{"csr-n1.example", "kubernetes.default.svc"}, []string{"10.9.0.1"})
	foreignIP := create(t, ctx, n1, "csr-n1", []string{"csr-n1.example"}, []string{"10.9.0.2"})
	// Another node may not even ask (NodeRestriction); another user may,
	// but is not the node.
	if _, err := createCSR(ctx, n2, "csr-n1", []string{"csr-n1.example"}, []string{"10.9.0.1"}); err == nil ||
		!strings.Contains(err.Error(), "can only create a node CSR with CN=system:node:csr-n2") {
		t.Errorf("csr-n2 asking for csr-n1's certificate: %v", err)
	}
	byOther := create(t, ctx, admin, "csr-n1", []string{"csr-n1.example"}, []string{"10.9.0.1"})

	issued := waitIssued(t, ctx, admin, good)
	block, _ := pem.Decode(issued.Status.Certificate)
	if block == nil {
		t.Fatalf("certificate: %q", issued.Status.Certificate)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "csr-n1.example", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("the issued certificate under the cluster CA: %v", err)
	}
	if c := issued.Status.Conditions; len(c) == 0 || c[0].Type != certificatesv1.CertificateApproved || c[0].Reason != "AutoApproved" {
		t.Errorf("conditions: %+v", c)
	}

	for name, why := range map[string]string{
		foreignDNS: `DNS name "kubernetes.default.svc" is not a hostname or DNS address of node "csr-n1"`,
		foreignIP:  `IP address 10.9.0.2 is not an address of node "csr-n1"`,
		byOther:    `, not by the node it names ("system:node:csr-n1")`,
	} {
		waitEvent(t, ctx, admin, name, why)
		got, err := admin.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Status.Conditions) != 0 || len(got.Status.Certificate) != 0 {
			t.Errorf("%s (%s): conditions %+v, certificate %d bytes", name, why, got.Status.Conditions, len(got.Status.Certificate))
		}
	}

	// Made before the Node has that address: pending, then approved once
	// the Node reports it.
	early := create(t, ctx, n1, "csr-n1", []string{"csr-n1.example"}, []string{"10.9.0.11"})
	waitEvent(t, ctx, admin, early, `IP address 10.9.0.11 is not an address of node "csr-n1"`)
	node, err := n1.CoreV1().Nodes().Get(ctx, "csr-n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status.Addresses = append(node.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.9.0.11"})
	if _, err := n1.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitIssued(t, ctx, admin, early)
}

func nodeClient(t *testing.T, ctx context.Context, s *harness.Server, name string) kubernetes.Interface {
	kubeconfig, err := s.UserKubeconfig(ctx, "system:node:"+name, "system:nodes")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(cfg)
}

func register(t *testing.T, ctx context.Context, c kubernetes.Interface, name, ip string) {
	t.Helper()
	addresses := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}, {Type: corev1.NodeHostName, Address: name + ".example"}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Addresses: addresses}}
	if _, err := c.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// skiff drops the status of a created Node (upstream keeps it): set
	// it again, from a fresh copy (the node lifecycle controller taints it
	// meanwhile, and a node may not change its taints).
	poll(t, ctx, name+" has its addresses", func() string {
		got, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if len(got.Status.Addresses) == 0 {
			got.Status.Addresses = addresses
			if _, err := c.CoreV1().Nodes().UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
				return err.Error()
			}
			return "status updated"
		}
		return ""
	})
}

// create makes a kubelet-serving CSR for node with c's credentials, as
// client-go's certificate manager does.
func create(t *testing.T, ctx context.Context, c kubernetes.Interface, node string, dns, ips []string) string {
	t.Helper()
	name, err := createCSR(ctx, c, node, dns, ips)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

func createCSR(ctx context.Context, c kubernetes.Interface, node string, dns, ips []string) (string, error) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var parsed []net.IP
	for _, ip := range ips {
		parsed = append(parsed, net.ParseIP(ip))
	}
	req, err := certutil.MakeCSR(key, &pkix.Name{CommonName: "system:node:" + node, Organization: []string{"system:nodes"}}, dns, parsed)
	if err != nil {
		return "", err
	}
	csr, err := c.CertificatesV1().CertificateSigningRequests().Create(ctx, &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "csr-"},
		Spec: certificatesv1.CertificateSigningRequestSpec{Request: req, SignerName: certificatesv1.KubeletServingSignerName,
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return csr.Name, nil
}

func waitIssued(t *testing.T, ctx context.Context, c kubernetes.Interface, name string) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	var csr *certificatesv1.CertificateSigningRequest
	poll(t, ctx, name+" is issued", func() string {
		var err error
		if csr, err = c.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{}); err != nil {
			return err.Error()
		}
		if len(csr.Status.Certificate) == 0 {
			return fmt.Sprintf("status %+v", csr.Status.Conditions)
		}
		return ""
	})
	return csr
}

func waitEvent(t *testing.T, ctx context.Context, c kubernetes.Interface, csr, message string) {
	t.Helper()
	poll(t, ctx, csr+"'s NotAutoApproved event", func() string {
		list, err := c.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
			"involvedObject.kind": "CertificateSigningRequest", "involvedObject.name": csr}.String()})
		if err != nil {
			return err.Error()
		}
		for _, e := range list.Items {
			if e.Reason == "NotAutoApproved" && e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, message) {
				return ""
			}
		}
		return fmt.Sprintf("events: %+v", list.Items)
	})
}

func poll(t *testing.T, ctx context.Context, what string, cond func() string) {
	t.Helper()
	last := ""
	for {
		if last = cond(); last == "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within the deadline; last: %s", what, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
