package containerspec

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

func TestSandbox(t *testing.T) {
	pod := testPod()
	pod.Spec.Containers = []corev1.Container{
		{Name: "a", Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: 80, HostPort: 8080, Protocol: corev1.ProtocolTCP},
			{ContainerPort: 53, HostPort: 5353, Protocol: corev1.ProtocolUDP, HostIP: "127.0.0.1"},
			{ContainerPort: 53, HostPort: 5353, Protocol: corev1.ProtocolUDP, HostIP: "::1"},
			{Name: "http", ContainerPort: 81, Protocol: corev1.ProtocolTCP}, // same name: dropped
			{ContainerPort: 9000, Protocol: corev1.ProtocolSCTP},
		}},
		{Name: "b", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 90, Protocol: corev1.ProtocolTCP}}}, // other container: kept
	}
	pod.Spec.InitContainers = []corev1.Container{{Name: "init", Ports: []corev1.ContainerPort{{ContainerPort: 1}}}} // not mapped
	dns := &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"ns.svc.cluster.local"}, Options: []string{"ndots:5"}}
	cfg, err := Sandbox(pod, SandboxOptions{NodeName: "node-a", DNS: dns, Attempt: 2})
	if err != nil {
		t.Fatal(err)
	}
	if m := cfg.Metadata; m.Name != "web" || m.Namespace != "ns" || m.Uid != "uid-1" || m.Attempt != 2 {
		t.Errorf("metadata = %v", m)
	}
	if cfg.Hostname != "web" {
		t.Errorf("hostname = %q, want the pod's name", cfg.Hostname)
	}
	if cfg.LogDirectory != "/var/log/pods/ns_web_uid-1" {
		t.Errorf("log dir = %q", cfg.LogDirectory)
	}
	if cfg.DnsConfig != dns {
		t.Errorf("dns = %v", cfg.DnsConfig)
	}
	wantLabels := map[string]string{"app": "web", "tier": "front",
		"io.kubernetes.pod.name": "web", "io.kubernetes.pod.namespace": "ns", "io.kubernetes.pod.uid": "uid-1"}
	if !reflect.DeepEqual(cfg.Labels, wantLabels) {
		t.Errorf("labels = %v", cfg.Labels)
	}
	if !reflect.DeepEqual(cfg.Annotations, pod.Annotations) {
		t.Errorf("annotations = %v", cfg.Annotations)
	}
	type pm struct {
		proto        runtimeapi.Protocol
		cport, hport int32
		hostIP       string
	}
	var ports []pm
	for _, p := range cfg.PortMappings {
		ports = append(ports, pm{p.Protocol, p.ContainerPort, p.HostPort, p.HostIp})
	}
	wantPorts := []pm{
		{runtimeapi.Protocol_TCP, 80, 8080, ""},
		{runtimeapi.Protocol_UDP, 53, 5353, "127.0.0.1"},
		{runtimeapi.Protocol_UDP, 53, 5353, "::1"},
		{runtimeapi.Protocol_SCTP, 9000, 0, ""},
		{runtimeapi.Protocol_TCP, 90, 0, ""},
	}
	if !reflect.DeepEqual(ports, wantPorts) {
		t.Errorf("ports = %+v\nwant %+v", ports, wantPorts)
	}
	lc := cfg.Linux
	if lc.CgroupParent != "/kubepods/besteffort/poduid-1" {
		t.Errorf("cgroup parent = %q", lc.CgroupParent)
	}
	if lc.SecurityContext.Seccomp.GetProfileType() != runtimeapi.SecurityProfile_RuntimeDefault || lc.SecurityContext.Privileged {
		t.Errorf("sandbox security = %v", lc.SecurityContext)
	}
	if lc.Resources == nil || lc.Resources.CpuShares != 2 || lc.Resources.CpuPeriod != 100000 || lc.Overhead == nil {
		t.Errorf("resources %v overhead %v", lc.Resources, lc.Overhead)
	}
}

func TestSandboxSecurity(t *testing.T) {
	pod := testPod()
	pod.Spec.HostNetwork = true
	pod.Spec.HostPID = true
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{
		RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](3000), FSGroup: ptr.To[int64](2000),
		SupplementalGroups: []int64{5, 6},
		Sysctls:            []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "0"}, {Name: "kernel.shm_rmid_forced", Value: "1"}},
	}
	pod.Spec.InitContainers = []corev1.Container{{Name: "init", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}}
	cfg, err := Sandbox(pod, SandboxOptions{CgroupParent: "/custom", LogDir: "/logs/x"})
	if err != nil {
		t.Fatal(err)
	}
	// As upstream: none, the runtime keeps the node's (runc refuses a
	// hostname without a private UTS namespace).
	if cfg.Hostname != "" {
		t.Errorf("host-network hostname = %q, want none", cfg.Hostname)
	}
	if cfg.LogDirectory != "/logs/x" || cfg.Linux.CgroupParent != "/custom" {
		t.Errorf("overrides: %q %q", cfg.LogDirectory, cfg.Linux.CgroupParent)
	}
	sc := cfg.Linux.SecurityContext
	if sc.RunAsUser.GetValue() != 1000 || sc.RunAsGroup.GetValue() != 3000 || !sc.Privileged {
		t.Errorf("security = %v", sc)
	}
	if !reflect.DeepEqual(sc.SupplementalGroups, []int64{2000, 5, 6}) {
		t.Errorf("groups = %v, want fsGroup first", sc.SupplementalGroups)
	}
	if ns := sc.NamespaceOptions; ns.Network != runtimeapi.NamespaceMode_NODE || ns.Pid != runtimeapi.NamespaceMode_NODE || ns.Ipc != runtimeapi.NamespaceMode_POD {
		t.Errorf("namespaces = %v", ns)
	}
	want := map[string]string{"net.ipv4.ip_unprivileged_port_start": "0", "kernel.shm_rmid_forced": "1"}
	if !reflect.DeepEqual(cfg.Linux.Sysctls, want) {
		t.Errorf("sysctls = %v", cfg.Linux.Sysctls)
	}
}

func TestPodHostname(t *testing.T) {
	long := strings.Repeat("a", 62) + "-bc"
	for _, tc := range []struct {
		name       string
		meta       string
		spec       corev1.PodSpec
		want       string
		wantDomain string
		wantErr    string
	}{
		{name: "pod name", meta: "web", want: "web"},
		{name: "spec.hostname", meta: "web", spec: corev1.PodSpec{Hostname: "db-0"}, want: "db-0"},
		{name: "subdomain", meta: "web", spec: corev1.PodSpec{Hostname: "db-0", Subdomain: "db"}, want: "db-0", wantDomain: "db.ns.svc.cluster.local"},
		{name: "FQDN", meta: "web", spec: corev1.PodSpec{Hostname: "db-0", Subdomain: "db", SetHostnameAsFQDN: ptr.To(true)}, want: "db-0.db.ns.svc.cluster.local", wantDomain: "db.ns.svc.cluster.local"},
		{name: "FQDN without subdomain", meta: "web", spec: corev1.PodSpec{SetHostnameAsFQDN: ptr.To(true)}, want: "web"},
		{name: "truncated to 63 without trailing dash", meta: long, want: strings.Repeat("a", 62)},
		{name: "override", meta: "web", spec: corev1.PodSpec{HostnameOverride: ptr.To("my.host.example"), Subdomain: "db"}, want: "my.host.example"},
		{name: "invalid hostname", meta: "web", spec: corev1.PodSpec{Hostname: "Bad_Name"}, wantErr: `pod Hostname "Bad_Name" is not a valid DNS label`},
		{name: "FQDN too long", meta: "web", spec: corev1.PodSpec{Hostname: strings.Repeat("h", 41), Subdomain: "db", SetHostnameAsFQDN: ptr.To(true)},
			wantErr: "failed to construct FQDN from pod hostname and cluster domain, FQDN " + strings.Repeat("h", 41) + ".db.ns.svc.cluster.local is too long (64 characters is the max, 65 characters requested)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: tc.meta, Namespace: "ns", UID: "u"}, Spec: tc.spec}
			cfg, err := Sandbox(pod, SandboxOptions{})
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Hostname != tc.want {
				t.Errorf("hostname = %q, want %q", cfg.Hostname, tc.want)
			}
			if _, domain, _ := PodHostnameAndDomain(pod, ""); domain != tc.wantDomain {
				t.Errorf("domain = %q, want %q", domain, tc.wantDomain)
			}
		})
	}
}

func TestCgroupParent(t *testing.T) {
	guaranteed := corev1.ResourceRequirements{Requests: rl("cpu", "1", "memory", "1Gi"), Limits: rl("cpu", "1", "memory", "1Gi")}
	burstable := corev1.ResourceRequirements{Requests: rl("cpu", "1")}
	for _, tc := range []struct {
		name string
		res  corev1.ResourceRequirements
		qos  corev1.PodQOSClass
		want string
	}{
		{"guaranteed", guaranteed, "", "/kubepods/podu1"},
		{"burstable", burstable, "", "/kubepods/burstable/podu1"},
		{"besteffort", corev1.ResourceRequirements{}, "", "/kubepods/besteffort/podu1"},
		{"status class wins", corev1.ResourceRequirements{}, corev1.PodQOSBurstable, "/kubepods/burstable/podu1"},
	} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "u1"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Resources: tc.res}}}, Status: corev1.PodStatus{QOSClass: tc.qos}}
		if got := CgroupParent(pod); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestSandboxNilPod(t *testing.T) {
	if _, err := Sandbox(nil, SandboxOptions{}); err == nil {
		t.Error("a nil pod is an error, not a panic")
	}
}
