package proxy

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/validation/field"
	configv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	netutils "k8s.io/utils/net"
	"k8s.io/utils/ptr"
)

// Upstream's ports.
const (
	HealthzPort = 10256
	MetricsPort = 10249
)

var (
	scheme = runtime.NewScheme()
	codecs = serializer.NewCodecFactory(scheme, serializer.EnableStrict)
)

func init() {
	if err := configv1alpha1.AddToScheme(scheme); err != nil {
		panic(err) // a registration bug, at start
	}
}

// LoadConfig reads kube-proxy's --config file (KubeProxyConfiguration of
// kubeproxy.config.k8s.io/v1alpha1) strictly (unknown or duplicate fields
// are errors), defaults and validates it.
func LoadConfig(file string) (*configv1alpha1.KubeProxyConfiguration, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	obj, gvk, err := codecs.UniversalDeserializer().Decode(data, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	cfg, ok := obj.(*configv1alpha1.KubeProxyConfiguration)
	if !ok {
		return nil, fmt.Errorf("%s: not a KubeProxyConfiguration but %s", file, gvk)
	}
	SetDefaults(cfg)
	return cfg, nil
}

// DefaultConfig is the configuration without a file: upstream's defaults.
func DefaultConfig() *configv1alpha1.KubeProxyConfiguration {
	cfg := &configv1alpha1.KubeProxyConfiguration{}
	cfg.APIVersion = configv1alpha1.SchemeGroupVersion.String()
	cfg.Kind = "KubeProxyConfiguration"
	SetDefaults(cfg)
	return cfg
}

// SetDefaults sets upstream's v1alpha1 defaults of the fields skiff uses.
func SetDefaults(cfg *configv1alpha1.KubeProxyConfiguration) {
	if cfg.BindAddress == "" {
		cfg.BindAddress = "0.0.0.0"
	}
	healthzHost, metricsHost := "0.0.0.0", "127.0.0.1"
	if ip := netutils.ParseIPSloppy(cfg.BindAddress); ip != nil && ip.To4() == nil {
		healthzHost, metricsHost = "::", "::1"
	}
	cfg.HealthzBindAddress = withPort(cfg.HealthzBindAddress, healthzHost, HealthzPort)
	cfg.MetricsBindAddress = withPort(cfg.MetricsBindAddress, metricsHost, MetricsPort)
	if cfg.Mode == "" {
		cfg.Mode = ModeIPTables
	}
	if cfg.IPTables.SyncPeriod.Duration == 0 {
		cfg.IPTables.SyncPeriod = metav1.Duration{Duration: 30 * time.Second}
	}
	if cfg.IPTables.MinSyncPeriod.Duration == 0 {
		cfg.IPTables.MinSyncPeriod = metav1.Duration{Duration: time.Second}
	}
	if cfg.IPTables.LocalhostNodePorts == nil {
		cfg.IPTables.LocalhostNodePorts = ptr.To(true)
	}
	if cfg.IPTables.MasqueradeBit == nil {
		cfg.IPTables.MasqueradeBit = ptr.To[int32](14)
	}
	if cfg.NFTables.SyncPeriod.Duration == 0 {
		cfg.NFTables.SyncPeriod = metav1.Duration{Duration: 30 * time.Second}
	}
	if cfg.NFTables.MinSyncPeriod.Duration == 0 {
		cfg.NFTables.MinSyncPeriod = metav1.Duration{Duration: time.Second}
	}
	if cfg.NFTables.MasqueradeBit == nil {
		cfg.NFTables.MasqueradeBit = ptr.To[int32](14)
	}
	if cfg.IPVS.SyncPeriod.Duration == 0 {
		cfg.IPVS.SyncPeriod = metav1.Duration{Duration: 30 * time.Second}
	}
	if cfg.ConfigSyncPeriod.Duration == 0 {
		cfg.ConfigSyncPeriod.Duration = 15 * time.Minute
	}
	if cfg.ClientConnection.ContentType == "" {
		cfg.ClientConnection.ContentType = "application/vnd.kubernetes.protobuf"
	}
	if cfg.ClientConnection.QPS == 0 {
		cfg.ClientConnection.QPS = 5
	}
	if cfg.ClientConnection.Burst == 0 {
		cfg.ClientConnection.Burst = 10
	}
}

// withPort is addr with port when it has none; host:port when empty.
func withPort(addr, host string, port int) string {
	if addr == "" {
		return net.JoinHostPort(host, fmt.Sprint(port))
	}
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	if ip := netutils.ParseIPSloppy(addr); ip != nil {
		return net.JoinHostPort(addr, fmt.Sprint(port))
	}
	return addr
}

// Validate checks what skiff uses of cfg as upstream's validation does.
func Validate(cfg *configv1alpha1.KubeProxyConfiguration) field.ErrorList {
	var errs field.ErrorList
	root := field.NewPath("KubeProxyConfiguration")
	switch cfg.Mode {
	case ModeIPTables, ModeNFTables, ModeIPVS:
	default:
		errs = append(errs, field.NotSupported(root.Child("mode"), cfg.Mode, []string{string(ModeIPTables), string(ModeNFTables), string(ModeIPVS)}))
	}
	// The mode's own section (upstream validates the one in use).
	section, minSync, sync, bit := root.Child("iptables"), cfg.IPTables.MinSyncPeriod, cfg.IPTables.SyncPeriod, cfg.IPTables.MasqueradeBit
	if cfg.Mode == ModeNFTables {
		section, minSync, sync, bit = root.Child("nftables"), cfg.NFTables.MinSyncPeriod, cfg.NFTables.SyncPeriod, cfg.NFTables.MasqueradeBit
	}
	if minSync.Duration < 0 {
		errs = append(errs, field.Invalid(section.Child("minSyncPeriod"), minSync, "must be greater than or equal to 0"))
	}
	if sync.Duration <= 0 {
		errs = append(errs, field.Invalid(section.Child("syncPeriod"), sync, "must be greater than 0"))
	}
	if bit != nil && (*bit < 0 || *bit > 31) {
		errs = append(errs, field.Invalid(section.Child("masqueradeBit"), *bit, "must be within the range [0, 31]"))
	}
	if cfg.ConfigSyncPeriod.Duration <= 0 {
		errs = append(errs, field.Invalid(root.Child("configSyncPeriod"), cfg.ConfigSyncPeriod, "must be greater than 0"))
	}
	for _, a := range []struct {
		name, value string
	}{{"healthzBindAddress", cfg.HealthzBindAddress}, {"metricsBindAddress", cfg.MetricsBindAddress}} {
		if a.value == "" {
			continue // disabled
		}
		host, port, err := net.SplitHostPort(a.value)
		if err != nil || netutils.ParseIPSloppy(host) == nil || port == "" {
			errs = append(errs, field.Invalid(root.Child(a.name), a.value, "must be IP:port"))
		}
	}
	for i, c := range splitCIDRs(cfg.ClusterCIDR) {
		if _, _, err := netutils.ParseCIDRSloppy(c); err != nil {
			errs = append(errs, field.Invalid(root.Child("clusterCIDR").Index(i), c, "must be a valid CIDR block (e.g. 10.100.0.0/16)"))
		}
	}
	return errs
}

func splitCIDRs(s string) []string {
	var out []string
	for _, c := range strings.Split(s, ",") {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}
