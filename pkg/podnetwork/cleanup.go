package podnetwork

import (
	"errors"
	"fmt"

	"github.com/coreos/go-iptables/iptables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// Cleanup removes what Run made on this host: its routes (those with
// RouteProtocol), the VXLAN device with its entries, and its iptables
// chains with the jumps to them. Forwarding stays on: other things may
// rely on it. Like Run, it changes the network namespace of the calling
// goroutine's thread.
func Cleanup() error {
	var errs []error
	routes, err := ownRoutes()
	if err != nil {
		errs = append(errs, err)
	}
	for _, r := range routes {
		if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %s: %w", r.Dst, err))
		}
	}
	if err := deleteVXLAN(); err != nil {
		errs = append(errs, err)
	}
	for _, proto := range []iptables.Protocol{iptables.ProtocolIPv4, iptables.ProtocolIPv6} {
		if err := removeRules(proto); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		klog.InfoS("Removed the pod network's routes, VXLAN device and iptables chains", "routes", len(routes))
	}
	return errors.Join(errs...)
}
