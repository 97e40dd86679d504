// Package simulated runs many nodes in one process, as kwok and kubemark's
// hollow nodes do: each is a pkg/kubelet Node on a runtime that runs
// nothing, and all share one client and one informer.
package simulated

import "context"

// Runtime is a runtime that is always ready.
type Runtime struct{}

// Version names the runtime in nodeInfo.
func (Runtime) Version() string { return "skiff-simulated://" + runtimeVersion }

// Errors: none, it is always ready.
func (Runtime) Errors(context.Context) []error { return nil }

const runtimeVersion = "1.0.0"
