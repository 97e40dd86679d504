package containerd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func testOptions(dir string) Options {
	return Options{
		DataDir:      dir,
		Binary:       "/usr/bin/containerd",
		SandboxImage: DefaultSandboxImage,
		CNIBinDir:    "/usr/lib/cni",
		CNIConfDir:   filepath.Join(dir, "net.d"),
	}
}

// TestConfigAsContainerdReadsIt has containerd itself parse the config
// (config dump merges it into its defaults) and checks the settings this
// machine needs took.
func TestConfigAsContainerdReadsIt(t *testing.T) {
	bin, err := exec.LookPath("containerd")
	if err != nil {
		t.Skip("needs containerd in PATH (apt-get install containerd)")
	}
	dir := t.TempDir()
	o := testOptions(dir)
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(renderConfig(o)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--config", path, "config", "dump").CombinedOutput()
	if err != nil {
		t.Fatalf("containerd config dump: %v: %s", err, out)
	}
	dump := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		dump[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{
		`root = "` + dir + `/root"`,
		`state = "` + dir + `/state"`,
		`address = "` + dir + `/containerd.sock"`,
		`restrict_oom_score_adj = true`,
		`sandbox_image = "registry.k8s.io/pause:3.10.2"`,
		`stream_server_address = "127.0.0.1"`,
		`stream_server_port = "0"`,
		`SystemdCgroup = false`,
		`runtime_type = "io.containerd.runc.v2"`,
		`snapshotter = "overlayfs"`,
		`bin_dir = "/usr/lib/cni"`,
		`conf_dir = "` + dir + `/net.d"`,
		`config_path = "` + dir + `/certs.d"`,
		`path = "` + dir + `/opt"`,
	} {
		if !dump[want] {
			t.Errorf("containerd's view of the config lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("config dump:\n%s", out)
	}
}

func TestConfigQuotesPaths(t *testing.T) {
	o := testOptions(`/data/with "quote" and \ backslash`)
	text := renderConfig(o)
	if !strings.Contains(text, `root = "/data/with \"quote\" and \\ backslash/root"`) {
		t.Errorf("path not quoted as TOML:\n%s", text)
	}
	if got := tomlString("a\tb\x01"); got != `"a\u0009b\u0001"` {
		t.Errorf("tomlString = %s", got)
	}
}

func TestRenderHosts(t *testing.T) {
	got, err := renderHosts("registry.k8s.io", []string{"http://127.0.0.1:5000/", "https://mirror.example"})
	if err != nil {
		t.Fatal(err)
	}
	want := `server = "https://registry.k8s.io"

[host."http://127.0.0.1:5000"]
  capabilities = ["pull", "resolve"]

[host."https://mirror.example"]
  capabilities = ["pull", "resolve"]
`
	if got != want {
		t.Errorf("hosts.toml:\n%s\nwant:\n%s", got, want)
	}
	if got, _ := renderHosts("docker.io", nil); !strings.Contains(got, `server = "https://registry-1.docker.io"`) {
		t.Errorf("docker.io hosts.toml:\n%s", got)
	}
	for _, bad := range []string{"127.0.0.1:5000", "ftp://x", "http://"} {
		if _, err := renderHosts("r", []string{bad}); err == nil {
			t.Errorf("mirror %q accepted", bad)
		}
	}
}

func TestWriteRegistryHostsKeepsOnlyTheMirrors(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir)
	o.RegistryMirrors = map[string][]string{"registry.k8s.io": {"http://127.0.0.1:5000"}, "docker.io": {"http://127.0.0.1:5001"}}
	if err := writeRegistryHosts(o); err != nil {
		t.Fatal(err)
	}
	o.RegistryMirrors = map[string][]string{"registry.k8s.io": {"http://127.0.0.1:5002"}}
	if err := writeRegistryHosts(o); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "certs.d"))
	if len(entries) != 1 || entries[0].Name() != "registry.k8s.io" {
		t.Fatalf("certs.d holds %v, want only registry.k8s.io", entries)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "certs.d", "registry.k8s.io", "hosts.toml"))
	if !strings.Contains(string(data), "127.0.0.1:5002") {
		t.Errorf("hosts.toml not updated:\n%s", data)
	}
	o.RegistryMirrors = map[string][]string{"../etc": {"http://127.0.0.1:5000"}}
	if err := writeRegistryHosts(o); err == nil {
		t.Errorf("registry host with a slash accepted")
	}
}
