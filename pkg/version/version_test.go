package version

import "testing"

// The -X values win over the VCS stamp (absent from test binaries).
func TestInfoFromLinkerFlags(t *testing.T) {
	defer func(c, s, d string) { GitCommit, GitTreeState, BuildDate = c, s, d }(GitCommit, GitTreeState, BuildDate)
	GitCommit, GitTreeState, BuildDate = "0123abcd", "dirty", "2026-12-02T17:00:00Z"
	info := Info()
	if info.GitCommit != "0123abcd" || info.GitTreeState != "dirty" || info.BuildDate != "2026-12-02T17:00:00Z" {
		t.Errorf("info %+v", info)
	}
	if info.GitVersion != "v"+Kubernetes+"-skiff."+Build || info.Major != "1" || info.Minor != "37" {
		t.Errorf("version %+v", info)
	}
}

// Without either, the build date is upstream's unset value, not empty.
func TestInfoUnset(t *testing.T) {
	defer func(c, s, d string) { GitCommit, GitTreeState, BuildDate = c, s, d }(GitCommit, GitTreeState, BuildDate)
	GitCommit, GitTreeState, BuildDate = "", "", ""
	if info := Info(); info.BuildDate != unsetBuildDate {
		t.Errorf("buildDate %q, want %q", info.BuildDate, unsetBuildDate)
	}
}
