package ipvs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"

	cfipvs "github.com/cloudflare/ipvs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const procIPVS = "/proc/net/ip_vs"

// Supported tells whether the ipvs mode can run here: the kernel's IP
// Virtual Server (the IPVS generic netlink family, whose lookup loads
// ip_vs, and /proc/net/ip_vs), the dummy link type for kube-ipvs0, and
// the ipset command.
func Supported() error {
	if err := kernelIPVS(); err != nil {
		return err
	}
	if err := dummySupported(); err != nil {
		return fmt.Errorf("proxy mode ipvs needs dummy network interfaces (CONFIG_DUMMY, module dummy) for %s, which this kernel lacks (%v); use --mode iptables", DummyDevice, err)
	}
	if _, err := exec.LookPath("ipset"); err != nil {
		return errors.New("proxy mode ipvs needs the ipset command, which is not on PATH; install ipset or use --mode iptables")
	}
	return nil
}

func kernelIPVS() error {
	c, nlErr := cfipvs.New()
	if nlErr == nil {
		if closer, ok := c.(interface{ Close() error }); ok {
			_ = closer.Close()
		}
	}
	_, statErr := os.Stat(procIPVS)
	switch {
	case nlErr == nil && statErr == nil:
		return nil
	case nlErr != nil && statErr != nil:
		return fmt.Errorf("proxy mode ipvs needs the kernel's IP Virtual Server (CONFIG_IP_VS, module ip_vs), which this kernel lacks (no %s, no IPVS generic netlink family: %v); use --mode iptables", procIPVS, nlErr)
	case nlErr != nil:
		return fmt.Errorf("proxy mode ipvs needs the kernel's IP Virtual Server, which does not answer over generic netlink (%v); use --mode iptables", nlErr)
	default:
		return fmt.Errorf("proxy mode ipvs needs the kernel's IP Virtual Server, whose %s is missing (%v); use --mode iptables", procIPVS, statErr)
	}
}

// dummySupported: kube-ipvs0 is a dummy already, or a dummy link can be
// made in a throwaway network namespace (the host's is left alone).
func dummySupported() error {
	if link, err := netlink.LinkByName(DummyDevice); err == nil {
		if link.Type() == "dummy" {
			return nil
		}
		return fmt.Errorf("interface %s exists but is a %s", DummyDevice, link.Type())
	}
	errc := make(chan error, 1)
	go func() {
		// The thread is left locked (and so discarded) if it cannot go
		// back to its namespace.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("cannot probe: %w", err)
			return
		}
		defer orig.Close()
		probe, err := netns.New()
		if err != nil {
			errc <- fmt.Errorf("cannot probe in a new network namespace: %w", err)
			return
		}
		defer probe.Close()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("cannot probe: %w", err)
			return
		}
		runtime.UnlockOSThread()
		h, err := netlink.NewHandleAt(probe, unix.NETLINK_ROUTE)
		if err != nil {
			errc <- fmt.Errorf("cannot probe: %w", err)
			return
		}
		defer h.Close()
		if err := h.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "probe0"}}); err != nil {
			errc <- fmt.Errorf("creating a dummy link: %w", err)
			return
		}
		errc <- nil
	}()
	return <-errc
}
