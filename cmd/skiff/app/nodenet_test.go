package app

import (
	"strings"
	"testing"
)

func TestNodeNetworkOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		opts nodeNetworkOptions
		want string // "" valid
	}{
		{nodeNetworkOptions{podNetworkBackend: "auto", proxyMode: "iptables", clusterCIDR: "10.244.0.0/16"}, ""},
		{nodeNetworkOptions{podNetworkBackend: "auto", proxyMode: "iptables", clusterCIDR: "10.244.0.0/16,fd00::/48"}, ""},
		{nodeNetworkOptions{podNetworkBackend: "auto", proxyMode: "userspace"}, `--proxy-mode: unknown proxy mode "userspace"`},
		{nodeNetworkOptions{podNetworkBackend: "none", disableKubeProxy: true, proxyMode: "userspace"}, ""},
		{nodeNetworkOptions{podNetworkBackend: "auto", proxyMode: "iptables", clusterCIDR: "10.244.0.0"}, "--cluster-cidr: "},
		{nodeNetworkOptions{podNetworkBackend: "auto", proxyMode: "iptables", clusterCIDR: "10.244.0.0/16,"}, "--cluster-cidr: "},
		{nodeNetworkOptions{podNetworkBackend: "host-gw", proxyMode: "iptables"}, "--pod-network-backend host-gw needs --cluster-cidr"},
		{nodeNetworkOptions{podNetworkBackend: "none", proxyMode: "iptables"}, ""},
		{nodeNetworkOptions{podNetworkBackend: "flannel", proxyMode: "iptables", clusterCIDR: "10.244.0.0/16"}, `--pod-network-backend: "flannel" is not auto, host-gw or none`},
	} {
		err := tc.opts.validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.opts, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: got %v, want an error with %q", tc.opts, err, tc.want)
		}
	}
}

func TestAgentRejectsBadProxyMode(t *testing.T) {
	cmd := newAgentCommand()
	cmd.SetArgs([]string{"--kubeconfig", "/nonexistent", "--proxy-mode", "userspace"})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	if err == nil || !strings.Contains(err.Error(), `unknown proxy mode "userspace"`) {
		t.Fatalf("got %v, want the proxy mode refused before anything starts", err)
	}
}
