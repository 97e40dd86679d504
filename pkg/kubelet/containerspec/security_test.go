package containerspec

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

func TestContainerSecurityContext(t *testing.T) {
	unmasked := corev1.UnmaskedProcMount
	for _, tc := range []struct {
		name  string
		pod   *corev1.PodSecurityContext
		c     *corev1.SecurityContext
		check func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext)
	}{
		{
			name: "nothing set",
			check: func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
				if sc.RunAsUser != nil || sc.RunAsGroup != nil || sc.Privileged || sc.ReadonlyRootfs || sc.NoNewPrivs || sc.Capabilities != nil {
					t.Errorf("sc = %v", sc)
				}
				if sc.Seccomp.ProfileType != runtimeapi.SecurityProfile_Unconfined {
					t.Errorf("seccomp = %v, want Unconfined (kubelet's default without --seccomp-default)", sc.Seccomp)
				}
				if !reflect.DeepEqual(sc.MaskedPaths, DefaultMaskedPaths) || !reflect.DeepEqual(sc.ReadonlyPaths, DefaultReadonlyPaths) {
					t.Errorf("masked %v readonly %v, want the defaults", sc.MaskedPaths, sc.ReadonlyPaths)
				}
				if ns := sc.NamespaceOptions; ns.Network != runtimeapi.NamespaceMode_POD || ns.Pid != runtimeapi.NamespaceMode_CONTAINER || ns.Ipc != runtimeapi.NamespaceMode_POD {
					t.Errorf("namespaces = %v", ns)
				}
			},
		},
		{
			name: "pod defaults, container overrides",
			pod: &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](2000), FSGroup: ptr.To[int64](3000),
				SupplementalGroups: []int64{4000, 4001}, SupplementalGroupsPolicy: ptr.To(corev1.SupplementalGroupsPolicyStrict),
				SELinuxOptions: &corev1.SELinuxOptions{Level: "s0:c1"}},
			c: &corev1.SecurityContext{RunAsUser: ptr.To[int64](1001), ReadOnlyRootFilesystem: ptr.To(true),
				AllowPrivilegeEscalation: ptr.To(false),
				Capabilities:             &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN", "SYS_TIME"}, Drop: []corev1.Capability{"ALL"}}},
			check: func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
				if sc.RunAsUser.GetValue() != 1001 || sc.RunAsGroup.GetValue() != 2000 || !sc.ReadonlyRootfs || !sc.NoNewPrivs {
					t.Errorf("user %v group %v rofs %v nnp %v", sc.RunAsUser, sc.RunAsGroup, sc.ReadonlyRootfs, sc.NoNewPrivs)
				}
				if !reflect.DeepEqual(sc.SupplementalGroups, []int64{3000, 4000, 4001}) || sc.SupplementalGroupsPolicy != runtimeapi.SupplementalGroupsPolicy_Strict {
					t.Errorf("groups %v policy %v", sc.SupplementalGroups, sc.SupplementalGroupsPolicy)
				}
				// CRI names capabilities without CAP_; containerd adds it.
				if !reflect.DeepEqual(sc.Capabilities.AddCapabilities, []string{"NET_ADMIN", "SYS_TIME"}) || !reflect.DeepEqual(sc.Capabilities.DropCapabilities, []string{"ALL"}) {
					t.Errorf("capabilities = %v", sc.Capabilities)
				}
				if sc.SelinuxOptions.GetLevel() != "s0:c1" {
					t.Errorf("selinux = %v", sc.SelinuxOptions)
				}
			},
		},
		{
			name: "allowPrivilegeEscalation true: no no_new_privs",
			c:    &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(true), Privileged: ptr.To(true)},
			check: func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
				if sc.NoNewPrivs || !sc.Privileged {
					t.Errorf("nnp %v privileged %v", sc.NoNewPrivs, sc.Privileged)
				}
			},
		},
		{
			name: "procMount Unmasked",
			c:    &corev1.SecurityContext{ProcMount: &unmasked},
			check: func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
				if sc.MaskedPaths == nil || len(sc.MaskedPaths) != 0 || sc.ReadonlyPaths == nil || len(sc.ReadonlyPaths) != 0 {
					t.Errorf("masked %v readonly %v, want empty (not nil: nil is the runtime's defaults)", sc.MaskedPaths, sc.ReadonlyPaths)
				}
			},
		},
		{
			name: "pod seccomp RuntimeDefault",
			pod:  &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			check: func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
				if sc.Seccomp.ProfileType != runtimeapi.SecurityProfile_RuntimeDefault {
					t.Errorf("seccomp = %v", sc.Seccomp)
				}
			},
		},
		{
			name: "container seccomp beats pod's",
			pod:  &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			c:    &corev1.SecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr.To("audit.json")}},
			check: func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
				if sc.Seccomp.ProfileType != runtimeapi.SecurityProfile_Localhost || sc.Seccomp.LocalhostRef != "/var/lib/kubelet/seccomp/audit.json" {
					t.Errorf("seccomp = %v", sc.Seccomp)
				}
			},
		},
		{
			name: "seccomp Unconfined",
			c:    &corev1.SecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}},
			check: func(t *testing.T, sc *runtimeapi.LinuxContainerSecurityContext) {
				if sc.Seccomp.ProfileType != runtimeapi.SecurityProfile_Unconfined {
					t.Errorf("seccomp = %v", sc.Seccomp)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := testPod()
			pod.Spec.SecurityContext = tc.pod
			c := &corev1.Container{Name: "app", SecurityContext: tc.c}
			sc, err := ContainerSecurityContext(pod, c, SecurityOptions{})
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, sc)
		})
	}
}

func TestSeccompProfileOptions(t *testing.T) {
	pod := testPod()
	c := &corev1.Container{Name: "app"}
	p, err := SeccompProfile(pod, c, SecurityOptions{SeccompDefault: true})
	if err != nil || p.ProfileType != runtimeapi.SecurityProfile_RuntimeDefault {
		t.Errorf("--seccomp-default: %v, %v", p, err)
	}
	c.SecurityContext = &corev1.SecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: ptr.To("p.json")}}
	if p, _ := SeccompProfile(pod, c, SecurityOptions{SeccompProfileRoot: "/data/kubelet/seccomp"}); p.LocalhostRef != "/data/kubelet/seccomp/p.json" {
		t.Errorf("profile root: %v", p)
	}
	c.SecurityContext.SeccompProfile.LocalhostProfile = nil
	if _, err := SeccompProfile(pod, c, SecurityOptions{}); err == nil || err.Error() != "localhostProfile must be set if seccompProfile type is Localhost." {
		t.Errorf("err = %v", err)
	}
}

func TestNamespaceOptions(t *testing.T) {
	for _, tc := range []struct {
		name          string
		spec          corev1.PodSpec
		net, pid, ipc runtimeapi.NamespaceMode
	}{
		{"default", corev1.PodSpec{}, runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_CONTAINER, runtimeapi.NamespaceMode_POD},
		{"host network", corev1.PodSpec{HostNetwork: true}, runtimeapi.NamespaceMode_NODE, runtimeapi.NamespaceMode_CONTAINER, runtimeapi.NamespaceMode_POD},
		{"host pid and ipc", corev1.PodSpec{HostPID: true, HostIPC: true}, runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_NODE, runtimeapi.NamespaceMode_NODE},
		{"shared pid", corev1.PodSpec{ShareProcessNamespace: ptr.To(true)}, runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_POD},
		{"host pid beats shared", corev1.PodSpec{HostPID: true, ShareProcessNamespace: ptr.To(true)}, runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_NODE, runtimeapi.NamespaceMode_POD},
	} {
		ns := NamespaceOptions(&corev1.Pod{Spec: tc.spec})
		if ns.Network != tc.net || ns.Pid != tc.pid || ns.Ipc != tc.ipc {
			t.Errorf("%s: %v", tc.name, ns)
		}
	}
}

func TestVerifyRunAsNonRoot(t *testing.T) {
	pod := testPod()
	uid := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		name     string
		pod, c   *corev1.SecurityContext
		imageUID *int64
		username string
		want     string
	}{
		{name: "not asked", imageUID: uid(0)},
		{name: "asked false", c: &corev1.SecurityContext{RunAsNonRoot: ptr.To(false)}, imageUID: uid(0)},
		{name: "runAsUser 0", c: &corev1.SecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](0)},
			want: `container's runAsUser breaks non-root policy (pod: "web_ns(uid-1)", container: app)`},
		{name: "runAsUser 1000", c: &corev1.SecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](1000)}, imageUID: uid(0)},
		{name: "image root", pod: &corev1.SecurityContext{RunAsNonRoot: ptr.To(true)}, imageUID: uid(0),
			want: `container has runAsNonRoot and image will run as root (pod: "web_ns(uid-1)", container: app)`},
		{name: "image user name", c: &corev1.SecurityContext{RunAsNonRoot: ptr.To(true)}, username: "nobody",
			want: `container has runAsNonRoot and image has non-numeric user (nobody), cannot verify user is non-root (pod: "web_ns(uid-1)", container: app)`},
		{name: "image uid 65534", c: &corev1.SecurityContext{RunAsNonRoot: ptr.To(true)}, imageUID: uid(65534)},
		{name: "image uid invalid", c: &corev1.SecurityContext{RunAsNonRoot: ptr.To(true)}, imageUID: uid(-1),
			want: `container has runAsNonRoot and image has an invalid user id (-1). (Must be 1-(2147483647)): must be between 0 and 2147483647, inclusive (pod: "web_ns(uid-1)", container: app)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pod.DeepCopy()
			if tc.pod != nil {
				p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: tc.pod.RunAsNonRoot}
			}
			err := VerifyRunAsNonRoot(p, &corev1.Container{Name: "app", SecurityContext: tc.c}, tc.imageUID, tc.username)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("err = %q\nwant  %q", got, tc.want)
			}
		})
	}
}

func TestApplyImageUser(t *testing.T) {
	cfg := &runtimeapi.ContainerConfig{Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{}}}
	ApplyImageUser(cfg, ptr.To[int64](65534), "")
	if cfg.Linux.SecurityContext.RunAsUser.GetValue() != 65534 {
		t.Errorf("RunAsUser = %v", cfg.Linux.SecurityContext.RunAsUser)
	}
	ApplyImageUser(cfg, ptr.To[int64](0), "root") // already set: kept
	if cfg.Linux.SecurityContext.RunAsUser.GetValue() != 65534 || cfg.Linux.SecurityContext.RunAsUsername != "" {
		t.Errorf("overwrote the user: %v", cfg.Linux.SecurityContext)
	}
	cfg.Linux.SecurityContext.RunAsUser = nil
	ApplyImageUser(cfg, nil, "nobody")
	if cfg.Linux.SecurityContext.RunAsUser != nil || cfg.Linux.SecurityContext.RunAsUsername != "nobody" {
		t.Errorf("username: %v", cfg.Linux.SecurityContext)
	}
}
