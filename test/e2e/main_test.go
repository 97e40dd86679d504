package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

var kubectlFlag = flag.String("kubectl", "",
	"comma-separated kubectl binaries to test (default: $KUBECTL, else every kubectl found)")

// skiffBin is the skiff binary under test, set by TestMain.
var skiffBin string

// buildTimeout bounds `go build ./cmd/skiff`. A cold build of the API server
// and etcd takes several minutes on a 2-core machine.
const buildTimeout = 20 * time.Minute

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "skiff-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	if skiffBin = os.Getenv("SKIFF_BIN"); skiffBin == "" {
		skiffBin = filepath.Join(tmp, "skiff")
		if err := buildSkiff(skiffBin); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: building skiff:", err)
			return 1
		}
	} else if skiffBin, err = filepath.Abs(skiffBin); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}

	code := m.Run()
	if err := stopSharedServer(code != 0); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: FAIL: shared server:", err)
		code = 1
	}
	return code
}

// buildSkiff compiles ./cmd/skiff of the enclosing module into out.
func buildSkiff(out string) error {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return fmt.Errorf("repository root not found at %s: %w", root, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/skiff")
	cmd.Dir = root
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/skiff: %w", err)
	}
	fmt.Fprintf(os.Stderr, "e2e: built %s in %s\n", out, time.Since(start).Round(time.Second))
	return nil
}
