// Package watchbuffer gives every watch served from the watch cache a
// deeper buffer between the cache and the request that writes the events
// out.
//
// k8s.io/apiserver's cacher hands each event to every watcher's channel of
// (for most watches) 10 events; when a channel is full it waits at most a
// shared budget of about 100 ms a second, then closes that watch as
// unresponsive. A burst of writes while the serving goroutines are short of
// CPU (encoding one event for hundreds of watchers) therefore closes
// watches of clients that are perfectly healthy; upstream kube-apiserver
// does the same under the same load. A goroutine per watch that only moves
// event pointers keeps the cacher's channel drained, so only a client that
// stops reading for Depth events is closed.
package watchbuffer

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/klog/v2"
)

// Depth is how many events a watch may have in flight before its client
// counts as stuck. Events are shared between watchers, so a deep buffer
// costs a pointer per event.
const Depth = 1000

// Wrap buffers the watches of the storage s of resource.
func Wrap(s storage.Interface, resource string) storage.Interface {
	return &Storage{Interface: s, resource: resource}
}

// Storage buffers the watches of the storage it wraps.
type Storage struct {
	storage.Interface
	resource string
}

// Watch starts the inner watch and pumps its events through a buffer of
// Depth.
func (s *Storage) Watch(ctx context.Context, key string, opts storage.ListOptions) (watch.Interface, error) {
	w, err := s.Interface.Watch(ctx, key, opts)
	if err != nil {
		return nil, err
	}
	return newBuffered(w, Depth, s.resource), nil
}

// buffered moves events from an inner watch into a deeper channel.
type buffered struct {
	inner    watch.Interface
	out      chan watch.Event
	stop     chan struct{}
	stopOnce sync.Once
}

func newBuffered(inner watch.Interface, depth int, resource string) *buffered {
	b := &buffered{inner: inner, out: make(chan watch.Event, depth), stop: make(chan struct{})}
	go b.pump(resource)
	return b
}

func (b *buffered) pump(resource string) {
	defer close(b.out)
	defer b.inner.Stop()
	in := b.inner.ResultChan()
	for {
		select {
		case <-b.stop:
			return
		case ev, ok := <-in:
			if !ok {
				return
			}
			select {
			case b.out <- ev:
			default:
				// The client has not read Depth events: wait for it
				// (the cacher closes the watch if it stays stuck).
				klog.V(2).InfoS("Watch buffer full; the client is slow", "resource", resource, "depth", cap(b.out))
				select {
				case b.out <- ev:
				case <-b.stop:
					return
				}
			}
		}
	}
}

// Stop ends the watch; ResultChan is closed once the pump has returned.
func (b *buffered) Stop() { b.stopOnce.Do(func() { close(b.stop) }) }

// ResultChan delivers the events in order.
func (b *buffered) ResultChan() <-chan watch.Event { return b.out }
