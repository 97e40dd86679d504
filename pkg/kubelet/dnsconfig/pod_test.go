package dnsconfig_test

// The real parts end to end: a pod in skiff's containerd gets the
// resolv.conf the Configurer forms, and resolves the cluster's names
// through skiff's DNS (on the pod network's gateway, as the kube-dns
// Service's ClusterIP would lead there) against a real API server, and an
// outside name through the DNS's upstream.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	skiffdns "github.com/skiff-dev/skiff/pkg/dns"
	"github.com/skiff-dev/skiff/pkg/kubelet/container"
	"github.com/skiff-dev/skiff/pkg/kubelet/cri"
	"github.com/skiff-dev/skiff/pkg/kubelet/dnsconfig"
	"github.com/skiff-dev/skiff/test/containerdtest"
	"github.com/skiff-dev/skiff/test/integration"
	"github.com/skiff-dev/skiff/test/nodeimages"
)

// startUpstream answers example.org A 192.0.2.53, NXDOMAIN otherwise.
func startUpstream(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(r)
		if q := r.Question[0]; strings.EqualFold(q.Name, "example.org.") && q.Qtype == mdns.TypeA {
			m.Answer = []mdns.RR{&mdns.A{Hdr: mdns.RR_Header{Name: q.Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60}, A: net.ParseIP("192.0.2.53")}}
		} else if !strings.EqualFold(q.Name, "example.org.") {
			m.Rcode = mdns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

func TestPodResolvesThroughClusterDNS(t *testing.T) {
	cidr := netip.MustParsePrefix("10.216.9.0/24")
	gateway := "10.216.9.1"
	if testing.Short() {
		t.Skip("runs containerd")
	}
	// A pod network of its own, not the conformance run's bridge or CIDR.
	p := containerdtest.Start(t, containerdtest.Options{Name: "dnscfg", PodCIDR: cidr, Images: true})
	cfg := integration.StartAPIServer(t, integration.ServerOptions{})
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()

	hostConf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(hostConf, []byte("nameserver 192.0.2.250\nsearch corp.example\noptions timeout:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	configurer := &dnsconfig.Configurer{ClusterDNS: []net.IP{net.ParseIP(gateway)}, ClusterDomain: "cluster.local", ResolvConf: hostConf, Logger: klog.Background()}
	rt, err := cri.New(cri.Config{Endpoint: p.Endpoint(), Recorder: record.NewFakeRecorder(100), NodeName: "node-1",
		RootDir: filepath.Join(dir, "kubelet"), PodLogsDir: filepath.Join(dir, "pods"), HostIPs: func() []string { return []string{"127.0.0.1"} },
		PollInterval: 200 * time.Millisecond, GCPeriod: -1, DNS: configurer.PodDNS, ClusterDomain: "cluster.local"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })

	run := func(name string, policy corev1.DNSPolicy, dc *corev1.PodDNSConfig) string {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: uuid.NewUUID()},
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyAlways, DNSPolicy: policy, DNSConfig: dc, Containers: []corev1.Container{{
				Name: "c", Image: nodeimages.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sleep", "3600"},
				TerminationMessagePath: corev1.TerminationMessagePathDefault, TerminationMessagePolicy: corev1.TerminationMessageReadFile}}}}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := rt.RemovePod(ctx, pod.UID); err != nil {
				t.Errorf("RemovePod %s: %v", name, err)
			}
		})
		deadline := time.Now().Add(time.Minute)
		for {
			res, err := rt.SyncPod(ctx, pod)
			if err != nil {
				t.Fatalf("SyncPod %s: %v", name, err)
			}
			if s := res.Status; len(s.Containers) == 1 && s.Containers[0].State == container.StateRunning {
				return s.Containers[0].ID
			}
			if time.Now().After(deadline) {
				t.Fatalf("pod %s not running: %+v", name, res.Status)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	inPod := func(id string, cmd ...string) (string, int) {
		t.Helper()
		stdout, stderr, code, err := rt.ExecSync(ctx, id, cmd, 20*time.Second)
		if err != nil {
			t.Fatalf("exec %v: %v", cmd, err)
		}
		return string(stdout) + string(stderr), code
	}

	// The pods' resolv.conf by their policy.
	clusterPod := run("cluster-first", corev1.DNSClusterFirst, nil)
	if got, _ := inPod(clusterPod, "cat", "/etc/resolv.conf"); !strings.Contains(got, "nameserver "+gateway+"\n") ||
		!strings.Contains(got, "search default.svc.cluster.local svc.cluster.local cluster.local corp.example\n") ||
		!strings.Contains(got, "options ndots:5\n") || strings.Contains(got, "192.0.2.250") {
		t.Errorf("ClusterFirst pod's resolv.conf:\n%s", got)
	}
	defaultPod := run("default", corev1.DNSDefault, nil)
	if got, _ := inPod(defaultPod, "cat", "/etc/resolv.conf"); !strings.Contains(got, "nameserver 192.0.2.250\n") ||
		!strings.Contains(got, "search corp.example\n") || !strings.Contains(got, "options timeout:1\n") {
		t.Errorf("Default pod's resolv.conf:\n%s", got)
	}
	nonePod := run("none", corev1.DNSNone, &corev1.PodDNSConfig{Nameservers: []string{"192.0.2.77"}, Searches: []string{"my.example"},
		Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}}})
	if got, _ := inPod(nonePod, "cat", "/etc/resolv.conf"); !strings.Contains(got, "nameserver 192.0.2.77\n") ||
		!strings.Contains(got, "search my.example\n") || !strings.Contains(got, "options ndots:2\n") || strings.Contains(got, gateway) {
		t.Errorf("None pod's resolv.conf:\n%s", got)
	}

	// The DNS on the gateway (up with the first sandbox), a Service and a
	// headless one with a StatefulSet-style endpoint.
	web, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "pg", Port: 5432}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.DiscoveryV1().EndpointSlices("default").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "db-1", Labels: map[string]string{discoveryv1.LabelServiceName: "db"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.216.9.200"}, Hostname: ptr.To("db-0")}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dnsCtx, stopDNS := context.WithCancel(ctx)
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- skiffdns.Run(dnsCtx, cs, skiffdns.Options{BindAddress: gateway, Port: 53, Upstreams: []string{startUpstream(t)},
			Started: func(*skiffdns.Server) { close(started) }})
	}()
	t.Cleanup(func() {
		stopDNS()
		if err := <-done; err != nil {
			t.Errorf("dns.Run: %v", err)
		}
	})
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("dns.Run: %v", err)
	}

	for _, tc := range []struct{ name, want string }{
		{"web.default.svc.cluster.local", web.Spec.ClusterIP},
		// Through the search path.
		{"web", web.Spec.ClusterIP},
		// busybox's nslookup searches only dotless names.
		{"db-0.db.default.svc.cluster.local", "10.216.9.200"},
		{"example.org", "192.0.2.53"},
	} {
		integration.Eventually(t, 20*time.Second, func() string {
			// busybox's nslookup tries every search path (and fails when
			// one is NXDOMAIN): the answer line is what counts.
			out, code := inPod(clusterPod, "nslookup", tc.name)
			if !strings.Contains(out, "Address: "+tc.want+"\n") {
				return fmt.Sprintf("nslookup %s in the pod (exit %d):\n%s\nwant Address: %s", tc.name, code, out, tc.want)
			}
			return ""
		})
	}
	if out, code := inPod(clusterPod, "nslookup", "nope.default.svc.cluster.local"); code == 0 || !strings.Contains(out, "NXDOMAIN") {
		t.Errorf("nslookup of a missing Service (exit %d):\n%s\nwant NXDOMAIN", code, out)
	}
}
