// Package allocator hands out the numbered items of a range — the IPs of the
// service CIDR, the ports of the NodePort range — exactly once across every
// apiserver sharing an etcd. As upstream, the allocation state is one
// core/v1 RangeAllocation (a bitmap) per range, changed only by
// compare-and-swap, so concurrent allocations from several apiservers never
// hand out an item twice, and the state survives restarts.
package allocator

import (
	"context"
	"errors"
	"math/rand/v2"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/storage"
)

var (
	// ErrAllocated: the item is already taken.
	ErrAllocated = errors.New("provided item is already allocated")
	// ErrFull: nothing is free.
	ErrFull = errors.New("range is full")
	// errNotInRange: the item is outside the range.
	errNotInRange = errors.New("provided item is not in the valid range")
)

// Range is the allocation state of items 0..Size-1.
type Range struct {
	store storage.Interface
	key   string
	// Description identifies the range in the stored object (the CIDR or
	// port range); a stored bitmap for another range is discarded.
	description string
	size        int
	// Items below staticBand are handed out dynamically only when the rest
	// is full, leaving them for explicit requests (upstream's static subrange).
	staticBand int
}

// New returns the range stored under key in store.
func New(store storage.Interface, key, description string, size, staticBand int) *Range {
	return &Range{store: store, key: key, description: description, size: size, staticBand: staticBand}
}

// Size is the number of items.
func (r *Range) Size() int { return r.size }

// Allocate takes item i.
func (r *Range) Allocate(ctx context.Context, i int) error {
	if i < 0 || i >= r.size {
		return errNotInRange
	}
	return r.update(ctx, func(bits bitmap) error {
		if bits.has(i) {
			return ErrAllocated
		}
		bits.set(i)
		return nil
	})
}

// AllocateNext takes a free item, preferring the dynamic band, and returns it.
func (r *Range) AllocateNext(ctx context.Context) (int, error) {
	var got int
	err := r.update(ctx, func(bits bitmap) error {
		i, ok := r.findFree(bits)
		if !ok {
			return ErrFull
		}
		bits.set(i)
		got = i
		return nil
	})
	return got, err
}

// Free reports whether i is in range and not taken (for dry runs).
func (r *Range) Free(ctx context.Context, i int) (bool, error) {
	if i < 0 || i >= r.size {
		return false, errNotInRange
	}
	bits, err := r.read(ctx)
	return err == nil && !bits.has(i), err
}

// PeekNext returns a free item without taking it (for dry runs).
func (r *Range) PeekNext(ctx context.Context) (int, error) {
	bits, err := r.read(ctx)
	if err != nil {
		return 0, err
	}
	i, ok := r.findFree(bits)
	if !ok {
		return 0, ErrFull
	}
	return i, nil
}

// Release frees item i; releasing a free item is not an error.
func (r *Range) Release(ctx context.Context, i int) error {
	if i < 0 || i >= r.size {
		return nil
	}
	return r.update(ctx, func(bits bitmap) error {
		bits.clear(i)
		return nil
	})
}

// MarkUsed takes every item in used that is in range; items already taken
// stay taken. The repair at start-up uses it so that objects written before
// a crash keep their items.
func (r *Range) MarkUsed(ctx context.Context, used []int) error {
	return r.update(ctx, func(bits bitmap) error {
		for _, i := range used {
			if i >= 0 && i < r.size {
				bits.set(i)
			}
		}
		return nil
	})
}

// Reconcile makes the stored bitmap agree with held, the items the API
// objects hold, in one compare-and-swap write: a held item that is free is
// taken (returned in missing); a taken item that nobody holds (returned in
// unheld) is released when release says so, else kept: the caller decides
// from how long it has been unheld, since a fresh allocation's object may
// not be written yet.
func (r *Range) Reconcile(ctx context.Context, held []int, release func(i int) bool) (missing, unheld, released []int, err error) {
	isHeld := make(map[int]bool, len(held))
	for _, i := range held {
		if i >= 0 && i < r.size {
			isHeld[i] = true
		}
	}
	err = r.update(ctx, func(bits bitmap) error {
		missing, unheld, released = nil, nil, nil // a retried write starts over
		for i := 0; i < r.size; i++ {
			switch {
			case isHeld[i] && !bits.has(i):
				bits.set(i)
				missing = append(missing, i)
			case !isHeld[i] && bits.has(i):
				unheld = append(unheld, i)
				if release(i) {
					bits.clear(i)
					released = append(released, i)
				}
			}
		}
		return nil
	})
	return missing, unheld, released, err
}

func (r *Range) findFree(bits bitmap) (int, bool) {
	if i, ok := bits.freeFrom(r.staticBand, r.size); ok {
		return i, true
	}
	return bits.freeFrom(0, r.staticBand)
}

func (r *Range) read(ctx context.Context) (bitmap, error) {
	obj := &corev1.RangeAllocation{}
	err := r.store.Get(ctx, r.key, storage.GetOptions{IgnoreNotFound: true}, obj)
	if err != nil {
		return nil, err
	}
	return r.bitmapOf(obj), nil
}

func (r *Range) bitmapOf(obj *corev1.RangeAllocation) bitmap {
	bits := make(bitmap, (r.size+7)/8)
	if obj.Range == r.description {
		copy(bits, obj.Data)
	}
	return bits
}

// update applies change to the stored bitmap with compare-and-swap retries.
func (r *Range) update(ctx context.Context, change func(bitmap) error) error {
	return r.store.GuaranteedUpdate(ctx, r.key, &corev1.RangeAllocation{}, true, nil,
		func(input runtime.Object, _ storage.ResponseMeta) (runtime.Object, *uint64, error) {
			existing := input.(*corev1.RangeAllocation)
			bits := r.bitmapOf(existing)
			if err := change(bits); err != nil {
				return nil, nil, err
			}
			out := existing.DeepCopy()
			out.Range = r.description
			out.Data = bits
			return out, nil, nil
		}, nil)
}

// bitmap holds bit i in byte i/8.
type bitmap []byte

func (b bitmap) has(i int) bool { return b[i/8]&(1<<(i%8)) != 0 }
func (b bitmap) set(i int)      { b[i/8] |= 1 << (i % 8) }
func (b bitmap) clear(i int)    { b[i/8] &^= 1 << (i % 8) }

// freeFrom finds a free item in [lo, hi), starting at a random offset so that
// concurrent allocators rarely race for the same item.
func (b bitmap) freeFrom(lo, hi int) (int, bool) {
	n := hi - lo
	if n <= 0 {
		return 0, false
	}
	start := rand.IntN(n)
	for k := 0; k < n; k++ {
		i := lo + (start+k)%n
		if !b.has(i) {
			return i, true
		}
	}
	return 0, false
}
