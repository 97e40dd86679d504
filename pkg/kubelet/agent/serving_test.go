package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-dev/skiff/pkg/kubelet/certificate"
	"github.com/skiff-dev/skiff/pkg/kubelet/machine"
	"github.com/skiff-dev/skiff/test/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}

const kubectl = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"

// TestServingCertificateBootstrap runs the kubelet server of a node (no
// containers) against a real skiff server: with RotateServerCertificates
// its kubelet-serving CSR, made with the node's credentials for the Node's
// addresses, is approved and signed, the server switches to that
// certificate, and nodes/proxy through the API server (which verifies
// kubelets against the cluster CA) reaches it. A node serving only its
// self-signed certificate is refused by that verification.
func TestServingCertificateBootstrap(t *testing.T) {
	if testing.Short() {
		t.Skip("runs skiff")
	}
	if _, err := os.Stat(kubectl); err != nil {
		t.Skip("no kubectl:", err)
	}
	// Stopped after the nodes' cleanups, which still read its CA file.
	s := harness.StartSkiffTest(t, harness.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// nodes/proxy dials global unicast addresses only.
	ip, err := machine.DefaultRouteIP()
	if err != nil || !ip.IsGlobalUnicast() {
		t.Skipf("no global unicast address to serve on (%v, %v)", ip, err)
	}
	caPEM, err := os.ReadFile(filepath.Join(s.Dir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)

	bootstrapped := startNode(t, ctx, s, ip, "serving-n1", true)
	selfSigned := startNode(t, ctx, s, ip, "serving-n2", false)

	// The CSR: the node's, for its addresses, approved by csrapproving and
	// signed by csrsigning.
	admin := adminClient(t, s)
	var csr *certificatesv1.CertificateSigningRequest
	poll(t, ctx, "serving-n1's kubelet-serving CSR is issued", func() string {
		list, err := admin.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err.Error()
		}
		for i := range list.Items {
			c := &list.Items[i]
			if c.Spec.SignerName == certificatesv1.KubeletServingSignerName && c.Spec.Username == "system:node:serving-n1" && len(c.Status.Certificate) > 0 {
				csr = c
				return ""
			}
		}
		return fmt.Sprintf("CSRs: %+v", list.Items)
	})
	if len(csr.Status.Conditions) == 0 || csr.Status.Conditions[0].Type != certificatesv1.CertificateApproved || csr.Status.Conditions[0].Reason != "AutoApproved" {
		t.Errorf("conditions: %+v", csr.Status.Conditions)
	}
	if !slices.Contains(csr.Spec.Usages, certificatesv1.UsageServerAuth) {
		t.Errorf("usages: %v", csr.Spec.Usages)
	}

	// The server presents it, valid for the node's InternalIP under the
	// cluster CA.
	poll(t, ctx, "serving-n1 presents a certificate of the cluster CA", func() string {
		conn, err := tls.Dial("tcp", bootstrapped, &tls.Config{RootCAs: roots, ServerName: ip.String()})
		if err != nil {
			return err.Error()
		}
		defer conn.Close()
		leaf := conn.ConnectionState().PeerCertificates[0]
		if leaf.Subject.CommonName != "system:node:serving-n1" || !slices.Equal(leaf.Subject.Organization, []string{"system:nodes"}) ||
			!slices.Equal(leaf.DNSNames, []string{"serving-n1.example"}) {
			return fmt.Sprintf("subject %v, DNS names %v", leaf.Subject, leaf.DNSNames)
		}
		return ""
	})
	// Through the API server, which verifies it.
	out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", s.Kubeconfig, "get", "--raw", "/api/v1/nodes/serving-n1/proxy/healthz").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Errorf("nodes/serving-n1/proxy/healthz: %v\n%s", err, out)
	}
	out, err = exec.CommandContext(ctx, kubectl, "--kubeconfig", s.Kubeconfig, "get", "--raw", "/api/v1/nodes/serving-n1/proxy/pods").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"kind":"PodList"`) {
		t.Errorf("nodes/serving-n1/proxy/pods: %v\n%s", err, out)
	}
	// The self-signed one is not trusted.
	out, err = exec.CommandContext(ctx, kubectl, "--kubeconfig", s.Kubeconfig, "get", "--raw", "/api/v1/nodes/serving-n2/proxy/healthz").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "x509: certificate signed by unknown authority") {
		t.Errorf("nodes/serving-n2/proxy/healthz (self-signed, %s): %v\n%s", selfSigned, err, out)
	}
	list, err := admin.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list.Items {
		if c.Spec.Username == "system:node:serving-n2" {
			t.Errorf("serving-n2 made a CSR without RotateServerCertificates: %s", c.Name)
		}
	}
}

func adminClient(t *testing.T, s *harness.Server) kubernetes.Interface {
	cfg, err := s.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(cfg)
}

// startNode registers the Node name, with the node's credentials, at
// ip and a free port, and runs its kubelet server there; the
// address is returned.
func startNode(t *testing.T, ctx context.Context, s *harness.Server, ip net.IP, name string, rotate bool) string {
	t.Helper()
	kubeconfig, err := s.UserKubeconfig(ctx, "system:node:"+name, "system:nodes")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(cfg)
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addresses := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip.String()}, {Type: corev1.NodeHostName, Address: name + ".example"}}
	// Registered with its status, as a kubelet does: a later status
	// update from a stale copy would race the taints the node lifecycle
	// controller adds.
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	node.Status.Addresses = addresses
	node.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(port)
	if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, name+" has its addresses", func() string {
		got, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if len(got.Status.Addresses) == 0 || got.Status.DaemonEndpoints.KubeletEndpoint.Port != int32(port) {
			got.Status.Addresses = addresses
			got.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(port)
			if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
				return err.Error()
			}
			return "status updated"
		}
		return ""
	})
	o := &Options{NodeName: name, RootDir: t.TempDir(), ServerAddress: net.JoinHostPort(ip.String(), strconv.Itoa(port)),
		RotateServerCertificates: rotate, ClientCAFile: filepath.Join(s.Dir, "pki", "ca.crt")}
	srvCtx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	fromNode := nodeAddresses(func() (*corev1.Node, error) { return client.CoreV1().Nodes().Get(srvCtx, name, metav1.GetOptions{}) })
	srv, err := o.server(srvCtx, client, addresses, fromNode, nil, nil, func() []*corev1.Pod { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Run(srvCtx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	if rotate {
		t.Cleanup(func() {
			if _, err := os.Stat(filepath.Join(o.RootDir, "pki", certificate.PairNamePrefix+"-current.pem")); err != nil {
				t.Errorf("the certificate store: %v", err)
			}
		})
	}
	return o.ServerAddress
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
