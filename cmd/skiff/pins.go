//go:build tools

// The node agent's dependencies, pinned in go.mod before the kubelet (CRI
// against containerd, its streaming server, its config file types) and the
// proxy (iptables) import them; the `tools` build tag keeps this file out of
// every build.
package main

import (
	_ "github.com/coreos/go-iptables/iptables"
	_ "k8s.io/cri-api/pkg/apis/runtime/v1"
	_ "k8s.io/cri-client/pkg"
	_ "k8s.io/kubelet/config/v1beta1"
	_ "k8s.io/streaming/pkg/httpstream/spdy"
)
