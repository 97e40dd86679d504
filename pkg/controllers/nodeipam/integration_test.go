package nodeipam_test

// Against a real skiff API server (apiserver.Run on its embedded etcd), the
// controllers as skiff runs them (controllers.Run, each controller as its
// ServiceAccount, so the node-controller role is exercised too).

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/pkg/controllers"
	"github.com/skiff-dev/skiff/pkg/controllers/nodeipam"
	"github.com/skiff-dev/skiff/test/integration"
)

// startServer runs the API server until the test ends; its log's tail
// is shown if the test fails.
func startServer(t *testing.T) *restclient.Config {
	return integration.StartAPIServer(t, integration.ServerOptions{})
}

// runControllers runs the controllers until the returned stop is called.
func runControllers(t *testing.T, cfg *restclient.Config) (stop func()) {
	t.Helper()
	ipam, err := nodeipam.ParseConfig("10.244.0.0/16", 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return integration.StartControllers(t, cfg, controllers.Options{UseServiceAccountCredentials: true,
		AllocateNodeCIDRs: true, ClusterCIDRs: ipam.ClusterCIDRs, NodeCIDRMaskSizes: ipam.NodeMaskSizes})
}

func createNode(t *testing.T, cs kubernetes.Interface, name string, cidrs ...string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if len(cidrs) > 0 {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = cidrs[0], cidrs
	}
	if _, err := cs.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
		t.Errorf("creating node %s: %v", name, err)
	}
}

// waitCIDRs waits for the Nodes to have podCIDRs and returns them by name.
func waitCIDRs(t *testing.T, cs kubernetes.Interface, names ...string) map[string]string {
	t.Helper()
	got := map[string]string{}
	deadline := time.Now().Add(30 * time.Second)
	for _, name := range names {
		for {
			n, err := cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
			if err == nil && len(n.Spec.PodCIDRs) > 0 {
				if len(n.Spec.PodCIDRs) != 1 || n.Spec.PodCIDR != n.Spec.PodCIDRs[0] {
					t.Errorf("%s: podCIDR %q podCIDRs %v", name, n.Spec.PodCIDR, n.Spec.PodCIDRs)
				}
				got[name] = n.Spec.PodCIDRs[0]
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s has no podCIDRs after 30s (%v)", name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return got
}

// checkAll: every Node's podCIDR is a distinct /24 of 10.244.0.0/16 (but
// those in except, set by hand); it returns them by name.
func checkAll(t *testing.T, cs kubernetes.Interface, except ...string) map[string]string {
	t.Helper()
	_, cluster, _ := net.ParseCIDR("10.244.0.0/16")
	list, err := cs.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]string{}
	owner := map[string]string{}
	for _, n := range list.Items {
		if len(n.Spec.PodCIDRs) == 0 {
			continue
		}
		c := n.Spec.PodCIDRs[0]
		all[n.Name] = c
		if o, dup := owner[c]; dup {
			t.Errorf("%s handed out twice: to %s and %s", c, o, n.Name)
		}
		owner[c] = n.Name
		ip, cidr, err := net.ParseCIDR(c)
		if err != nil {
			t.Errorf("%s: %v", n.Name, err)
			continue
		}
		if ones, _ := cidr.Mask.Size(); !cluster.Contains(ip) || ones != 24 {
			if !contains(except, n.Name) {
				t.Errorf("%s: %s is not a /24 of %s", n.Name, c, cluster)
			}
		}
	}
	return all
}

func contains(s []string, x string) bool {
	for _, e := range s {
		if e == x {
			return true
		}
	}
	return false
}

func TestNodeIPAMAgainstAPIServer(t *testing.T) {
	cfg := startServer(t)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop := runControllers(t, cfg)

	// Created at once, they get distinct CIDRs within seconds.
	start := time.Now()
	var wg sync.WaitGroup
	for _, name := range []string{"node-1", "node-2", "node-3"} {
		wg.Go(func() { createNode(t, cs, name) })
	}
	// One with its own podCIDR, inside the range, and one outside it.
	createNode(t, cs, "own", "10.244.0.0/24")
	createNode(t, cs, "outside", "192.168.7.0/24")
	wg.Wait()
	first := waitCIDRs(t, cs, "node-1", "node-2", "node-3")
	t.Logf("three nodes allocated in %s: %v", time.Since(start), first)
	checkAll(t, cs, "outside")
	for _, c := range first {
		if c == "10.244.0.0/24" {
			t.Errorf("own's CIDR handed out again: %v", first)
		}
	}

	// A Node deleted frees its CIDR; the next Node gets one not in use.
	if err := cs.CoreV1().Nodes().Delete(context.Background(), "node-2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	createNode(t, cs, "node-4")
	waitCIDRs(t, cs, "node-4")
	checkAll(t, cs, "outside")

	// A restart: Nodes created meanwhile, and after, get free CIDRs; the
	// others keep theirs.
	stop()
	before := checkAll(t, cs, "outside")
	createNode(t, cs, "node-5")
	runControllers(t, cfg)
	createNode(t, cs, "node-6")
	waitCIDRs(t, cs, "node-5", "node-6")
	after := checkAll(t, cs, "outside")
	for name, c := range before {
		if after[name] != c {
			t.Errorf("%s: podCIDR %s changed to %s", name, c, after[name])
		}
	}
	if after["own"] != "10.244.0.0/24" || after["outside"] != "192.168.7.0/24" {
		t.Errorf("podCIDRs set by hand changed: %v", after)
	}

	// The Node with a podCIDR outside the range is reported.
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs, err := cs.CoreV1().Events(metav1.NamespaceDefault).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=outside,reason=" + nodeipam.ReasonPodCIDRNotAllocated})
		if err == nil && len(evs.Items) > 0 {
			if e := evs.Items[0]; e.Reason != nodeipam.ReasonPodCIDRNotAllocated || e.Type != corev1.EventTypeWarning || e.Source.Component != "cidrAllocator" {
				t.Errorf("event %s %s from %v: %s", e.Type, e.Reason, e.Source, e.Message)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event for the node outside the range (%v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
