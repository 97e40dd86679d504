package kubeletclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/skiff-dev/skiff/pkg/pki"
)

type nodes map[string]*corev1.Node

func (n nodes) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	if ns := genericapirequest.NamespaceValue(ctx); ns != "" {
		return nil, apierrors.NewBadRequest("nodes have no namespace, got " + ns)
	}
	if node, ok := n[name]; ok {
		return node, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("nodes"), name)
}

func node(name string, port int32, addrs ...corev1.NodeAddress) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	n.Status.Addresses = addrs
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = port
	n.Status.DeclaredFeatures = []string{"F"}
	return n
}

func TestGetConnectionInfo(t *testing.T) {
	g, err := New(nodes{
		"all": node("all", 10255,
			corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "1.1.1.1"},
			corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.1"},
			corev1.NodeAddress{Type: corev1.NodeHostName, Address: "host-a"}),
		"ips":  node("ips", 0, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "1.1.1.1"}, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.2"}),
		"none": node("none", 0),
	}, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	// A pod's namespace in the context must not reach the node lookup.
	ctx := genericapirequest.WithNamespace(context.Background(), "default")
	for name, want := range map[string]string{"all": "host-a:10255", "ips": "10.0.0.2:10250"} {
		info, err := g.GetConnectionInfo(ctx, nodeName(name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if info.HostPort() != want || info.Scheme != "https" || info.Transport == nil || info.InsecureSkipTLSVerifyTransport == nil || info.NodeFeatures[0] != "F" {
			t.Errorf("%s: %+v, want %s", name, info, want)
		}
	}
	if _, err := g.GetConnectionInfo(ctx, "none"); err == nil || !strings.Contains(err.Error(), "no preferred addresses found") {
		t.Errorf("no addresses: %v", err)
	}
	if _, err := g.GetConnectionInfo(ctx, "missing"); !apierrors.IsNotFound(err) {
		t.Errorf("missing node: %v", err)
	}

	cfg := DefaultConfig()
	cfg.PreferredAddressTypes = []string{string(corev1.NodeExternalIP)}
	g, _ = New(nodes{"all": node("all", 1, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "1.1.1.1"})}, cfg)
	if info, err := g.GetConnectionInfo(ctx, "all"); err != nil || info.Hostname != "1.1.1.1" {
		t.Errorf("ExternalIP preferred: %+v %v", info, err)
	}
}

// TestTransportVerifies: with a CA the kubelet's certificate is checked,
// the insecure transport skips it.
func TestTransportVerifies(t *testing.T) {
	kubelet := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })) //nolint:errcheck
	defer kubelet.Close()
	dir := t.TempDir()
	other, err := pki.EnsureCA(filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	right := filepath.Join(dir, "right.crt")
	if err := os.WriteFile(right, pemOf(kubelet), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		caFile   string
		insecure bool
		ok       bool
	}{
		{"right CA", right, false, true},
		{"wrong CA", other.CertFile, false, false},
		{"wrong CA, insecure", other.CertFile, true, true},
		{"no CA", "", false, true},
	} {
		cfg := DefaultConfig()
		cfg.CAFile = tc.caFile
		rt, err := MakeTransport(cfg, tc.insecure)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Client{Transport: rt}).Get(kubelet.URL)
		if err == nil {
			resp.Body.Close()
		}
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
