package app

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	genericapiserver "k8s.io/apiserver/pkg/server"
	restclient "k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/skiff-dev/skiff/pkg/apiserver"
	"github.com/skiff-dev/skiff/pkg/controllers"
)

func newServerCommand() *cobra.Command {
	o := apiserver.NewOptions()
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the all-in-one control plane (API server on embedded or external etcd, controllers)",
		Long: `Run the all-in-one control plane. Without --etcd-servers it runs an embedded
etcd with its data in <data-dir>/etcd. On first start it creates a CA, serving
certificates and <data-dir>/admin.kubeconfig; when ready it prints how to use it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := genericapiserver.SetupSignalContext()
			return apiserver.Run(ctx, o, func(loopback *restclient.Config) {
				go func() {
					// The CA that pods use to verify the apiserver.
					rootCA, err := os.ReadFile(filepath.Join(o.PKIDir(), "ca.crt"))
					if err != nil {
						klog.ErrorS(err, "Reading the cluster CA; kube-root-ca.crt is not published")
					}
					if err := controllers.Run(ctx, loopback, controllers.Options{RootCA: rootCA}); err != nil {
						klog.ErrorS(err, "Controllers stopped")
					}
				}()
				fmt.Fprintf(cmd.OutOrStdout(), "skiff is ready; to use it: export KUBECONFIG=%s\n", o.AdminKubeconfig())
			})
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}
