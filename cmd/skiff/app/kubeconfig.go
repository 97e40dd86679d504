package app

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/pkg/apiserver/options"
	"github.com/skiff-dev/skiff/pkg/pki"
)

func newKubeconfigCommand() *cobra.Command {
	dataDir := options.DefaultDataDir()
	var user string
	var groups []string
	cmd := &cobra.Command{
		Use:   "kubeconfig --user NAME [--group G]...",
		Short: "Print a kubeconfig with a fresh client certificate signed by the cluster CA",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if user == "" {
				return fmt.Errorf("--user is required")
			}
			o := options.NewOptions()
			o.DataDir = dataDir
			server, err := pki.ServerOf(o.AdminKubeconfig())
			if err != nil {
				return fmt.Errorf("reading the server address (has `skiff server --data-dir %s` run?): %w", dataDir, err)
			}
			ca, err := pki.LoadCA(o.PKIDir())
			if err != nil {
				return err
			}
			data, err := ca.Kubeconfig(server, user, groups)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", dataDir, "The data directory of the skiff server whose CA signs the certificate.")
	cmd.Flags().StringVar(&user, "user", "", "User name (certificate common name).")
	cmd.Flags().StringArrayVar(&groups, "group", nil, "Group (certificate organization); repeatable.")
	return cmd
}
