package app

import (
	"github.com/spf13/cobra"
	genericapiserver "k8s.io/apiserver/pkg/server"
	restclient "k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/pkg/apiserver"
)

func newAPIServerCommand() *cobra.Command {
	o := apiserver.NewOptions()
	cmd := &cobra.Command{
		Use:   "apiserver",
		Short: "Run the API server alone, without controllers (run `skiff controller-manager` beside it)",
		Long: `Run the Kubernetes API server of skiff server, with the same flags and data
directory, but no controllers: namespaces get no default ServiceAccount, CSRs
are not signed, ... until a skiff controller-manager runs against it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logWatchClosings(cmd)
			ctx := genericapiserver.SetupSignalContext()
			return apiserver.Run(ctx, o, func(*restclient.Config) { announce(cmd, o) })
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}
