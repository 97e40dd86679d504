package ipvs

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// netlinkDummy is Dummy through rtnetlink (github.com/vishvananda/netlink).
type netlinkDummy struct {
	h *netlink.Handle
}

// NewDummy returns the dummy interface handling of this network namespace.
func NewDummy() (Dummy, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("opening rtnetlink: %w", err)
	}
	return &netlinkDummy{h: h}, nil
}

// errNoDummy explains a kernel without the dummy link type.
func errNoDummy(err error) error {
	return fmt.Errorf("the kernel has no dummy network interfaces (CONFIG_DUMMY, module dummy) for %s: %w", DummyDevice, err)
}

func (d *netlinkDummy) EnsureDevice(dev string) error {
	link, err := d.h.LinkByName(dev)
	if err == nil {
		if link.Type() != "dummy" {
			return fmt.Errorf("interface %s exists but is a %s, not a dummy", dev, link.Type())
		}
		return nil
	}
	if !errors.As(err, new(netlink.LinkNotFoundError)) {
		return fmt.Errorf("looking up %s: %w", dev, err)
	}
	err = d.h.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: dev}})
	if errors.Is(err, unix.EOPNOTSUPP) {
		return errNoDummy(err)
	}
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("creating the dummy interface %s: %w", dev, err)
	}
	return nil
}

func (d *netlinkDummy) DeleteDevice(dev string) error {
	link, err := d.h.LinkByName(dev)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up %s: %w", dev, err)
	}
	if link.Type() != "dummy" {
		return fmt.Errorf("interface %s is a %s, not the dummy to delete", dev, link.Type())
	}
	return d.h.LinkDel(link)
}

func (d *netlinkDummy) Addresses(dev string) ([]net.IP, error) {
	link, err := d.h.LinkByName(dev)
	if err != nil {
		return nil, fmt.Errorf("looking up %s: %w", dev, err)
	}
	addrs, err := d.h.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("listing %s's addresses: %w", dev, err)
	}
	ips := make([]net.IP, 0, len(addrs))
	for _, a := range addrs {
		ips = append(ips, a.IP)
	}
	return ips, nil
}

func hostAddr(ip net.IP) (*netlink.Addr, error) {
	v4 := ip.To4()
	if v4 == nil {
		return nil, fmt.Errorf("%s: not an IPv4 address", ip)
	}
	return &netlink.Addr{IPNet: &net.IPNet{IP: v4, Mask: net.CIDRMask(32, 32)}}, nil
}

func (d *netlinkDummy) AddAddress(dev string, ip net.IP) error {
	addr, err := hostAddr(ip)
	if err != nil {
		return err
	}
	link, err := d.h.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("looking up %s: %w", dev, err)
	}
	if err := d.h.AddrAdd(link, addr); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	return nil
}

func (d *netlinkDummy) DeleteAddress(dev string, ip net.IP) error {
	addr, err := hostAddr(ip)
	if err != nil {
		return err
	}
	link, err := d.h.LinkByName(dev)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up %s: %w", dev, err)
	}
	if err := d.h.AddrDel(link, addr); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENXIO) {
		return err
	}
	return nil
}

func (d *netlinkDummy) NodeAddresses(exceptDev string) ([]net.IP, error) {
	except := -1
	if link, err := d.h.LinkByName(exceptDev); err == nil {
		except = link.Attrs().Index
	}
	addrs, err := d.h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("listing the node's addresses: %w", err)
	}
	var ips []net.IP
	for _, a := range addrs {
		if a.LinkIndex == except || a.IP.IsLoopback() {
			continue
		}
		ips = append(ips, a.IP)
	}
	return ips, nil
}
