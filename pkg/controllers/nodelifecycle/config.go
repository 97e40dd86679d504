package nodelifecycle

import (
	"fmt"
	"time"
)

// Config is kube-controller-manager's node lifecycle settings, with its
// flag names.
type Config struct {
	// MonitorPeriod (--node-monitor-period) is how often the nodes' health
	// is checked.
	MonitorPeriod time.Duration
	// StartupGracePeriod (--node-startup-grace-period) is how long a node
	// that never posted its status may stay silent.
	StartupGracePeriod time.Duration
	// MonitorGracePeriod (--node-monitor-grace-period) is how long a node
	// may renew neither its Lease nor its status before it is Unknown.
	MonitorGracePeriod time.Duration
	// EvictionRate (--node-eviction-rate) is how many nodes per second get
	// their NoExecute taint in a healthy zone; SecondaryEvictionRate
	// (--secondary-node-eviction-rate) in an unhealthy one of more than
	// LargeClusterSizeThreshold (--large-cluster-size-threshold) nodes
	// (0 in a smaller one).
	EvictionRate              float32
	SecondaryEvictionRate     float32
	LargeClusterSizeThreshold int32
	// UnhealthyZoneThreshold (--unhealthy-zone-threshold) is the fraction
	// of nodes not Ready (at least 3) from which a zone is unhealthy.
	UnhealthyZoneThreshold float32
}

// DefaultConfig is upstream's defaults.
func DefaultConfig() Config {
	return Config{
		MonitorPeriod:             5 * time.Second,
		StartupGracePeriod:        time.Minute,
		MonitorGracePeriod:        50 * time.Second,
		EvictionRate:              0.1,
		SecondaryEvictionRate:     0.01,
		LargeClusterSizeThreshold: 50,
		UnhealthyZoneThreshold:    0.55,
	}
}

// Validate refuses what cannot work: periods that are not positive,
// negative rates and sizes, and a threshold that is not a fraction; one
// error per flag.
func (c Config) Validate() []error {
	var errs []error
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--node-monitor-period", c.MonitorPeriod}, {"--node-startup-grace-period", c.StartupGracePeriod}, {"--node-monitor-grace-period", c.MonitorGracePeriod}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %s", d.flag, d.v))
		}
	}
	for _, r := range []struct {
		flag string
		v    float32
	}{{"--node-eviction-rate", c.EvictionRate}, {"--secondary-node-eviction-rate", c.SecondaryEvictionRate}} {
		if r.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %g", r.flag, r.v))
		}
	}
	if c.LargeClusterSizeThreshold < 0 {
		errs = append(errs, fmt.Errorf("--large-cluster-size-threshold must not be negative, got %d", c.LargeClusterSizeThreshold))
	}
	if c.UnhealthyZoneThreshold < 0 || c.UnhealthyZoneThreshold > 1 {
		errs = append(errs, fmt.Errorf("--unhealthy-zone-threshold must be between 0 and 1, got %g", c.UnhealthyZoneThreshold))
	}
	return errs
}
