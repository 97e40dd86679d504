package main

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"

	"github.com/skiff-dev/skiff/pkg/pki"
)

// The KubeletConfiguration must decode strictly, case-sensitive field names
// as upstream kubelet reads it: a misspelt field would only show at run
// time, or not at all.
func TestUpstreamConfigDecodesStrictly(t *testing.T) {
	b := &kubeletBench{serving: pki.Files{CertFile: "/c.crt", KeyFile: "/c.key"}, caFile: "/ca.crt"}
	b.ctrdEndpoint = "unix:///tmp/skb/containerd.sock"
	scheme := runtime.NewScheme()
	if err := kubeletconfigv1beta1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	codec := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme, kjson.SerializerOptions{Yaml: true, Strict: true})
	var cfg kubeletconfigv1beta1.KubeletConfiguration
	if _, _, err := codec.Decode([]byte(b.upstreamConfig(12345, 12346)), nil, &cfg); err != nil {
		t.Fatalf("decode: %v", err)
	}
	switch {
	case cfg.Kind != "KubeletConfiguration" || cfg.APIVersion != "kubelet.config.k8s.io/v1beta1":
		t.Errorf("kind %q apiVersion %q", cfg.Kind, cfg.APIVersion)
	case cfg.Port != 12345 || cfg.HealthzPort == nil || *cfg.HealthzPort != 12346:
		t.Errorf("ports %d, %v", cfg.Port, cfg.HealthzPort)
	case cfg.CgroupRoot != benchCgroupRoot || cfg.CgroupDriver != "cgroupfs":
		t.Errorf("cgroups %q %q", cfg.CgroupRoot, cfg.CgroupDriver)
	case cfg.FailCgroupV1 == nil || *cfg.FailCgroupV1 || cfg.FailSwapOn == nil || *cfg.FailSwapOn:
		t.Errorf("failCgroupV1 %v failSwapOn %v", cfg.FailCgroupV1, cfg.FailSwapOn)
	case cfg.MakeIPTablesUtilChains == nil || *cfg.MakeIPTablesUtilChains:
		t.Errorf("makeIPTablesUtilChains %v: the kubelet would add iptables chains", cfg.MakeIPTablesUtilChains)
	case cfg.Authentication.Anonymous.Enabled == nil || *cfg.Authentication.Anonymous.Enabled:
		t.Errorf("anonymous %v", cfg.Authentication.Anonymous.Enabled)
	case cfg.Authentication.Webhook.Enabled == nil || !*cfg.Authentication.Webhook.Enabled || cfg.Authentication.X509.ClientCAFile != "/ca.crt":
		t.Errorf("authentication %+v", cfg.Authentication)
	case cfg.Authorization.Mode != "Webhook":
		t.Errorf("authorization %q", cfg.Authorization.Mode)
	case cfg.ContainerRuntimeEndpoint != b.ctrdEndpoint || cfg.TLSCertFile != "/c.crt" || cfg.TLSPrivateKeyFile != "/c.key":
		t.Errorf("endpoint %q cert %q key %q", cfg.ContainerRuntimeEndpoint, cfg.TLSCertFile, cfg.TLSPrivateKeyFile)
	}
}

func TestParseNATChains(t *testing.T) {
	save := `*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:CNI-aaa - [0:0]
:CNI-bbb - [0:0]
:CNI-ccc - [0:0]
-A POSTROUTING -s 10.213.0.5/32 -m comment --comment "name: \"skiff-bench\" id: \"x\"" -j CNI-aaa
-A CNI-bbb -d 10.213.0.0/24 -j ACCEPT
COMMIT
`
	chains, used := parseNATChains([]byte(save))
	for _, c := range []string{"PREROUTING", "POSTROUTING", "CNI-aaa", "CNI-bbb", "CNI-ccc"} {
		if !chains[c] {
			t.Errorf("chain %s not found", c)
		}
	}
	if !used["CNI-aaa"] || !used["CNI-bbb"] || used["CNI-ccc"] {
		t.Errorf("used = %v, want CNI-aaa (a jump) and CNI-bbb (a rule), not CNI-ccc", used)
	}
}

func TestMountHelpers(t *testing.T) {
	if got := unescapeMount(`/tmp/a\040b/c`); got != "/tmp/a b/c" {
		t.Errorf("unescapeMount = %q", got)
	}
	if got := mountKind("pods/0b1c/volumes/kubernetes.io~projected/kube-api-access-x1"); got != "pods/*/volumes/kubernetes.io~projected" {
		t.Errorf("mountKind = %q", got)
	}
}

func TestSummaryPods(t *testing.T) {
	body := `{"node":{},"pods":[{"podRef":{"name":"a","namespace":"ns1"}},{"podRef":{"name":"b","namespace":"ns2"}},{"podRef":{"name":"c","namespace":"ns1"}}]}`
	if n := summaryPods([]byte(body), "ns1"); n != 2 {
		t.Errorf("summaryPods = %d, want 2", n)
	}
	if n := summaryPods([]byte("not json"), "ns1"); n != -1 {
		t.Errorf("summaryPods of garbage = %d, want -1", n)
	}
}
