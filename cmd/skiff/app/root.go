// Package app holds the skiff subcommands.
package app

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/pkg/version"
)

// NewRootCommand returns `skiff` with all its subcommands.
func NewRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "skiff",
		Short:         "A Kubernetes-compatible control plane and node agent",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.AddCommand(newServerCommand(), newAPIServerCommand(), newControllerManagerCommand(), newSchedulerCommand(), newAgentCommand(), newKubeletCommand(), newDNSCommand(), newProxyCommand(), newKubeconfigCommand(), newImagesCommand(), newVersionCommand())
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the skiff version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), version.GitVersion())
		},
	}
}
