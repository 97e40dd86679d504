package controllers

import (
	"fmt"
	"path/filepath"

	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/skiff-dev/skiff/pkg/controllers/ephemeralvolume"
	"github.com/skiff-dev/skiff/pkg/controllers/localpath"
	"github.com/skiff-dev/skiff/pkg/controllers/persistentvolume"
	"github.com/skiff-dev/skiff/pkg/controllers/persistentvolume/expand"
	"github.com/skiff-dev/skiff/pkg/controllers/pvcprotection"
	"github.com/skiff-dev/skiff/pkg/controllers/pvprotection"
)

// The storage controllers, as upstream's (the PV binder, the expander's
// plugin-less part and the protection controllers with one worker per
// loop, as upstream runs them), and
// skiff's local-path provisioner with the default StorageClass it serves
// (k3s's local-storage; --controllers=-local-path-provisioner-controller
// leaves both out, as k3s's --disable=local-storage).
func init() {
	register(Descriptor{Name: persistentvolume.Name, Identity: "persistent-volume-binder",
		Setup: func(mgr manager.Manager, c *Clients, _ Options) error {
			return (&persistentvolume.Controller{Client: c.Client, Core: c.Core,
				Recorder: eventRecorder(mgr, c.Core, persistentvolume.Component)}).SetupWithManager(mgr)
		}})
	register(Descriptor{Name: expand.Name, Identity: "expand-controller",
		Setup: func(mgr manager.Manager, c *Clients, _ Options) error {
			return (&expand.Reconciler{Client: c.Client, Recorder: eventRecorder(mgr, c.Core, expand.Component)}).SetupWithManager(mgr)
		}})
	register(Descriptor{Name: pvprotection.Name, Identity: "pv-protection-controller",
		Setup: func(mgr manager.Manager, c *Clients, _ Options) error {
			return (&pvprotection.Reconciler{Client: c.Client, Core: c.Core}).SetupWithManager(mgr)
		}})
	register(Descriptor{Name: pvcprotection.Name, Identity: "pvc-protection-controller",
		Setup: func(mgr manager.Manager, c *Clients, _ Options) error {
			return (&pvcprotection.Reconciler{Client: c.Client, Core: c.Core}).SetupWithManager(mgr)
		}})
	register(Descriptor{Name: ephemeralvolume.Name, Identity: "ephemeral-volume-controller",
		Concurrency: &ConcurrencyFlag{Flag: "concurrent-ephemeralvolume-syncs", Default: ephemeralvolume.DefaultWorkers,
			Usage: "The number of ephemeral volume syncing operations that will be done concurrently. Larger number = faster ephemeral volume updating, but more CPU (and network) load"},
		Setup: func(mgr manager.Manager, c *Clients, opts Options) error {
			return (&ephemeralvolume.Reconciler{Client: c.Client, Core: c.Core,
				Recorder: eventRecorder(mgr, c.Core, ephemeralvolume.Component),
				Workers:  opts.Workers(ephemeralvolume.Name, ephemeralvolume.DefaultWorkers)}).SetupWithManager(mgr)
		}})
	register(Descriptor{Name: localpath.Name, Identity: "local-path-provisioner",
		Setup: func(mgr manager.Manager, c *Clients, opts Options) error {
			path, err := localPathBase(opts.DataDir)
			if err != nil {
				return err
			}
			return (&localpath.Reconciler{Client: c.Client, Core: c.Core, Path: path,
				Recorder: eventRecorder(mgr, c.Core, localpath.Provisioner)}).SetupWithManager(mgr)
		}})
}

// localPathBase is <dataDir>/storage, absolute ("" without a data dir:
// the provisioner's default).
func localPathBase(dataDir string) (string, error) {
	if dataDir == "" {
		return "", nil
	}
	abs, err := filepath.Abs(filepath.Join(dataDir, "storage"))
	if err != nil {
		return "", fmt.Errorf("the local-path provisioner's directory: %w", err)
	}
	return abs, nil
}
