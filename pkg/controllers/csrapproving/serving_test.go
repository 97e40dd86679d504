package csrapproving

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509/pkix"
	"net"
	"strings"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	certutil "k8s.io/client-go/util/cert"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func servingCSR(t *testing.T, cn, requester string, dns []string, ips []string, groups ...string) *certificatesv1.CertificateSigningRequest {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var parsed []net.IP
	for _, ip := range ips {
		parsed = append(parsed, net.ParseIP(ip))
	}
	req, err := certutil.MakeCSR(key, &pkix.Name{CommonName: cn, Organization: []string{"system:nodes"}}, dns, parsed)
	if err != nil {
		t.Fatal(err)
	}
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "csr"},
		Spec: certificatesv1.CertificateSigningRequestSpec{Request: req, SignerName: certificatesv1.KubeletServingSignerName,
			Usages:   []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth},
			Username: requester, Groups: groups},
	}
}

func TestServingApproval(t *testing.T) {
	n1 := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
		{Type: corev1.NodeHostName, Address: "n1.example"}, {Type: corev1.NodeInternalIP, Address: "10.0.0.1"},
		{Type: corev1.NodeExternalIP, Address: "2001:db8::1"}, {Type: corev1.NodeInternalDNS, Address: "n1.internal"}}}}
	n2 := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
		{Type: corev1.NodeHostName, Address: "n2.example"}, {Type: corev1.NodeInternalIP, Address: "10.0.0.2"}}}}
	nodes := []string{"system:nodes", "system:authenticated"}
	for _, tt := range []struct {
		name    string
		csr     *certificatesv1.CertificateSigningRequest
		approve bool
		event   string
	}{
		{"own addresses", servingCSR(t, "system:node:n1", "system:node:n1", []string{"n1.example", "n1.internal"}, []string{"10.0.0.1", "2001:db8::1"}, nodes...), true, ""},
		{"one IP", servingCSR(t, "system:node:n1", "system:node:n1", nil, []string{"10.0.0.1"}, nodes...), true, ""},
		{"foreign DNS name", servingCSR(t, "system:node:n1", "system:node:n1", []string{"n1.example", "kubernetes.default"}, []string{"10.0.0.1"}, nodes...), false,
			`DNS name "kubernetes.default" is not a hostname or DNS address of node "n1"`},
		{"another node's IP", servingCSR(t, "system:node:n1", "system:node:n1", []string{"n1.example"}, []string{"10.0.0.2"}, nodes...), false,
			`IP address 10.0.0.2 is not an address of node "n1"`},
		{"made by another node", servingCSR(t, "system:node:n1", "system:node:n2", []string{"n1.example"}, []string{"10.0.0.1"}, nodes...), false,
			`requested by "system:node:n2", not by the node it names ("system:node:n1")`},
		{"not in system:nodes", servingCSR(t, "system:node:n1", "system:node:n1", []string{"n1.example"}, nil, "system:authenticated"), false,
			"requester is not in the system:nodes group"},
		{"no such node", servingCSR(t, "system:node:n3", "system:node:n3", []string{"n3.example"}, nil, nodes...), false, `node "n3" does not exist`},
		{"admin", servingCSR(t, "system:node:n1", "kubernetes-admin", []string{"n1.example"}, nil, "system:masters"), false, `requested by "kubernetes-admin"`},
		{"no SANs", servingCSR(t, "system:node:n1", "system:node:n1", nil, nil, nodes...), false, "not a kubelet serving certificate request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			core := fake.NewClientset(tt.csr)
			recorder := record.NewFakeRecorder(10)
			r := &Reconciler{Core: core, Client: crfake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(n1, n2).Build(), Recorder: recorder}
			if err := r.handle(context.Background(), tt.csr.DeepCopy()); err != nil {
				t.Fatal(err)
			}
			got, _ := core.CertificatesV1().CertificateSigningRequests().Get(context.Background(), "csr", metav1.GetOptions{})
			approved := len(got.Status.Conditions) == 1 && got.Status.Conditions[0].Type == certificatesv1.CertificateApproved && got.Status.Conditions[0].Reason == "AutoApproved"
			if approved != tt.approve {
				t.Fatalf("approved %v, want %v: %+v", approved, tt.approve, got.Status.Conditions)
			}
			if !tt.approve && len(got.Status.Conditions) != 0 {
				t.Errorf("conditions of a CSR left pending: %+v", got.Status.Conditions)
			}
			select {
			case e := <-recorder.Events:
				if tt.event == "" || !strings.Contains(e, "Warning NotAutoApproved") || !strings.Contains(e, tt.event) {
					t.Errorf("event %q, want one with %q", e, tt.event)
				}
			default:
				if tt.event != "" {
					t.Errorf("no event, want one with %q", tt.event)
				}
			}
		})
	}
}
