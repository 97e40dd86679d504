// Package version is skiff's version: the Kubernetes release whose API it
// serves, plus a skiff build number, in a form every kubectl parses.
package version

import (
	"fmt"
	"runtime"

	utilversion "k8s.io/apimachinery/pkg/util/version"
	apimachineryversion "k8s.io/apimachinery/pkg/version"
	basecompatibility "k8s.io/component-base/compatibility"
)

// Kubernetes is the upstream release skiff is measured against.
const Kubernetes = "1.37.2"

// Build numbers skiff's own releases on top of Kubernetes; set with
// -ldflags "-X github.com/skiff-dev/skiff/pkg/version.Build=N".
var Build = "1"

// GitCommit may be set the same way.
var GitCommit = ""

// GitVersion is what /version reports, e.g. v1.37.2-skiff.1.
func GitVersion() string { return fmt.Sprintf("v%s-skiff.%s", Kubernetes, Build) }

// Info is the body of /version.
func Info() *apimachineryversion.Info {
	v := utilversion.MustParseSemantic(Kubernetes)
	return &apimachineryversion.Info{
		Major:        fmt.Sprint(v.Major()),
		Minor:        fmt.Sprint(v.Minor()),
		GitVersion:   GitVersion(),
		GitCommit:    GitCommit,
		GitTreeState: "clean",
		GoVersion:    runtime.Version(),
		Compiler:     runtime.Compiler,
		Platform:     runtime.GOOS + "/" + runtime.GOARCH,
	}
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
