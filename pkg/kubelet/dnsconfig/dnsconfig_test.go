package dnsconfig

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

const hostResolvConf = `# the host's
nameserver 192.0.2.1
nameserver 192.0.2.2
search example.org corp.example.org.
options timeout:2 attempts:3
options timeout:1
`

func writeConf(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func pod(policy corev1.DNSPolicy, hostNetwork bool, dc *corev1.PodDNSConfig) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "team", UID: "u1"},
		Spec: corev1.PodSpec{DNSPolicy: policy, HostNetwork: hostNetwork, DNSConfig: dc}}
}

func configurer(t *testing.T, resolvConf string, clusterDNS ...string) (*Configurer, *record.FakeRecorder) {
	rec := record.NewFakeRecorder(10)
	c := &Configurer{ClusterDomain: "cluster.local", ResolvConf: resolvConf, NodeIPs: []net.IP{net.ParseIP("10.0.0.5")},
		Recorder: rec, NodeRef: &corev1.ObjectReference{Kind: "Node", Name: "n1", UID: "n1"}, Logger: klog.Background()}
	for _, s := range clusterDNS {
		c.ClusterDNS = append(c.ClusterDNS, net.ParseIP(s))
	}
	return c, rec
}

func events(rec *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func TestPolicies(t *testing.T) {
	host := writeConf(t, hostResolvConf)
	hostCfg := &runtimeapi.DNSConfig{Servers: []string{"192.0.2.1", "192.0.2.2"}, Searches: []string{"example.org", "corp.example.org"}, Options: []string{"timeout:1", "attempts:3"}}
	clusterCfg := &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"},
		Searches: []string{"team.svc.cluster.local", "svc.cluster.local", "cluster.local", "example.org", "corp.example.org"}, Options: []string{"ndots:5"}}
	for _, tc := range []struct {
		name        string
		pod         *corev1.Pod
		resolvConf  string
		clusterDNS  []string
		want        *runtimeapi.DNSConfig
		wantEvents  []string
		clusterless bool
	}{
		{name: "ClusterFirst", pod: pod(corev1.DNSClusterFirst, false, nil), resolvConf: host, clusterDNS: []string{"10.96.0.10"}, want: clusterCfg},
		{name: "ClusterFirst on the host network resolves as the host", pod: pod(corev1.DNSClusterFirst, true, nil), resolvConf: host, clusterDNS: []string{"10.96.0.10"}, want: hostCfg},
		{name: "ClusterFirstWithHostNet", pod: pod(corev1.DNSClusterFirstWithHostNet, true, nil), resolvConf: host, clusterDNS: []string{"10.96.0.10"}, want: clusterCfg},
		{name: "Default", pod: pod(corev1.DNSDefault, false, nil), resolvConf: host, clusterDNS: []string{"10.96.0.10"}, want: hostCfg},
		{name: "Default without a host resolv.conf", pod: pod(corev1.DNSDefault, false, nil), clusterDNS: []string{"10.96.0.10"},
			want: &runtimeapi.DNSConfig{Servers: []string{"127.0.0.1"}, Searches: []string{"."}}},
		{name: "None", pod: pod(corev1.DNSNone, false, &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: []string{"a.example"},
			Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}, {Name: "edns0"}}}), resolvConf: host, clusterDNS: []string{"10.96.0.10"},
			want: &runtimeapi.DNSConfig{Servers: []string{"1.1.1.1"}, Searches: []string{"a.example"}, Options: []string{"ndots:2", "edns0"}}},
		{name: "ClusterFirst merged with dnsConfig", pod: pod(corev1.DNSClusterFirst, false, &corev1.PodDNSConfig{
			Nameservers: []string{"10.96.0.10", "192.0.2.9"}, Searches: []string{"cluster.local", "extra.example"},
			Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("1")}, {Name: "single-request-reopen"}}}),
			resolvConf: host, clusterDNS: []string{"10.96.0.10"},
			want: &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10", "192.0.2.9"},
				Searches: []string{"team.svc.cluster.local", "svc.cluster.local", "cluster.local", "example.org", "corp.example.org", "extra.example"},
				Options:  []string{"ndots:1", "single-request-reopen"}}},
		{name: "ClusterFirst without --cluster-dns falls back to Default", pod: pod(corev1.DNSClusterFirst, false, nil), resolvConf: host, want: hostCfg,
			wantEvents: []string{
				`Warning MissingClusterDNS kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" policy. Falling back to "Default" policy.`,
				`Warning MissingClusterDNS pod: "p_team(u1)". kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" policy. Falling back to "Default" policy.`,
			}},
		{name: "nameservers beyond 3 dropped", pod: pod(corev1.DNSClusterFirst, false, &corev1.PodDNSConfig{Nameservers: []string{"192.0.2.7", "192.0.2.8", "192.0.2.9"}}),
			resolvConf: host, clusterDNS: []string{"10.96.0.10"},
			want:       &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10", "192.0.2.7", "192.0.2.8"}, Searches: clusterCfg.Searches, Options: []string{"ndots:5"}},
			wantEvents: []string{"Warning DNSConfigForming Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: 10.96.0.10 192.0.2.7 192.0.2.8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, rec := configurer(t, tc.resolvConf, tc.clusterDNS...)
			got, err := c.PodDNS(tc.pod)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b *runtimeapi.DNSConfig) bool {
				return cmp.Equal(a.Servers, b.Servers) && cmp.Equal(a.Searches, b.Searches) && cmp.Equal(a.Options, b.Options)
			})); diff != "" {
				t.Errorf("config (-want +got): want %v, got %v", tc.want, got)
			}
			if diff := cmp.Diff(tc.wantEvents, events(rec)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSearchLimits(t *testing.T) {
	c, rec := configurer(t, "", "10.96.0.10")
	var searches []string
	for i := range 40 {
		searches = append(searches, fmt.Sprintf("s%d.example", i))
	}
	got, err := c.PodDNS(pod(corev1.DNSNone, false, &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: searches}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Searches) != MaxSearchPaths || got.Searches[31] != "s31.example" {
		t.Errorf("searches %v, want the first %d", got.Searches, MaxSearchPaths)
	}
	if ev := events(rec); len(ev) != 1 || !strings.HasPrefix(ev[0], "Warning DNSConfigForming Search Line limits were exceeded") {
		t.Errorf("events %v, want one DNSConfigForming warning", ev)
	}

	// Too long a path is dropped, then the last ones until 2048 chars.
	long := strings.Repeat("a", 254)
	var big []string
	for i := range 20 {
		big = append(big, fmt.Sprintf("%03d.%s", i, strings.Repeat("b", 120)))
	}
	got, _ = c.PodDNS(pod(corev1.DNSNone, false, &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: append([]string{long}, big...)}))
	line := strings.Join(got.Searches, " ")
	if len(line) > MaxSearchListChars || strings.Contains(line, long) || len(got.Searches) != 16 || got.Searches[0] != big[0] {
		t.Errorf("searches of %d chars, %d paths (first %q), want the first 16 that fit 2048 chars without the 254-char one", len(line), len(got.Searches), got.Searches[0])
	}
	if ev := events(rec); len(ev) != 1 {
		t.Errorf("events %v, want one warning", ev)
	}
}

func TestParse(t *testing.T) {
	servers, searches, options, err := Parse(strings.NewReader("nameserver 192.0.2.1\n# nameserver 192.0.2.9\nsearch a.example\nsearch b.example. . c.example\noptions ndots:2 rotate\noptions ndots:3\nnameserver\n"))
	if err == nil {
		t.Error("an empty nameserver line: no error")
	}
	if !cmp.Equal(servers, []string{"192.0.2.1"}) || !cmp.Equal(searches, []string{"b.example", "c.example"}) || !cmp.Equal(options, []string{"ndots:3", "rotate"}) {
		t.Errorf("parsed %v %v %v", servers, searches, options)
	}
	if _, err := (&Configurer{ResolvConf: filepath.Join(t.TempDir(), "missing")}).PodDNS(pod(corev1.DNSDefault, false, nil)); err == nil {
		t.Error("a missing resolv.conf: no error")
	}
}

func TestCheckHostLimits(t *testing.T) {
	var searches []string
	for i := range 30 {
		searches = append(searches, fmt.Sprintf("s%d.example", i))
	}
	c, rec := configurer(t, writeConf(t, "nameserver 192.0.2.1\nsearch "+strings.Join(searches, " ")+"\n"))
	c.CheckHostLimits()
	if ev := events(rec); len(ev) != 1 || !strings.Contains(ev[0], "CheckLimitsForResolvConf") || !strings.Contains(ev[0], "more than 29 domains") {
		t.Errorf("events %v, want a warning about more than 29 domains", ev)
	}
	c, rec = configurer(t, writeConf(t, hostResolvConf))
	c.CheckHostLimits()
	if ev := events(rec); len(ev) != 0 {
		t.Errorf("events %v for a host within the limits", ev)
	}
}

func TestPickResolvConf(t *testing.T) {
	stub := writeConf(t, "nameserver 127.0.0.53\noptions edns0\n")
	upstreams := writeConf(t, "nameserver 192.0.2.1\n")
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct{ def, systemd, want string }{
		{upstreams, stub, upstreams},
		{stub, upstreams, upstreams},
		{stub, missing, stub},
		{missing, missing, missing},
	} {
		if got := pickResolvConf(tc.def, tc.systemd); got != tc.want {
			t.Errorf("pickResolvConf(%s, %s) = %s, want %s", tc.def, tc.systemd, got, tc.want)
		}
	}
}
