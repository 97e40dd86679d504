package app

import (
	"context"

	"github.com/spf13/cobra"
	genericapiserver "k8s.io/apiserver/pkg/server"
	restclient "k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/pkg/apiserver"
	"github.com/skiff-dev/skiff/pkg/apiserver/options"
	"github.com/skiff-dev/skiff/pkg/component"
)

func newAPIServerCommand() *cobra.Command {
	o := options.NewOptions()
	cmd := &cobra.Command{
		Use:   "apiserver",
		Short: "Run the API server alone, without controllers (run `skiff controller-manager` beside it)",
		Long: `Run the Kubernetes API server of skiff server, with the same flags and data
directory, but no controllers: namespaces get no default ServiceAccount, CSRs
are not signed, ... until a skiff controller-manager runs against it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logWatchClosings(cmd)
			return component.Run(genericapiserver.SetupSignalContext(), apiServer(o), func() { announce(cmd, o) })
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// apiServer is the API server of o as the first component of a process.
func apiServer(o *options.Options) component.APIServer {
	return component.APIServerFunc(func(ctx context.Context, ready func(*restclient.Config)) error {
		return apiserver.Run(ctx, o, ready)
	})
}
