// Command skiff is a Kubernetes-compatible control plane and node agent: one
// binary, one subcommand per component.
package main

import (
	"os"

	"k8s.io/component-base/cli"

	"github.com/skiff-dev/skiff/cmd/skiff/app"
)

func main() {
	os.Exit(cli.Run(app.NewRootCommand()))
}
