package containerspec

import (
	"context"
	"encoding/json"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

// Hash values from upstream's pkg/kubelet/container/helpers_test.go: a
// container this kubelet creates is current to an upstream kubelet too.
func TestHashContainer(t *testing.T) {
	c := &corev1.Container{Name: "test_container", Image: "foo/image:v1", Args: []string{"/bin/sh", "-c", "echo abc"},
		Ports: []corev1.ContainerPort{{ContainerPort: 8001}}}
	if got := HashContainer(c); got != 0x8e45cbd0 {
		t.Errorf("hash = %#x, want 0x8e45cbd0", got)
	}
	c = &corev1.Container{Name: "foo", Image: "bar", Resources: corev1.ResourceRequirements{Limits: rl("cpu", "200m")}}
	if got := HashContainer(c); got != 0x11a6d6d6 {
		t.Errorf("hash = %#x, want 0x11a6d6d6", got)
	}
}

func mountsByPath(ms []*runtimeapi.Mount) map[string]*runtimeapi.Mount {
	out := map[string]*runtimeapi.Mount{}
	for _, m := range ms {
		out[m.ContainerPath] = m
	}
	return out
}

func TestContainer(t *testing.T) {
	pod := testPod()
	pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
	pod.DeletionGracePeriodSeconds = ptr.To[int64](10)
	pod.Spec.HostAliases = []corev1.HostAlias{{IP: "10.9.9.9", Hostnames: []string{"foo.local", "bar.local"}}}
	pod.Spec.Hostname, pod.Spec.Subdomain = "web-0", "web"
	bidi := corev1.MountPropagationBidirectional
	h2c := corev1.MountPropagationHostToContainer
	c := &corev1.Container{
		Name:       "app",
		Image:      "registry.k8s.io/e2e-test-images/busybox:1.37.0-2",
		Command:    []string{"/bin/sh", "-c"},
		Args:       []string{"echo $(GREETING) $(POD_NAME) $$(HOME)"},
		WorkingDir: "/work",
		Env: []corev1.EnvVar{
			{Name: "GREETING", Value: "hello"},
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "data", MountPath: "/data"},
			{Name: "data", MountPath: "/sub", SubPath: "a/b", ReadOnly: true},
			{Name: "data", MountPath: "/expr", SubPathExpr: "logs/$(POD_NAME)", MountPropagation: &h2c},
			{Name: "cfg", MountPath: "/etc/config"},
			{Name: "shared", MountPath: "/shared", MountPropagation: &bidi},
		},
		Ports:                    []corev1.ContainerPort{{Name: "http", ContainerPort: 80, Protocol: corev1.ProtocolTCP}},
		Lifecycle:                &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sleep", "1"}}}},
		TerminationMessagePath:   "/dev/termination-log",
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		Stdin:                    true,
		StdinOnce:                true,
		TTY:                      true,
		Resources:                corev1.ResourceRequirements{Requests: rl("cpu", "100m", "memory", "100Mi"), Limits: rl("cpu", "500m", "memory", "200Mi")},
	}
	pod.Spec.Containers = []corev1.Container{*c}
	o := ContainerOptions{
		NodeName: "node-a", PodIPs: []string{"10.1.0.7"}, HostIP: "192.168.1.2",
		Volumes: map[string]Mount{
			"data":   {HostPath: "/var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~empty-dir/data"},
			"cfg":    {HostPath: "/var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~configmap/cfg", ReadOnly: true},
			"shared": {HostPath: "/mnt/shared"},
		},
		PodDir:           "/var/lib/kubelet/pods/uid-1",
		RestartCount:     3,
		MemoryCapacity:   8 << 30,
		TerminationLogID: "0000beef",
	}
	cfg, extras, err := Container(context.Background(), pod, c, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Metadata.Name != "app" || cfg.Metadata.Attempt != 3 {
		t.Errorf("metadata = %v", cfg.Metadata)
	}
	if cfg.Image.Image != c.Image || cfg.Image.UserSpecifiedImage != c.Image {
		t.Errorf("image = %v", cfg.Image)
	}
	if !reflect.DeepEqual(cfg.Command, c.Command) || !reflect.DeepEqual(cfg.Args, []string{"echo hello web $(HOME)"}) {
		t.Errorf("command %q args %q", cfg.Command, cfg.Args)
	}
	if cfg.WorkingDir != "/work" || cfg.LogPath != "app/3.log" || !cfg.Stdin || !cfg.StdinOnce || !cfg.Tty {
		t.Errorf("workdir %q log %q stdin %v once %v tty %v", cfg.WorkingDir, cfg.LogPath, cfg.Stdin, cfg.StdinOnce, cfg.Tty)
	}
	var env []string
	for _, kv := range cfg.Envs {
		env = append(env, kv.Key+"="+string(kv.Value))
	}
	if want := []string{"GREETING=hello", "POD_NAME=web"}; !reflect.DeepEqual(env, want) {
		t.Errorf("env = %q", env)
	}
	wantLabels := map[string]string{"io.kubernetes.container.name": "app", "io.kubernetes.pod.name": "web", "io.kubernetes.pod.namespace": "ns", "io.kubernetes.pod.uid": "uid-1"}
	if !reflect.DeepEqual(cfg.Labels, wantLabels) {
		t.Errorf("labels = %v", cfg.Labels)
	}
	a := cfg.Annotations
	preStop, _ := json.Marshal(c.Lifecycle.PreStop)
	ports, _ := json.Marshal(c.Ports)
	wantAnn := map[string]string{
		"io.kubernetes.container.hash":                     strconv.FormatUint(HashContainer(c), 16),
		"io.kubernetes.container.restartCount":             "3",
		"io.kubernetes.container.terminationMessagePath":   "/dev/termination-log",
		"io.kubernetes.container.terminationMessagePolicy": "File",
		"io.kubernetes.pod.terminationGracePeriod":         "30",
		"io.kubernetes.pod.deletionGracePeriod":            "10",
		"io.kubernetes.container.preStopHandler":           string(preStop),
		"io.kubernetes.container.ports":                    string(ports),
	}
	if !reflect.DeepEqual(a, wantAnn) {
		t.Errorf("annotations =\n%v\nwant\n%v", a, wantAnn)
	}

	m := mountsByPath(cfg.Mounts)
	type mnt struct {
		host string
		ro   bool
		prop runtimeapi.MountPropagation
	}
	want := map[string]mnt{
		"/data":                {o.Volumes["data"].HostPath, false, runtimeapi.MountPropagation_PROPAGATION_PRIVATE},
		"/sub":                 {o.Volumes["data"].HostPath + "/a/b", true, runtimeapi.MountPropagation_PROPAGATION_PRIVATE},
		"/expr":                {o.Volumes["data"].HostPath + "/logs/web", false, runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
		"/etc/config":          {o.Volumes["cfg"].HostPath, true, runtimeapi.MountPropagation_PROPAGATION_PRIVATE},
		"/shared":              {"/mnt/shared", false, runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL},
		"/etc/hosts":           {"/var/lib/kubelet/pods/uid-1/etc-hosts", false, runtimeapi.MountPropagation_PROPAGATION_PRIVATE},
		"/dev/termination-log": {"/var/lib/kubelet/pods/uid-1/containers/app/0000beef", false, runtimeapi.MountPropagation_PROPAGATION_PRIVATE},
	}
	if len(m) != len(want) {
		t.Errorf("%d mounts, want %d: %v", len(m), len(want), cfg.Mounts)
	}
	for path, w := range want {
		got, ok := m[path]
		if !ok {
			t.Errorf("no mount at %s", path)
			continue
		}
		if got.HostPath != w.host || got.Readonly != w.ro || got.Propagation != w.prop {
			t.Errorf("%s: host %q ro %v prop %v; want %q %v %v", path, got.HostPath, got.Readonly, got.Propagation, w.host, w.ro, w.prop)
		}
	}

	// The host side the caller prepares.
	wantDirs := []HostDir{{"/var/log/pods/ns_web_uid-1/app", 0o755}, {"/var/lib/kubelet/pods/uid-1/containers/app", 0o750}}
	if !reflect.DeepEqual(extras.Dirs, wantDirs) {
		t.Errorf("dirs = %v", extras.Dirs)
	}
	if len(extras.Files) != 2 {
		t.Fatalf("files = %v", extras.Files)
	}
	hosts := extras.Files[0]
	wantHosts := "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n" +
		"10.1.0.7\tweb-0.web.ns.svc.cluster.local\tweb-0\n\n# Entries added by HostAliases.\n10.9.9.9\tfoo.local\tbar.local\n"
	if hosts.Path != "/var/lib/kubelet/pods/uid-1/etc-hosts" || hosts.Perm != 0o644 || string(hosts.Content) != wantHosts {
		t.Errorf("etc-hosts %s %o:\n%s", hosts.Path, hosts.Perm, hosts.Content)
	}
	term := extras.Files[1]
	if term.Path != "/var/lib/kubelet/pods/uid-1/containers/app/0000beef" || term.Perm != 0o666 || len(term.Content) != 0 || extras.TerminationLogPath != term.Path {
		t.Errorf("termination log %+v (%q)", term, extras.TerminationLogPath)
	}

	r := cfg.Linux.Resources
	if r.CpuShares != 102 || r.CpuQuota != 50000 || r.CpuPeriod != 100000 || r.MemoryLimitInBytes != 200<<20 {
		t.Errorf("resources = %v", r)
	}
	// Burstable: 1000 - 1000*100Mi/8Gi = 988.
	if r.OomScoreAdj != 988 {
		t.Errorf("oom_score_adj = %d, want 988", r.OomScoreAdj)
	}
	if cfg.Linux.SecurityContext == nil || cfg.Linux.SecurityContext.NamespaceOptions == nil || extras.RunAsNonRoot {
		t.Errorf("security = %v, runAsNonRoot %v", cfg.Linux.SecurityContext, extras.RunAsNonRoot)
	}
}

func TestContainerTerminationLogID(t *testing.T) {
	pod := testPod()
	c := &corev1.Container{Name: "app", TerminationMessagePath: "/dev/termination-log"}
	o := ContainerOptions{PodDir: "/pods/uid-1"}
	_, e1, err := Container(context.Background(), pod, c, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	_, e2, _ := Container(context.Background(), pod, c, nil, o)
	re := regexp.MustCompile(`^/pods/uid-1/containers/app/[0-9a-f]{8}$`)
	if !re.MatchString(e1.TerminationLogPath) || e1.TerminationLogPath == e2.TerminationLogPath {
		t.Errorf("termination logs %q %q: want distinct random 8-hex names", e1.TerminationLogPath, e2.TerminationLogPath)
	}
	// No pod IP yet and pod network: no /etc/hosts (upstream mounts it only once the pod has an IP).
	if len(e1.Files) != 1 {
		t.Errorf("files = %v", e1.Files)
	}
	// No terminationMessagePath: no file.
	c.TerminationMessagePath = ""
	cfg, e3, _ := Container(context.Background(), pod, c, nil, o)
	if len(e3.Files) != 0 || len(cfg.Mounts) != 0 || e3.TerminationLogPath != "" {
		t.Errorf("files %v mounts %v", e3.Files, cfg.Mounts)
	}
}

func TestContainerEtcHosts(t *testing.T) {
	pod := testPod()
	c := &corev1.Container{Name: "app"}
	o := ContainerOptions{PodDir: "/pods/uid-1", PodIPs: []string{"10.1.0.7", "fd00::7"}}

	_, e, err := Container(context.Background(), pod, c, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Files) != 1 || !strings.HasSuffix(string(e.Files[0].Content), "10.1.0.7\tweb\nfd00::7\tweb\n") {
		t.Errorf("etc-hosts = %q", e.Files)
	}

	// Host network: the node's file, with its own header and the aliases.
	pod.Spec.HostNetwork = true
	pod.Spec.HostAliases = []corev1.HostAlias{{IP: "1.2.3.4", Hostnames: []string{"x"}}}
	o.NodeHostsFile = []byte("127.0.0.1 localhost\n192.168.1.2 node-a\n")
	o.PodIPs = nil
	_, e, _ = Container(context.Background(), pod, c, nil, o)
	want := "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n192.168.1.2 node-a\n\n# Entries added by HostAliases.\n1.2.3.4\tx\n"
	if len(e.Files) != 1 || string(e.Files[0].Content) != want {
		t.Errorf("host-network etc-hosts = %q", e.Files)
	}

	// A container mounting its own /etc/hosts gets none from the kubelet.
	c.VolumeMounts = []corev1.VolumeMount{{Name: "h", MountPath: "/etc/hosts"}}
	o.Volumes = map[string]Mount{"h": {HostPath: "/tmp/h"}}
	cfg, e, _ := Container(context.Background(), pod, c, nil, o)
	if len(e.Files) != 0 || len(cfg.Mounts) != 1 || cfg.Mounts[0].HostPath != "/tmp/h" {
		t.Errorf("own /etc/hosts: files %v mounts %v", e.Files, cfg.Mounts)
	}
}

func TestContainerMountErrors(t *testing.T) {
	bad := corev1.MountPropagationMode("Sideways")
	enabled := corev1.RecursiveReadOnlyEnabled
	ifPossible := corev1.RecursiveReadOnlyIfPossible
	vols := map[string]Mount{"v": {HostPath: "/v"}}
	for _, tc := range []struct {
		name    string
		vm      corev1.VolumeMount
		env     []corev1.EnvVar
		rro     bool
		wantErr string
		check   func(*runtimeapi.Mount) bool
	}{
		{name: "unknown volume", vm: corev1.VolumeMount{Name: "nope", MountPath: "/x"}, wantErr: `cannot find volume "nope" to mount into container "app"`},
		{name: "absolute subPath", vm: corev1.VolumeMount{Name: "v", MountPath: "/x", SubPath: "/etc"}, wantErr: "error SubPath `/etc` must not be an absolute path"},
		{name: "backstep subPath", vm: corev1.VolumeMount{Name: "v", MountPath: "/x", SubPath: "a/../../etc"}, wantErr: "unable to provision SubPath `a/../../etc`: must not contain '..'"},
		{name: "subPathExpr unset var", vm: corev1.VolumeMount{Name: "v", MountPath: "/x", SubPathExpr: "$(B)/$(A)"}, wantErr: "missing value for A, B"},
		{name: "subPathExpr empty var", vm: corev1.VolumeMount{Name: "v", MountPath: "/x", SubPathExpr: "$(E)"}, env: []corev1.EnvVar{{Name: "E"}}, wantErr: "missing value for E"},
		{name: "subPathExpr to backstep", vm: corev1.VolumeMount{Name: "v", MountPath: "/x", SubPathExpr: "$(D)"}, env: []corev1.EnvVar{{Name: "D", Value: ".."}}, wantErr: "unable to provision SubPath `..`: must not contain '..'"},
		{name: "subPathExpr dots in names are fine", vm: corev1.VolumeMount{Name: "v", MountPath: "/x", SubPathExpr: "$(D)"}, env: []corev1.EnvVar{{Name: "D", Value: "a..b"}},
			check: func(m *runtimeapi.Mount) bool { return m.HostPath == "/v/a..b" }},
		{name: "bad propagation", vm: corev1.VolumeMount{Name: "v", MountPath: "/x", MountPropagation: &bad}, wantErr: `invalid MountPropagation mode: "Sideways"`},
		{name: "relative mount path", vm: corev1.VolumeMount{Name: "v", MountPath: "x"}, check: func(m *runtimeapi.Mount) bool { return m.ContainerPath == "/x" }},
		{name: "rro needs readOnly", vm: corev1.VolumeMount{Name: "v", MountPath: "/x", RecursiveReadOnly: &enabled},
			wantErr: `failed to resolve recursive read-only mode: volume "v" requested recursive read-only mode, but it is not read-only`},
		{name: "rro unsupported", vm: corev1.VolumeMount{Name: "v", MountPath: "/x", ReadOnly: true, RecursiveReadOnly: &enabled},
			wantErr: `failed to resolve recursive read-only mode: volume "v" requested recursive read-only mode, but it is not supported by the runtime`},
		{name: "rro supported", vm: corev1.VolumeMount{Name: "v", MountPath: "/x", ReadOnly: true, RecursiveReadOnly: &enabled}, rro: true,
			check: func(m *runtimeapi.Mount) bool { return m.RecursiveReadOnly && m.Readonly }},
		{name: "rro if possible, unsupported", vm: corev1.VolumeMount{Name: "v", MountPath: "/x", ReadOnly: true, RecursiveReadOnly: &ifPossible},
			check: func(m *runtimeapi.Mount) bool { return !m.RecursiveReadOnly && m.Readonly }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &corev1.Container{Name: "app", Env: tc.env, VolumeMounts: []corev1.VolumeMount{tc.vm}}
			cfg, _, err := Container(context.Background(), testPod(), c, nil, ContainerOptions{Volumes: vols, RuntimeSupportsRecursiveReadOnly: tc.rro})
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v\nwant  %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Mounts) != 1 || !tc.check(cfg.Mounts[0]) {
				t.Errorf("mounts = %v", cfg.Mounts)
			}
		})
	}
}

func TestContainerConfigErrorsPropagate(t *testing.T) {
	c := &corev1.Container{Name: "app", Env: []corev1.EnvVar{{Name: "V", ValueFrom: &corev1.EnvVarSource{
		ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Key: "nokey"}}}}}
	_, _, err := Container(context.Background(), testPod(), c, testSources(), ContainerOptions{})
	if err == nil || err.Error() != "couldn't find key nokey in ConfigMap ns/cm" {
		t.Errorf("err = %v", err)
	}
	if _, _, err := Container(context.Background(), testPod(), c, testSources(), ContainerOptions{RestartCount: -1}); err == nil {
		t.Error("a negative restart count is an error")
	}
	if _, _, err := Container(context.Background(), nil, nil, nil, ContainerOptions{}); err == nil {
		t.Error("a nil pod is an error, not a panic")
	}
}

func TestContainerRunAsNonRootFlag(t *testing.T) {
	pod := testPod()
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}
	_, e, err := Container(context.Background(), pod, &corev1.Container{Name: "app"}, nil, ContainerOptions{})
	if err != nil || !e.RunAsNonRoot {
		t.Errorf("RunAsNonRoot = %v, %v", e.RunAsNonRoot, err)
	}
}
