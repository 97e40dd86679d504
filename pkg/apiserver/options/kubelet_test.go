package options

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestKubeletClientOptions(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		valid bool
	}{
		{nil, true},
		{[]string{"--kubelet-preferred-address-types=InternalIP,Hostname"}, true},
		{[]string{"--kubelet-preferred-address-types=Internal"}, false},
		{[]string{"--kubelet-preferred-address-types="}, false},
		{[]string{"--kubelet-client-certificate=a.crt"}, false},
		{[]string{"--kubelet-client-certificate=a.crt", "--kubelet-client-key=a.key"}, true},
		{[]string{"--kubelet-timeout=-1s"}, false},
	} {
		o := NewOptions()
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		o.AddFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if errs := o.KubeletClient.Validate(); (len(errs) == 0) != tc.valid {
			t.Errorf("%v: %v, want valid=%v", tc.args, errs, tc.valid)
		}
	}
}

func TestKubeletConfigDefaults(t *testing.T) {
	o := NewOptions()
	o.DataDir = "/d"
	cfg := o.KubeletConfig()
	if !o.GeneratesKubeletClientCert() || cfg.CertFile != filepath.Join("/d", "pki", "apiserver-kubelet-client.crt") ||
		cfg.KeyFile != filepath.Join("/d", "pki", "apiserver-kubelet-client.key") || cfg.CAFile != filepath.Join("/d", "pki", "ca.crt") {
		t.Errorf("defaults: %+v", cfg)
	}
	if cfg.Port != 10250 || strings.Join(cfg.PreferredAddressTypes, ",") != "InternalIP,ExternalIP,Hostname" || cfg.HTTPTimeout != 5*time.Second {
		t.Errorf("upstream defaults: %+v", cfg)
	}
	o.KubeletClient.CertFile, o.KubeletClient.KeyFile, o.KubeletClient.CAFile = "c", "k", "ca"
	if cfg := o.KubeletConfig(); o.GeneratesKubeletClientCert() || cfg.CertFile != "c" || cfg.KeyFile != "k" || cfg.CAFile != "ca" {
		t.Errorf("given files: %+v", cfg)
	}
}
