package app

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/pkg/apiserver/options"
	"github.com/skiff-dev/skiff/pkg/images"
	"github.com/skiff-dev/skiff/pkg/images/builtin"
)

func newImagesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images",
		Short: "Build and import the images a node needs without a registry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newImagesImportCommand(), newImagesBuildCommand())
	return cmd
}

func newImagesImportCommand() *cobra.Command {
	dataDir := options.DefaultDataDir()
	var endpoint string
	cmd := &cobra.Command{
		Use:   "import FILE.tar [FILE.tar...]",
		Short: "Import OCI or docker image archives into the node's containerd (namespace k8s.io)",
		Long: `Import image archives (as written by skiff images build, skopeo copy oci-archive:,
ctr images export or docker save) into the k8s.io namespace of containerd, so
that pods find them with imagePullPolicy IfNotPresent. Without
--container-runtime-endpoint it is the containerd that skiff server starts,
<data-dir>/agent/containerd/containerd.sock.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			address := endpoint
			if address == "" {
				address = filepath.Join(dataDir, "agent", "containerd", "containerd.sock")
			}
			for _, f := range files {
				if err := images.Import(cmd.Context(), address, f); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "imported %s\n", f)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", dataDir, "The data directory of the skiff server whose containerd to import into.")
	cmd.Flags().StringVar(&endpoint, "container-runtime-endpoint", "", "The containerd socket (unix path or unix:// URL). Empty: <data-dir>/agent/containerd/containerd.sock.")
	return cmd
}

func newImagesBuildCommand() *cobra.Command {
	var output, pauseBinary, busyboxBinary string
	cmd := &cobra.Command{
		Use:   "build --pause-binary PATH [--output DIR]",
		Short: "Write the pause and busybox image archives built from host files",
		Long: fmt.Sprintf(`Write OCI image archives of %s (from a static pause
binary, cmd/pause) and %s (from a static
busybox, Debian's busybox-static) into --output as %s and %s.
The same inputs give the same image digests.`, builtin.PauseImage, builtin.BusyboxImage, builtin.PauseArchive, builtin.BusyboxArchive),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pauseBinary == "" {
				return fmt.Errorf("--pause-binary is required (CGO_ENABLED=0 go build -ldflags \"-s -w\" ./cmd/pause)")
			}
			files, err := builtin.Build(cmd.Context(), output, pauseBinary, busyboxBinary)
			if err != nil {
				return err
			}
			for _, f := range files {
				fmt.Fprintln(cmd.OutOrStdout(), f)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", ".", "Directory to write the archives to.")
	cmd.Flags().StringVar(&pauseBinary, "pause-binary", "", "The static pause binary.")
	cmd.Flags().StringVar(&busyboxBinary, "busybox-binary", builtin.DefaultBusyboxBinary, "The static busybox binary.")
	return cmd
}
