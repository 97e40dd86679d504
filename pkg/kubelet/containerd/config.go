package containerd

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/skiff-dev/skiff/pkg/kubelet/cni"
)

// DefaultSandboxImage is the pause image every pod sandbox runs; it must be
// in containerd's image store (this machine pulls nothing from the internet).
const DefaultSandboxImage = "registry.k8s.io/pause:3.10.2"

// disabledPlugins are the plugins that cannot work on a node like this and
// would only add noise to containerd's log: other snapshotters (overlayfs
// is the one used) and the optional tracing exporter.
var disabledPlugins = []string{
	"io.containerd.snapshotter.v1.aufs",
	"io.containerd.snapshotter.v1.btrfs",
	"io.containerd.snapshotter.v1.devmapper",
	"io.containerd.snapshotter.v1.zfs",
	"io.containerd.tracing.processor.v1.otlp",
	"io.containerd.internal.v1.tracing",
}

// renderConfig is containerd's config.toml (containerd 1.6, config version 2)
// for o, whose defaults are already filled in.
func renderConfig(o Options) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# Written by skiff; rewritten on every start.")
	w("version = 2")
	w("root = %s", tomlString(filepath.Join(o.DataDir, "root")))
	w("state = %s", tomlString(filepath.Join(o.DataDir, "state")))
	// Top-level keys must precede the first table.
	quoted := make([]string, len(disabledPlugins))
	for i, p := range disabledPlugins {
		quoted[i] = tomlString(p)
	}
	w("disabled_plugins = [%s]", strings.Join(quoted, ", "))
	w("")
	w("[grpc]")
	w("  address = %s", tomlString(o.socketPath()))
	w("")
	// No debug socket, no metrics listener: the defaults
	// (/run/containerd/debug.sock) would collide between two containerds.
	w("[debug]")
	w("  address = \"\"")
	w("  level = \"info\"")
	w("")
	w("[metrics]")
	w("  address = \"\"")
	w("")
	// Keep the "opt" plugin's directory out of /opt/containerd.
	w("[plugins.\"io.containerd.internal.v1.opt\"]")
	w("  path = %s", tomlString(filepath.Join(o.DataDir, "opt")))
	w("")
	w("[plugins.\"io.containerd.grpc.v1.cri\"]")
	w("  sandbox_image = %s", tomlString(o.SandboxImage))
	// Root here lacks CAP_SYS_RESOURCE: a sandbox asking for oom_score_adj
	// -998 makes runc fail ("can't get final child's PID from pipe: EOF").
	w("  restrict_oom_score_adj = true")
	// The kubelet proxies exec/attach/port-forward to this server.
	w("  stream_server_address = \"127.0.0.1\"")
	w("  stream_server_port = \"0\"")
	w("  enable_tls_streaming = false")
	w("  enable_selinux = false")
	w("")
	w("[plugins.\"io.containerd.grpc.v1.cri\".containerd]")
	w("  snapshotter = \"overlayfs\"")
	w("  default_runtime_name = \"runc\"")
	w("")
	w("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]")
	w("  runtime_type = \"io.containerd.runc.v2\"")
	w("")
	// cgroupfs driver: PID 1 is not systemd, cgroups are v1.
	w("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]")
	w("  SystemdCgroup = false")
	w("")
	w("[plugins.\"io.containerd.grpc.v1.cri\".cni]")
	w("  bin_dir = %s", tomlString(o.CNIBinDir))
	w("  conf_dir = %s", tomlString(o.CNIConfDir))
	w("")
	w("[plugins.\"io.containerd.grpc.v1.cri\".registry]")
	w("  config_path = %s", tomlString(o.registryDir()))
	return b.String()
}

// renderHosts is certs.d/<registry>/hosts.toml: pull and resolve through
// the mirrors in order, then the registry itself.
func renderHosts(registry string, mirrors []string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "server = %s\n", tomlString(registryServer(registry)))
	for _, m := range mirrors {
		u, err := url.Parse(m)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return "", fmt.Errorf("mirror %q of %s is not an http(s) URL", m, registry)
		}
		fmt.Fprintf(&b, "\n[host.%s]\n", tomlString(strings.TrimSuffix(m, "/")))
		b.WriteString("  capabilities = [\"pull\", \"resolve\"]\n")
	}
	return b.String(), nil
}

// registryServer is the upstream URL of a registry host as image names
// spell it; docker.io's API lives elsewhere.
func registryServer(registry string) string {
	if registry == "docker.io" {
		return "https://registry-1.docker.io"
	}
	return "https://" + registry
}

// writeRegistryHosts makes <DataDir>/certs.d hold exactly one hosts.toml
// per mirrored registry.
func writeRegistryHosts(o Options) error {
	dir := o.registryDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	registries := make([]string, 0, len(o.RegistryMirrors))
	for r := range o.RegistryMirrors {
		if r == "" || r == "." || r == ".." || strings.ContainsAny(r, "/\\ ") {
			return fmt.Errorf("registry host %q is not a host[:port]", r)
		}
		registries = append(registries, r)
	}
	sort.Strings(registries)
	want := map[string]bool{}
	for _, r := range registries {
		text, err := renderHosts(r, o.RegistryMirrors[r])
		if err != nil {
			return err
		}
		want[r] = true
		if _, err := cni.WriteFileIfChanged(filepath.Join(dir, r, "hosts.toml"), []byte(text), 0o644); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !want[e.Name()] {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
