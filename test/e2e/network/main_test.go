// Package network is the acceptance test of service networking (issue 12)
// on real parts: two network namespaces act as two hosts on a Linux bridge,
// each running a real `skiff agent` (kubelet on its own containerd, the
// service proxy, the pod network, NetworkPolicy enforcement) against one
// `skiff server --disable-agent` in the root namespace, whose embedded DNS
// is the cluster DNS. Real busybox pods check Services (ClusterIP spread,
// NodePort, session affinity, REJECT without endpoints, the Local traffic
// policy) in iptables and in nftables mode, the cluster DNS, and
// NetworkPolicies.
//
// One cluster serves every test: TestMain starts it and removes all of it
// at the end (processes, mounts, network namespaces with their rules, the
// bridge). Without root or the tools it needs, every test is skipped with
// the missing capability named.
package network

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/skiff-dev/skiff/test/harness"
)

var (
	// cl is the cluster every test uses; nil when setupErr or skipReason
	// says why not.
	cl         *cluster
	setupErr   error
	skipReason string
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	defer harness.Cleanup()
	if testing.Short() {
		skipReason = "-short: starts a two-node cluster with real containers"
		return m.Run()
	}
	if skipReason = missingCapability(); skipReason != "" {
		return m.Run()
	}
	unlock, err := lockMachine()
	if err != nil {
		fmt.Fprintln(os.Stderr, "network: FAIL:", err)
		return 1
	}
	defer unlock()
	cl, setupErr = startCluster()
	code := m.Run()
	if cl != nil {
		if code != 0 {
			cl.dumpLogs()
		}
		if err := cl.teardown(); err != nil {
			fmt.Fprintln(os.Stderr, "network: FAIL: cleanup:", err)
			code = 1
		}
	}
	return code
}

// requireCluster returns the shared cluster; the test is skipped when this
// machine cannot run it and fails when it did not start.
func requireCluster(t *testing.T) *cluster {
	t.Helper()
	switch {
	case skipReason != "":
		t.Skip(skipReason)
	case setupErr != nil:
		t.Fatalf("the two-node cluster did not start: %v", setupErr)
	}
	return cl
}
