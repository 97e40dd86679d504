package runtime

import (
	"context"
	"math"

	"k8s.io/client-go/util/workqueue"
)

// DefaultParallelism is upstream's parallelism.
const DefaultParallelism = 16

// Parallelizer runs pieces of work on up to its parallelism goroutines,
// in chunks of about √pieces as upstream, so tiny pieces do not pay a
// goroutine hand-off each.
type Parallelizer struct{ parallelism int }

// NewParallelizer with parallelism (<= 0: DefaultParallelism).
func NewParallelizer(parallelism int) Parallelizer {
	if parallelism <= 0 {
		parallelism = DefaultParallelism
	}
	return Parallelizer{parallelism: parallelism}
}

func chunkSizeFor(n, parallelism int) int {
	s := int(math.Sqrt(float64(n)))
	if r := n/parallelism + 1; s > r {
		s = r
	}
	return max(s, 1)
}

// Until runs fn(i) for every i in [0, pieces) unless ctx ends first.
func (p Parallelizer) Until(ctx context.Context, pieces int, fn func(i int), operation string) {
	workqueue.ParallelizeUntil(ctx, p.parallelism, pieces, fn, workqueue.WithChunkSize(chunkSizeFor(pieces, p.parallelism)))
}
