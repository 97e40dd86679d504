// Package nftables is kube-proxy's nftables mode: the rules of every
// service port live in one table of skiff's own ("kube-proxy", in the ip
// family; ip6 is removed by Cleanup too), with upstream's layout: verdict
// maps (service-ips, service-nodeports, no-endpoint-services, ...)
// dispatch packets to per-service chains, so that after the first full
// sync each sync is one transaction of only what changed.
package nftables

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"sigs.k8s.io/knftables"
)

// TableName is the nftables table the proxy owns (in each family).
const TableName = "kube-proxy"

// minKernel is upstream's lowest kernel for the nftables mode (5.13: it
// implies an nft that older host tools do not choke on).
var minKernel = [2]int{5, 13}

// New returns the nft interface of table kube-proxy in the ip family; it
// fails clearly when nft is missing or the kernel refuses a table.
func New() (knftables.Interface, error) {
	if _, err := exec.LookPath("nft"); err != nil {
		return nil, errors.New("proxy mode nftables needs the nft command (Debian package nftables), not found on PATH")
	}
	nft, err := knftables.New(knftables.IPv4Family, TableName)
	if err != nil {
		return nil, fmt.Errorf("proxy mode nftables: this kernel or nft does not accept an nftables table (needs nf_tables, CAP_NET_ADMIN): %w", err)
	}
	return nft, nil
}

// Check tells whether the nftables mode can run here: nft present, a
// table accepted by the kernel (checked, not made), the kernel new enough.
func Check() error {
	if _, err := New(); err != nil {
		return err
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		release := unix.ByteSliceToString(u.Release[:])
		if major, minor, ok := kernelVersion(release); ok && (major < minKernel[0] || major == minKernel[0] && minor < minKernel[1]) {
			return fmt.Errorf("proxy mode nftables needs kernel %d.%d or later, this one is %s", minKernel[0], minKernel[1], release)
		}
	}
	return nil
}

// kernelVersion parses "6.18.0-foo" into 6, 18.
func kernelVersion(release string) (major, minor int, ok bool) {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	return major, minor, err1 == nil && err2 == nil
}

// Cleanup deletes the kube-proxy tables of both families. Without nft
// there is nothing of ours to remove.
func Cleanup(ctx context.Context) error {
	if _, err := exec.LookPath("nft"); err != nil {
		return nil
	}
	var errs []error
	for _, family := range []knftables.Family{knftables.IPv4Family, knftables.IPv6Family} {
		nft, err := knftables.New(family, TableName)
		if err != nil {
			// A family the kernel lacks holds no table of ours.
			continue
		}
		if err := cleanupTable(ctx, nft); err != nil {
			errs = append(errs, fmt.Errorf("deleting table %s %s: %w", family, TableName, err))
		}
	}
	return errors.Join(errs...)
}

func cleanupTable(ctx context.Context, nft knftables.Interface) error {
	tx := nft.NewTransaction()
	tx.Delete(&knftables.Table{})
	if err := nft.Run(ctx, tx); err != nil && !knftables.IsNotFound(err) {
		return err
	}
	return nil
}

// Upstream's nftables-only metrics.
var (
	syncFailuresTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      "kubeproxy",
		Name:           "sync_proxy_rules_nftables_sync_failures_total",
		Help:           "Cumulative proxy nftables sync failures",
		StabilityLevel: metrics.ALPHA,
	}, []string{"ip_family"})
	cleanupFailuresTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Subsystem:      "kubeproxy",
		Name:           "sync_proxy_rules_nftables_cleanup_failures_total",
		Help:           "Cumulative proxy nftables cleanup failures",
		StabilityLevel: metrics.ALPHA,
	}, []string{"ip_family"})
	registerOnce sync.Once
)

func registerMetrics() {
	registerOnce.Do(func() { legacyregistry.MustRegister(syncFailuresTotal, cleanupFailuresTotal) })
}
