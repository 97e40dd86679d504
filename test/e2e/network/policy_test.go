package network

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	policyNS    = nsPrefix + "np"
	friendsNS   = nsPrefix + "np-friends"
	strangersNS = nsPrefix + "np-strangers"
)

// policyClient is a pod that connects to the target.
type policyClient struct {
	ns, name string
	ip       string
}

// TestNetworkPolicy: the agents enforce NetworkPolicies on pod-to-pod
// traffic, across hosts and on one host: a default deny blocks every
// client; allow rules by podSelector, by namespaceSelector and by port
// each open exactly what they name.
func TestNetworkPolicy(t *testing.T) {
	skipIfNotWired(t)
	c := requireCluster(t)
	a, b := c.hosts[0].name, c.hosts[1].name
	c.namespace(t, policyNS, map[string]string{"team": "us"})
	c.namespace(t, friendsNS, map[string]string{"team": "friends"})
	c.namespace(t, strangersNS, nil)
	c.startPods(t, policyNS, echoPod("target", a, map[string]string{"app": "target"}),
		clientPod("client", b, map[string]string{"role": "client"}),
		clientPod("other", b, nil),
		clientPod("neighbour", a, nil))
	c.startPods(t, friendsNS, clientPod("friend", b, nil))
	c.startPods(t, strangersNS, clientPod("stranger", b, nil))
	target := c.waitPodReady(t, policyNS, "target", 90*time.Second)
	var clients []*policyClient
	for _, p := range [][2]string{{policyNS, "client"}, {policyNS, "other"}, {policyNS, "neighbour"}, {friendsNS, "friend"}, {strangersNS, "stranger"}} {
		pod := c.waitPodReady(t, p[0], p[1], 90*time.Second)
		clients = append(clients, &policyClient{ns: p[0], name: p[1], ip: pod.Status.PodIP})
	}
	sort.Slice(clients, func(i, j int) bool { return clients[i].name < clients[j].name })
	// The connections each client makes, and whether each may pass.
	matrix := func(t *testing.T, open map[string][2]bool) {
		t.Helper()
		eventually(t, 25*time.Second, func() string { return c.checkMatrix(target, clients, open) })
	}
	all := func(v [2]bool) map[string][2]bool {
		m := map[string][2]bool{}
		for _, cl := range clients {
			m[cl.name] = v
		}
		return m
	}

	subtest(t, "NoPolicyAllOpen", func(t *testing.T) {
		matrix(t, all([2]bool{true, true}))
	})
	policies := c.admin.NetworkingV1().NetworkPolicies(policyNS)
	ctx := context.Background()
	apply := func(t *testing.T, p *networkingv1.NetworkPolicy) {
		t.Helper()
		if _, err := policies.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	selectTarget := metav1.LabelSelector{MatchLabels: map[string]string{"app": "target"}}
	ingress := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}

	subtest(t, "DefaultDenyBlocks", func(t *testing.T) {
		apply(t, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default-deny"},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{}, PolicyTypes: ingress}})
		matrix(t, all([2]bool{false, false}))
	})
	subtest(t, "AllowByPodSelector", func(t *testing.T) {
		apply(t, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "allow-clients"},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: selectTarget, PolicyTypes: ingress,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{
					PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "client"}}}}}}}})
		open := all([2]bool{false, false})
		open["client"] = [2]bool{true, true}
		matrix(t, open)
	})
	subtest(t, "AllowByNamespaceSelector", func(t *testing.T) {
		apply(t, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "allow-friends"},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: selectTarget, PolicyTypes: ingress,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "friends"}}}}}}}})
		open := all([2]bool{false, false})
		open["client"] = [2]bool{true, true}
		open["friend"] = [2]bool{true, true}
		matrix(t, open)
	})
	subtest(t, "AllowByPort", func(t *testing.T) {
		alt := intstr.FromInt32(8081)
		tcp := corev1.ProtocolTCP
		apply(t, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "allow-8081"},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: selectTarget, PolicyTypes: ingress,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &alt}}}}}})
		open := all([2]bool{false, true})
		open["client"] = [2]bool{true, true}
		open["friend"] = [2]bool{true, true}
		matrix(t, open)
	})
}

var policyPorts = [2]int{8080, 8081}

// checkMatrix connects from every client to the target's ports 8080 and
// 8081 (by pod IP, all at once) and reports each connection that does not
// do what open says; an open one must also show the client's own pod IP
// to the target (the selectors match on it).
func (c *cluster) checkMatrix(target *corev1.Pod, clients []*policyClient, open map[string][2]bool) string {
	var mu sync.Mutex
	var problems []string
	var fns []func()
	for _, cl := range clients {
		fns = append(fns, func() {
			script := fmt.Sprintf(getWho+`for p in %d %d; do (echo "$p $(getwho %s $p 2)") & done; wait`,
				policyPorts[0], policyPorts[1], target.Status.PodIP)
			r, problem := c.sh(cl.ns, cl.name, script)
			mu.Lock()
			defer mu.Unlock()
			if problem != "" {
				problems = append(problems, problem)
				return
			}
			got := map[string]string{}
			for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
				port, answer, _ := strings.Cut(line, " ")
				got[port] = answer
			}
			for i, port := range policyPorts {
				answer := got[fmt.Sprint(port)]
				want := "target " + cl.ip
				switch {
				case open[cl.name][i] && answer != want:
					problems = append(problems, fmt.Sprintf("%s/%s (%s) -> target:%d: %q, want it open (%q)", cl.ns, cl.name, cl.ip, port, answer, want))
				case !open[cl.name][i] && strings.HasPrefix(answer, "target "):
					problems = append(problems, fmt.Sprintf("%s/%s (%s) -> target:%d: answered %q, want it blocked", cl.ns, cl.name, cl.ip, port, answer))
				}
			}
		})
	}
	parallel(fns...)
	sort.Strings(problems)
	return strings.Join(problems, "\n")
}
