package allocator

import (
	"context"
	"fmt"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apiserver/pkg/storage"
)

// Ports allocates the ports of the NodePort range.
type Ports struct {
	*Range
	ports utilnet.PortRange
}

// NewPorts allocates from ports, with its state under key in store.
func NewPorts(store storage.Interface, key string, ports utilnet.PortRange) *Ports {
	static := min(max(16, ports.Size/32), 128)
	if ports.Size < 16 {
		static = 0
	}
	return &Ports{Range: New(store, key, ports.String(), ports.Size, static), ports: ports}
}

// AllocatePort takes port, with upstream's error messages.
func (a *Ports) AllocatePort(ctx context.Context, port int) error {
	if !a.ports.Contains(port) {
		return fmt.Errorf("provided port is not in the valid range. The range of valid ports is %s", a.ports.String())
	}
	if err := a.Allocate(ctx, port-a.ports.Base); err != nil {
		if err == ErrAllocated {
			return fmt.Errorf("provided port is already allocated")
		}
		return err
	}
	return nil
}

// AllocateNextPort takes a free port.
func (a *Ports) AllocateNextPort(ctx context.Context) (int, error) {
	i, err := a.AllocateNext(ctx)
	if err == ErrFull {
		return 0, fmt.Errorf("range is full")
	}
	return a.ports.Base + i, err
}

// PeekNextPort returns a free port without taking it.
func (a *Ports) PeekNextPort(ctx context.Context) (int, error) {
	i, err := a.PeekNext(ctx)
	return a.ports.Base + i, err
}

// PortFree reports whether port is in range and free.
func (a *Ports) PortFree(ctx context.Context, port int) (bool, error) {
	return a.Free(ctx, port-a.ports.Base)
}

// ReleasePort frees port if it belongs to the range.
func (a *Ports) ReleasePort(ctx context.Context, port int) error {
	if a.ports.Contains(port) {
		return a.Release(ctx, port-a.ports.Base)
	}
	return nil
}

// MarkPortsUsed takes every port of ports that is in the range.
func (a *Ports) MarkPortsUsed(ctx context.Context, ports []int) error {
	var items []int
	for _, p := range ports {
		if a.ports.Contains(p) {
			items = append(items, p-a.ports.Base)
		}
	}
	return a.MarkUsed(ctx, items)
}

// Index maps port to its item, or -1 when it is outside the range.
func (a *Ports) Index(port int) int {
	if !a.ports.Contains(port) {
		return -1
	}
	return port - a.ports.Base
}

// Port is the port of item i.
func (a *Ports) Port(i int) int { return a.ports.Base + i }

// PortRange is the range allocated from.
func (a *Ports) PortRange() utilnet.PortRange { return a.ports }
