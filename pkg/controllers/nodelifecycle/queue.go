package nodelifecycle

import (
	"sort"
	"sync"
	"time"

	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/clock"
)

// evictionBurst is upstream's EvictionRateLimiterBurst.
const evictionBurst = 1

// taintQueue is one zone's nodes waiting for their NoExecute taint, taken
// at the zone's rate (upstream's RateLimitedTimedQueue). A node stays a
// member once tainted, until removed (when it is Ready again or its taint
// went missing), so that it is not tainted twice.
type taintQueue struct {
	clock clock.Clock

	mu      sync.Mutex
	pending []queued // by processAt
	members map[string]bool
	limiter flowcontrol.RateLimiter
	// qps is the limiter's: the never-accepting limiter of rate 0
	// reports 1.
	qps float32
}

type queued struct {
	name      string
	processAt time.Time
}

func newTaintQueue(qps float32, clk clock.Clock) *taintQueue {
	return &taintQueue{clock: clk, members: map[string]bool{}, limiter: newLimiter(qps, clk), qps: qps}
}

func newLimiter(qps float32, clk clock.Clock) flowcontrol.RateLimiter {
	if qps <= 0 {
		return flowcontrol.NewFakeNeverRateLimiter()
	}
	return flowcontrol.NewTokenBucketRateLimiterWithClock(qps, evictionBurst, clk)
}

// add queues the node unless it is a member already.
func (q *taintQueue) add(name string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.members[name] {
		return false
	}
	q.members[name] = true
	q.pending = append(q.pending, queued{name: name, processAt: q.clock.Now()})
	q.sort()
	return true
}

// remove drops the node's membership (and its place in the queue).
func (q *taintQueue) remove(name string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.members[name] {
		return false
	}
	delete(q.members, name)
	q.drop(name)
	return true
}

func (q *taintQueue) drop(name string) {
	for i, v := range q.pending {
		if v.name == name {
			q.pending = append(q.pending[:i], q.pending[i+1:]...)
			return
		}
	}
}

func (q *taintQueue) sort() {
	sort.SliceStable(q.pending, func(i, j int) bool { return q.pending[i].processAt.Before(q.pending[j].processAt) })
}

// try hands the due nodes to fn as long as the rate allows; fn says
// whether it is done with the node, or after how long to try it again.
// The node stays a member either way.
func (q *taintQueue) try(fn func(name string) (done bool, retryAfter time.Duration)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.pending) > 0 {
		head := q.pending[0]
		now := q.clock.Now()
		if now.Before(head.processAt) || !q.limiter.TryAccept() {
			return
		}
		q.pending = q.pending[1:]
		// fn writes to the API: the queue is not held meanwhile, but the
		// head was taken out of it.
		q.mu.Unlock()
		done, wait := fn(head.name)
		q.mu.Lock()
		if !done && q.members[head.name] {
			q.drop(head.name)
			q.pending = append(q.pending, queued{name: head.name, processAt: now.Add(wait + 1)})
			q.sort()
		}
	}
}

// setRate swaps the limiter for one of qps (0: nothing is taken), keeping
// an exhausted bucket exhausted, as upstream's SwapLimiter.
func (q *taintQueue) setRate(qps float32) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.qps == qps {
		return
	}
	l := newLimiter(qps, q.clock)
	if qps > 0 && !q.limiter.TryAccept() {
		l.TryAccept()
	}
	q.limiter.Stop()
	q.limiter, q.qps = l, qps
}

func (q *taintQueue) rate() float32 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.qps
}
