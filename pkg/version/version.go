// Package version is skiff's version: the Kubernetes release whose API it
// serves, plus a skiff build number, in a form every kubectl parses.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	utilversion "k8s.io/apimachinery/pkg/util/version"
	apimachineryversion "k8s.io/apimachinery/pkg/version"
	basecompatibility "k8s.io/component-base/compatibility"
)

// Kubernetes is the upstream release skiff is measured against.
const Kubernetes = "1.37.2"

// Build numbers skiff's own releases on top of Kubernetes; set with
// -ldflags "-X github.com/skiff-dev/skiff/pkg/version.Build=N".
var Build = "1"

// GitCommit, GitTreeState ("clean" or "dirty") and BuildDate (RFC 3339,
// UTC) may be set the same way, as upstream's hack/lib/version.sh sets
// them. Left empty, they come from what `go build` stamps into the binary
// from git (the commit, whether the tree was modified, the commit's time).
var (
	GitCommit    = ""
	GitTreeState = ""
	BuildDate    = ""
)

// unsetBuildDate is what upstream reports when the build said nothing.
const unsetBuildDate = "1970-01-01T00:00:00Z"

// GitVersion is what /version reports, e.g. v1.37.2-skiff.1.
func GitVersion() string { return fmt.Sprintf("v%s-skiff.%s", Kubernetes, Build) }

// Info is the body of /version.
func Info() *apimachineryversion.Info {
	v := utilversion.MustParseSemantic(Kubernetes)
	commit, tree, date := fromBuild()
	return &apimachineryversion.Info{
		Major:        fmt.Sprint(v.Major()),
		Minor:        fmt.Sprint(v.Minor()),
		GitVersion:   GitVersion(),
		GitCommit:    commit,
		GitTreeState: tree,
		BuildDate:    date,
		GoVersion:    runtime.Version(),
		Compiler:     runtime.Compiler,
		Platform:     runtime.GOOS + "/" + runtime.GOARCH,
	}
}

// fromBuild is the commit, tree state and build date: the -X values where
// given, else the VCS stamp of the binary.
func fromBuild() (commit, tree, date string) {
	commit, tree, date = GitCommit, GitTreeState, BuildDate
	if info, ok := debug.ReadBuildInfo(); ok {
		vcs := map[string]string{}
		for _, s := range info.Settings {
			vcs[s.Key] = s.Value
		}
		if commit == "" {
			commit = vcs["vcs.revision"]
		}
		if tree == "" && vcs["vcs.modified"] != "" {
			tree = map[string]string{"true": "dirty", "false": "clean"}[vcs["vcs.modified"]]
		}
		if date == "" {
			if t, err := time.Parse(time.RFC3339, vcs["vcs.time"]); err == nil {
				date = t.UTC().Format(time.RFC3339)
			}
		}
	}
	if date == "" {
		date = unsetBuildDate
	}
	return commit, tree, date
}

// Effective is the apiserver's EffectiveVersion: binary and emulation version
// are the Kubernetes release; Info reports skiff's git version.
type Effective struct {
	basecompatibility.MutableEffectiveVersion
}

// NewEffective returns the EffectiveVersion for the apiserver config.
func NewEffective() *Effective {
	return &Effective{basecompatibility.NewEffectiveVersionFromString(Kubernetes, "", "")}
}

// Info overrides the build-flag-based info of component-base.
func (e *Effective) Info() *apimachineryversion.Info {
	info := Info()
	base := e.MutableEffectiveVersion.Info()
	if base != nil {
		info.EmulationMajor, info.EmulationMinor = base.EmulationMajor, base.EmulationMinor
		info.MinCompatibilityMajor, info.MinCompatibilityMinor = base.MinCompatibilityMajor, base.MinCompatibilityMinor
	}
	return info
}
