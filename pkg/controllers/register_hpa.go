package controllers

import (
	"github.com/spf13/pflag"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/scale"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/skiff-dev/skiff/pkg/controllers/podautoscaler"
)

// hpaConfig holds the --horizontal-pod-autoscaler-* flags.
var hpaConfig = podautoscaler.DefaultConfig()

// The horizontal pod autoscaler, with upstream's flags.
func init() {
	register(Descriptor{Name: "horizontal-pod-autoscaler-controller", Identity: podautoscaler.Name,
		Concurrency: &ConcurrencyFlag{Flag: "concurrent-horizontal-pod-autoscaler-syncs", Default: 5,
			Usage: "The number of horizontal pod autoscaler objects that are allowed to sync concurrently. Larger number = more responsive horizontal pod autoscaler objects processing, but more CPU (and network) load."},
		AddFlags: func(fs *pflag.FlagSet) {
			c := &hpaConfig
			fs.DurationVar(&c.SyncPeriod, "horizontal-pod-autoscaler-sync-period", c.SyncPeriod, "The period for syncing the number of pods in horizontal pod autoscaler.")
			fs.DurationVar(&c.DownscaleStabilization, "horizontal-pod-autoscaler-downscale-stabilization", c.DownscaleStabilization, "The period for which autoscaler will look backwards and not scale down below any recommendation it made during that period.")
			fs.Float64Var(&c.Tolerance, "horizontal-pod-autoscaler-tolerance", c.Tolerance, "The minimum change (from 1.0) in the desired-to-actual metrics ratio for the horizontal pod autoscaler to consider scaling.")
			fs.DurationVar(&c.CPUInitializationPeriod, "horizontal-pod-autoscaler-cpu-initialization-period", c.CPUInitializationPeriod, "The period after pod start when CPU samples might be skipped.")
			fs.DurationVar(&c.InitialReadinessDelay, "horizontal-pod-autoscaler-initial-readiness-delay", c.InitialReadinessDelay, "The period after pod start during which readiness changes will be treated as initial readiness.")
		},
		ValidateFlags: func() []error { return hpaConfig.Validate() },
		Setup: func(mgr manager.Manager, c *Clients, opts Options) error {
			disco, err := discovery.NewDiscoveryClientForConfig(c.Config)
			if err != nil {
				return err
			}
			scales, err := scale.NewForConfig(c.Config, mgr.GetRESTMapper(), dynamic.LegacyAPIPathResolverFunc, scale.NewDiscoveryScaleKindResolver(disco))
			if err != nil {
				return err
			}
			metrics, err := metricsclient.NewForConfig(c.Config)
			if err != nil {
				return err
			}
			return (&podautoscaler.Reconciler{Client: c.Client, Core: c.Core, Scales: scales, Mapper: mgr.GetRESTMapper(),
				Metrics: podautoscaler.RESTMetricsClient{Client: metrics.MetricsV1beta1()}, Recorder: eventRecorder(mgr, c.Core, podautoscaler.Name),
				Config: hpaConfig, Workers: opts.Workers("horizontal-pod-autoscaler-controller", 5)}).SetupWithManager(mgr)
		}})
}
