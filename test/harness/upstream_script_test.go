package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestUpstreamScriptRunsOneBuildAtATime runs hack/upstream.sh twice at once
// on one cache, with a stand-in `go` that takes a second per build and
// fails if another build is under way: both runs succeed, one builds, the
// other waits and reuses its binary.
func TestUpstreamScriptRunsOneBuildAtATime(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin, cache := t.TempDir(), t.TempDir()
	fakeGo := `#!/usr/bin/env bash
set -e
busy="` + cache + `/busy"
if ! mkdir "$busy" 2>/dev/null; then echo "two builds at once" >&2; exit 1; fi
sleep 1
while [[ $# -gt 0 ]]; do [[ $1 == -o ]] && { shift; echo built > "$1"; chmod +x "$1"; }; shift; done
rmdir "$busy"
echo build >> "` + cache + `/builds"
`
	if err := os.WriteFile(filepath.Join(bin, "go"), []byte(fakeGo), 0o755); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	outs := make([][]byte, 2)
	errs := make([]error, 2)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command("bash", filepath.Join(root, "hack", "upstream.sh"), "kube-apiserver")
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "SKIFF_UPSTREAM_CACHE="+cache)
			outs[i], errs[i] = cmd.CombinedOutput()
		}()
	}
	wg.Wait()
	for i := range outs {
		if errs[i] != nil {
			t.Errorf("run %d: %v\n%s", i, errs[i], outs[i])
		}
	}
	builds, _ := os.ReadFile(filepath.Join(cache, "builds"))
	if n := strings.Count(string(builds), "build"); n != 1 {
		t.Errorf("%d builds, want 1 (the second run reuses the first's)", n)
	}
	if data, err := os.ReadFile(filepath.Join(cache, "v1.37.2", "kube-apiserver")); err != nil || string(data) != "built\n" {
		t.Errorf("kube-apiserver in the cache: %q %v", data, err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(cache, "v1.37.2", "*.tmp*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}
