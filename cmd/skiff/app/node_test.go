package app

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseRegistryMirrors(t *testing.T) {
	got, err := parseRegistryMirrors([]string{"registry.k8s.io=http://127.0.0.1:5000,https://mirror.example",
		"docker.io=http://127.0.0.1:5001", "registry.k8s.io=http://127.0.0.1:5002"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"registry.k8s.io": {"http://127.0.0.1:5000", "https://mirror.example", "http://127.0.0.1:5002"},
		"docker.io":       {"http://127.0.0.1:5001"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for entry, msg := range map[string]string{
		"registry.k8s.io":                 "is not REGISTRY=URL",
		"=http://127.0.0.1:5000":          "is not REGISTRY=URL",
		"registry.k8s.io=":                "is not REGISTRY=URL",
		"a/b=http://127.0.0.1:5000":       "is not a host[:port]",
		"registry.k8s.io=127.0.0.1:5000":  "is not an http(s)://host[:port] URL",
		"registry.k8s.io=ftp://127.0.0.1": "is not an http(s)://host[:port] URL",
		"registry.k8s.io=http://a,":       "is not an http(s)://host[:port] URL",
	} {
		if _, err := parseRegistryMirrors([]string{entry}); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: error %v, want one containing %q", entry, err, msg)
		}
	}
	n := &nodeOptions{registryMirrors: []string{"registry.k8s.io=http://127.0.0.1:5000"}, containerRuntimeEndpoint: "unix:///run/containerd/containerd.sock", maxPods: 110, kubeletPort: 10250}
	if _, err := n.agentOptions(t.TempDir()); err == nil || !strings.Contains(err.Error(), "--container-runtime-endpoint") {
		t.Errorf("mirrors with an external runtime: error %v", err)
	}
}
