//go:build tools

// The node agent's dependencies, pinned in go.mod before the kubelet (CRI
// against containerd) and the proxy (iptables) import them; the `tools` build
// tag keeps this file out of every build.
package main

import (
	_ "github.com/coreos/go-iptables/iptables"
	_ "k8s.io/cri-api/pkg/apis/runtime/v1"
)
