package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/version"
)

// TestVersionFromBuild: /version's gitCommit, gitTreeState and buildDate
// come from the build (hack/build.sh: the git checkout the binary was
// built from, and the time), not from constants.
func TestVersionFromBuild(t *testing.T) {
	if os.Getenv("SKIFF_BIN") != "" {
		t.Skip("SKIFF_BIN: the binary was not built from this checkout")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	srv := sharedServer(t)
	client, err := anonymousClient(srv)
	if err != nil {
		t.Fatal(err)
	}
	code, body, err := httpGet(client, srv.URL+"/version")
	if err != nil || code != 200 {
		t.Fatalf("GET /version: %d %v\n%s", code, err, body)
	}
	var info version.Info
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(head)); info.GitCommit != want {
		t.Errorf("gitCommit %q, want HEAD %s", info.GitCommit, want)
	}
	// The tree may change while the tests run; it is one of the two.
	if info.GitTreeState != "clean" && info.GitTreeState != "dirty" {
		t.Errorf("gitTreeState %q, want clean or dirty", info.GitTreeState)
	}
	// TestMain built the binary after the test process started.
	built, err := time.Parse(time.RFC3339, info.BuildDate)
	if err != nil || built.Before(testProcessStart.Truncate(time.Second)) || built.After(time.Now()) {
		t.Errorf("buildDate %q (%v), want a time since %s", info.BuildDate, err, testProcessStart.UTC().Format(time.RFC3339))
	}
}

var testProcessStart = time.Now()
