// Package networkpolicy enforces networking.k8s.io/v1 NetworkPolicies for
// the pods of one node with iptables: informers on Pods, Namespaces and
// NetworkPolicies feed one rate-limited, level-triggered sync that
// rewrites the filter table's SKIFF-NWPLCY chains in one
// iptables-restore --noflush. Only new connections are filtered;
// hostNetwork pods and traffic from the node itself are never affected.
package networkpolicy

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// Options tune Run.
type Options struct {
	// NodeName is this node's name: policies are enforced for the pods
	// whose spec.nodeName it is. Required.
	NodeName string
	// MinSyncPeriod is the least time between two syncs (changes within
	// it are applied together); 0: one second.
	MinSyncPeriod time.Duration
	// SyncPeriod is how often the rules are rewritten without a change,
	// which repairs rules that others removed; 0: 30 seconds.
	SyncPeriod time.Duration
	// MarkBit is the packet mark bit that tells "allowed" within the
	// chains; 0: 0x40000 (kube-proxy uses 0x4000 and 0x8000).
	MarkBit uint32
}

func (o *Options) defaults() error {
	if o.NodeName == "" {
		return errors.New("networkpolicy: Options.NodeName is required")
	}
	if o.MinSyncPeriod <= 0 {
		o.MinSyncPeriod = time.Second
	}
	if o.SyncPeriod <= 0 {
		o.SyncPeriod = 30 * time.Second
	}
	if o.MarkBit == 0 {
		o.MarkBit = 0x40000
	}
	if o.MarkBit&(o.MarkBit-1) != 0 {
		return fmt.Errorf("networkpolicy: MarkBit %#x is not a single bit", o.MarkBit)
	}
	return nil
}

// Run enforces the cluster's NetworkPolicies for opts.NodeName's pods
// until ctx ends, then returns nil and leaves the rules in place (a
// restarted agent takes them over; Cleanup removes them). It fails at
// start when iptables is missing or bridged traffic cannot be made to
// pass iptables.
func Run(ctx context.Context, client kubernetes.Interface, opts Options) error {
	if err := opts.defaults(); err != nil {
		return err
	}
	if client == nil {
		return errors.New("networkpolicy: no API client")
	}
	ipt, err := newIPTables()
	if err != nil {
		return fmt.Errorf("networkpolicy: %w", err)
	}
	if err := ensureBridgeNetfilter(); err != nil {
		return fmt.Errorf("networkpolicy: %w", err)
	}

	// Every pod of the cluster is a possible peer: keep only what is read.
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(func(obj any) (any, error) {
		if a, err := meta.Accessor(obj); err == nil {
			a.SetManagedFields(nil)
			a.SetAnnotations(nil)
		}
		return obj, nil
	}))
	pods := factory.Core().V1().Pods()
	namespaces := factory.Core().V1().Namespaces()
	policies := factory.Networking().V1().NetworkPolicies()
	trigger := make(chan struct{}, 1)
	kick := func() {
		select {
		case trigger <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { kick() },
		UpdateFunc: func(any, any) { kick() },
		DeleteFunc: func(any) { kick() },
	}
	for _, inf := range []cache.SharedIndexInformer{pods.Informer(), namespaces.Informer(), policies.Informer()} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return fmt.Errorf("networkpolicy: %w", err)
		}
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), pods.Informer().HasSynced, namespaces.Informer().HasSynced, policies.Informer().HasSynced) {
		return nil // ctx ended
	}
	klog.InfoS("NetworkPolicy enforcement started", "node", opts.NodeName)

	s := &syncer{ipt: ipt, opts: opts}
	state := func() (clusterState, error) {
		var st clusterState
		var err error
		if st.Pods, err = pods.Lister().List(labels.Everything()); err != nil {
			return st, err
		}
		if st.Namespaces, err = namespaces.Lister().List(labels.Everything()); err != nil {
			return st, err
		}
		st.Policies, err = policies.Lister().List(labels.Everything())
		return st, err
	}
	ticker := time.NewTicker(opts.SyncPeriod)
	defer ticker.Stop()
	var last time.Time
	failures := 0
	kick()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-trigger:
		case <-ticker.C:
		}
		if wait := opts.MinSyncPeriod - time.Since(last); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		select { // what came meanwhile is part of this sync
		case <-trigger:
		default:
		}
		last = time.Now()
		st, err := state()
		if err == nil {
			err = s.sync(st)
		}
		if err != nil {
			failures++
			backoff := min(opts.MinSyncPeriod*time.Duration(1<<min(failures, 6)), opts.SyncPeriod)
			klog.ErrorS(err, "NetworkPolicy sync failed, retrying", "after", backoff)
			time.AfterFunc(backoff, kick)
			continue
		}
		failures = 0
	}
}

type syncer struct {
	ipt  *iptablesRunner
	opts Options
	// lastSummary is what the last sync wrote; a change is logged.
	lastSummary string
}

func (s *syncer) sync(st clusterState) error {
	start := time.Now()
	if err := ensureBridgeNetfilter(); err != nil {
		return err
	}
	pods := computeRules(st, s.opts.NodeName)
	rs := render(pods, s.opts.MarkBit)
	if err := s.ipt.apply(rs); err != nil {
		return err
	}
	isolated := 0
	for _, p := range pods {
		if p.Ingress != nil || p.Egress != nil {
			isolated++
		}
	}
	summary := fmt.Sprintf("%d/%d/%d", len(pods), isolated, len(rs.chains))
	if summary != s.lastSummary {
		klog.InfoS("NetworkPolicy rules written", "localPods", len(pods), "isolatedPods", isolated, "chains", len(rs.chains), "took", time.Since(start))
		s.lastSummary = summary
	} else {
		klog.V(4).InfoS("NetworkPolicy rules written", "chains", len(rs.chains), "took", time.Since(start))
	}
	return nil
}

// Cleanup removes every chain and jump Run made (on this host's iptables
// as found on PATH). Nothing to remove is not an error.
func Cleanup() error {
	ipt, err := newIPTables()
	if err != nil {
		return fmt.Errorf("networkpolicy: %w", err)
	}
	return ipt.cleanup()
}

// bridgeSysctl makes bridged IPv4 frames traverse iptables, without which
// pods on one node's bridge talk past every rule. It is per network
// namespace, so it is set through the sysctl command on PATH.
const bridgeSysctl = "net.bridge.bridge-nf-call-iptables"

func ensureBridgeNetfilter() error {
	out, err := exec.Command("sysctl", "-n", bridgeSysctl).CombinedOutput()
	if err != nil {
		// The key exists once br_netfilter is loaded.
		if mout, merr := exec.Command("modprobe", "br_netfilter").CombinedOutput(); merr != nil {
			return fmt.Errorf("%s is unavailable (%s) and loading br_netfilter failed: %v %s",
				bridgeSysctl, strings.TrimSpace(string(out)), merr, strings.TrimSpace(string(mout)))
		}
		klog.InfoS("Loaded the br_netfilter kernel module so bridged pod traffic passes iptables")
		if out, err = exec.Command("sysctl", "-n", bridgeSysctl).CombinedOutput(); err != nil {
			return fmt.Errorf("%s after loading br_netfilter: %v %s", bridgeSysctl, err, strings.TrimSpace(string(out)))
		}
	}
	if strings.TrimSpace(string(out)) == "1" {
		return nil
	}
	if out, err := exec.Command("sysctl", "-qw", bridgeSysctl+"=1").CombinedOutput(); err != nil {
		return fmt.Errorf("setting %s=1: %v %s", bridgeSysctl, err, strings.TrimSpace(string(out)))
	}
	klog.InfoS("Set sysctl so traffic between pods on the node's bridge passes the NetworkPolicy rules", "sysctl", bridgeSysctl, "value", 1)
	return nil
}
