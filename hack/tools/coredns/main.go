// Command coredns is CoreDNS v1.15.0 with only the plugins of kubeadm's
// default Corefile (errors, health, ready, kubernetes, prometheus, forward,
// cache, loop, reload, loadbalance) and bind, for hack/bench --scenarios
// dns to measure skiff dns against. Built by build.sh in this directory.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	// The plugins, registered by their init.
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

// directives are the plugins in CoreDNS's plugin.cfg order (the order a
// query passes them), "prometheus" being the metrics plugin's directive.
var directives = []string{
	"reload", "bind", "ready", "health", "prometheus", "errors",
	"loadbalance", "cache", "kubernetes", "loop", "forward",
}

func init() { dnsserver.Directives = directives }

func main() { coremain.Run() }
