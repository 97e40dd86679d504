// Command kubectl is upstream kubectl, unmodified, built from the
// k8s.io/kubectl module at the version pinned in go.mod; main is the same as
// upstream's cmd/kubectl. It lets skiff's e2e tests exercise the kubectl
// release matching the Kubernetes API version skiff serves. Build it with
// hack/build-kubectl.sh, which stamps the version via -ldflags.
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		// Pretty-print the error and exit with an error.
		util.CheckErr(err)
	}
}
