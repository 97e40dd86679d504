package app

import (
	"os"
	"path/filepath"
	"testing"

	restclient "k8s.io/client-go/rest"
)

func TestKubeconfigCA(t *testing.T) {
	dir := t.TempDir()
	if got, err := kubeconfigCA(&restclient.Config{TLSClientConfig: restclient.TLSClientConfig{CAFile: "/etc/ca.crt", CAData: []byte("x")}}, dir); err != nil || got != "/etc/ca.crt" {
		t.Errorf("with a CA file: %q, %v; want the file", got, err)
	}
	if got, err := kubeconfigCA(&restclient.Config{}, dir); err != nil || got != "" {
		t.Errorf("without a CA: %q, %v; want none", got, err)
	}
	got, err := kubeconfigCA(&restclient.Config{TLSClientConfig: restclient.TLSClientConfig{CAData: []byte("PEM")}}, filepath.Join(dir, "agent"))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(got); err != nil || string(b) != "PEM" {
		t.Errorf("inline CA written to %q: %q, %v; want PEM", got, b, err)
	}
}
