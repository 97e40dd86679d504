package framework

import "sync/atomic"

var generation atomic.Int64

// nextGeneration is a process-wide increasing number, so a NodeInfo's
// Generation tells the snapshot whether it changed.
func nextGeneration() int64 { return generation.Add(1) }
