package e2e

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/skiff-dev/skiff/test/harness"
)

var kubectlFlag = flag.String("kubectl", "",
	"comma-separated kubectl binaries to test (default: $KUBECTL, else every kubectl found)")

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	defer harness.Cleanup()
	// Build skiff (or take $SKIFF_BIN) once, before any test starts a server.
	if _, err := harness.SkiffBinary(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building skiff:", err)
		return 1
	}
	code := m.Run()
	if err := stopSharedServer(code != 0); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: FAIL: shared server:", err)
		code = 1
	}
	return code
}
