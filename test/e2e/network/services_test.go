package network

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// services is TestServices' workload: three echo pods on host b, one on
// host a behind a Local NodePort, and a client pod on each host.
type services struct {
	c    *cluster
	ns   string
	pods map[string]*corev1.Pod
	// Services by name.
	svc map[string]*corev1.Service
}

const svcNS = nsPrefix + "svc"

// TestServices: Services work from pods and from outside the cluster, with
// the agents' proxy in iptables mode and then in nftables mode.
func TestServices(t *testing.T) {
	skipIfNotWired(t)
	c := requireCluster(t)
	s := &services{c: c, ns: svcNS, svc: map[string]*corev1.Service{}}
	c.namespace(t, s.ns, nil)
	a, b := c.hosts[0].name, c.hosts[1].name
	echo := map[string]string{"app": "echo"}
	s.pods = c.createPods(t, s.ns,
		echoPod("echo-0", b, echo), echoPod("echo-1", b, echo), echoPod("echo-2", b, echo),
		echoPod("local-a", a, map[string]string{"app": "local"}),
		clientPod("client-a", a, nil), clientPod("client-b", b, nil))
	port := []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}
	for _, svc := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "echo"}, Spec: corev1.ServiceSpec{Selector: echo, Ports: port}},
		{ObjectMeta: metav1.ObjectMeta{Name: "echo-sticky"}, Spec: corev1.ServiceSpec{Selector: echo, Ports: port,
			SessionAffinity: corev1.ServiceAffinityClientIP}},
		{ObjectMeta: metav1.ObjectMeta{Name: "echo-np"}, Spec: corev1.ServiceSpec{Selector: echo, Ports: port,
			Type: corev1.ServiceTypeNodePort}},
		{ObjectMeta: metav1.ObjectMeta{Name: "local-np"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "local"}, Ports: port,
			Type: corev1.ServiceTypeNodePort, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal}},
	} {
		want := 3
		if svc.Name == "local-np" {
			want = 1
		}
		s.svc[svc.Name] = c.createService(t, s.ns, svc, want)
	}
	s.svc["nothing"] = c.createService(t, s.ns, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "nothing"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "nothing"}, Ports: port}}, 0)

	for _, mode := range []string{"iptables", "nftables"} {
		subtest(t, mode, func(t *testing.T) {
			if mode == "nftables" {
				if _, err := exec.LookPath("nft"); err != nil {
					t.Skip("nft is not installed (apt-get install nftables): the proxy's nftables mode needs it")
				}
			}
			if c.setProxyMode(t, mode) {
				s.checkPodsKept(t)
				subtest(t, "OtherModesRulesRemoved", s.testOtherModesRulesRemoved)
			}
			// Checks of the mode's rules are only worth as much as the
			// rules being the mode's.
			if !subtest(t, "RulesOfTheMode", s.testRulesOfMode) {
				t.FailNow()
			}
			s.waitProxying(t)
			subtest(t, "ClusterIPFromOtherNodeSpreads", s.testClusterIPSpread)
			subtest(t, "NodePortOnBothNodes", s.testNodePort)
			subtest(t, "SessionAffinityClientIP", s.testSessionAffinity)
			subtest(t, "NoEndpointsRejects", s.testNoEndpoints)
			subtest(t, "ExternalTrafficPolicyLocalKeepsClientIP", s.testLocalPolicy)
		})
	}
}

// testRulesOfMode: each host's rules are the mode's, none of the other
// mode's (upstream kube-proxy removes the iptables mode's rules when it
// starts in nftables mode).
func (s *services) testRulesOfMode(t *testing.T) {
	for _, h := range s.c.hosts {
		eventually(t, 30*time.Second, func() string { return rulesOfMode(h, s.c.mode) })
	}
}

// testOtherModesRulesRemoved: the proxy started in nftables mode removes
// the rules the iptables mode left, as upstream's kube-proxy does at start
// (platformCleanup).
func (s *services) testOtherModesRulesRemoved(t *testing.T) {
	for _, h := range s.c.hosts {
		eventually(t, 20*time.Second, func() string {
			save, err := inHost(h, "iptables-save")
			if err != nil {
				return fmt.Sprintf("iptables-save in %s: %v: %s", h.name, err, save)
			}
			if chains := iptablesProxyChains(save); len(chains) > 0 {
				return fmt.Sprintf("%s in %s mode still has the iptables mode's chains %v (upstream's kube-proxy removes them when it starts in nftables mode)",
					h.name, s.c.mode, chains)
			}
			return ""
		})
	}
}

// iptablesProxyChains are the iptables mode's chains (KUBE-*) in an
// iptables-save, by table ("nat/KUBE-SERVICES").
func iptablesProxyChains(save string) []string {
	var chains []string
	table := ""
	for _, line := range strings.Split(save, "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":KUBE-"):
			chains = append(chains, table+"/"+strings.Fields(line[1:])[0])
		}
	}
	return chains
}

// rulesOfMode reports what in h's rules is not as its proxy's mode says.
func rulesOfMode(h *host, mode string) string {
	save, err := inHost(h, "iptables-save", "-t", "nat")
	if err != nil {
		return fmt.Sprintf("iptables-save in %s: %v: %s", h.name, err, save)
	}
	hasIPTables := strings.Contains(save, ":KUBE-SERVICES") || strings.Contains(save, "KUBE-SVC-")
	nft, nftErr := "", error(nil)
	if _, err := exec.LookPath("nft"); err == nil {
		nft, nftErr = inHost(h, "nft", "list", "table", "ip", "kube-proxy")
	}
	hasNFT := nftErr == nil && strings.Contains(nft, "chain services")
	switch mode {
	case "iptables":
		if !hasIPTables {
			return fmt.Sprintf("%s in iptables mode: no KUBE-SERVICES chain in its nat table:\n%s", h.name, save)
		}
		if hasNFT {
			return fmt.Sprintf("%s in iptables mode still has the nftables mode's table ip kube-proxy", h.name)
		}
	case "nftables":
		if !hasNFT {
			return fmt.Sprintf("%s in nftables mode: no services chain in table ip kube-proxy: %v\n%s", h.name, nftErr, nft)
		}
		if hasIPTables {
			return fmt.Sprintf("%s in nftables mode still has the iptables mode's KUBE-SERVICES/KUBE-SVC-* chains in its nat table "+
				"(upstream's kube-proxy removes them when it starts in nftables mode)", h.name)
		}
	}
	return ""
}

// checkPodsKept: the agents' restart (to change the proxy mode) kept the
// pods' containers (a restarted agent adopts them). Logged, not failed:
// it is not what this test is about.
func (s *services) checkPodsKept(t *testing.T) {
	for name, before := range s.pods {
		after := s.c.waitPodReady(t, s.ns, name, 60*time.Second)
		if len(after.Status.ContainerStatuses) == 0 || len(before.Status.ContainerStatuses) == 0 {
			continue
		}
		if b, a := before.Status.ContainerStatuses[0], after.Status.ContainerStatuses[0]; a.ContainerID != b.ContainerID || a.RestartCount != b.RestartCount {
			t.Logf("NOTE: pod %s's container was not kept across the agents' restart: %s (restarts %d) -> %s (restarts %d)",
				name, b.ContainerID, b.RestartCount, a.ContainerID, a.RestartCount)
		}
		s.pods[name] = after
	}
}

// waitProxying waits until the proxy of host b (restarted, maybe) sends
// client-b's requests to the echo Service's pods on its own node, the
// path that needs no pod network between the hosts.
func (s *services) waitProxying(t *testing.T) {
	t.Helper()
	ip := s.svc["echo"].Spec.ClusterIP
	eventually(t, 45*time.Second, func() string {
		r, problem := s.c.sh(s.ns, "client-b", getWho+"getwho "+ip+" 80")
		if problem != "" {
			return problem
		}
		if !strings.HasPrefix(r.stdout, "echo-") {
			return fmt.Sprintf("client-b (same node as the endpoints) to the echo Service %s:80: %s", ip, r)
		}
		return ""
	})
}

// answers runs n requests to ip:port from pod and counts the answers by
// the answering pod's hostname; other output lines are failures.
func (s *services) answers(pod, ip string, port, n int) (byHost map[string]int, failures []string, problem string) {
	script := fmt.Sprintf(getWho+"for i in $(seq %d); do getwho %s %d; done", n, ip, port)
	r, problem := s.c.sh(s.ns, pod, script)
	if problem != "" {
		return nil, nil, problem
	}
	byHost = map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if f := strings.Fields(line); len(f) == 2 && s.pods[f[0]] != nil {
			byHost[f[0]]++
		} else {
			failures = append(failures, line)
		}
	}
	return byHost, failures, ""
}

// testClusterIPSpread: from a pod on host a, the ClusterIP reaches the
// three pods on host b, each of them.
func (s *services) testClusterIPSpread(t *testing.T) {
	ip := s.svc["echo"].Spec.ClusterIP
	eventually(t, 20*time.Second, func() string {
		byHost, failures, problem := s.answers("client-a", ip, 80, 30)
		if problem != "" {
			return problem
		}
		if len(failures) > 0 || len(byHost) != 3 {
			return fmt.Sprintf("30 requests from client-a (host a) to the echo Service %s:80 (3 endpoints on host b): answered by %v; failures: %s",
				ip, byHost, strings.Join(failures, " | "))
		}
		return ""
	})
}

// testNodePort: the NodePort answers on both hosts' IPs, from outside the
// cluster (the root namespace), from the echo pods.
func (s *services) testNodePort(t *testing.T) {
	port := s.svc["echo-np"].Spec.Ports[0].NodePort
	for _, h := range s.c.hosts {
		eventually(t, 15*time.Second, func() string {
			seen := map[string]int{}
			for range 6 {
				body, err := httpWho(h.ip, int(port), 2*time.Second)
				if err != nil {
					return fmt.Sprintf("GET %s:%d (NodePort of echo-np): %v; answered so far: %v", h.ip, port, err, seen)
				}
				f := strings.Fields(body)
				if len(f) != 2 || !strings.HasPrefix(f[0], "echo-") {
					return fmt.Sprintf("GET %s:%d: %q, want an echo pod's answer", h.ip, port, body)
				}
				seen[f[0]]++
			}
			return ""
		})
	}
}

// testSessionAffinity: with sessionAffinity ClientIP every request of a
// client goes to one endpoint.
func (s *services) testSessionAffinity(t *testing.T) {
	ip := s.svc["echo-sticky"].Spec.ClusterIP
	for _, client := range []string{"client-a", "client-b"} {
		eventually(t, 15*time.Second, func() string {
			byHost, failures, problem := s.answers(client, ip, 80, 12)
			if problem != "" {
				return problem
			}
			if len(failures) > 0 || len(byHost) != 1 {
				return fmt.Sprintf("12 requests from %s to echo-sticky %s:80 (sessionAffinity ClientIP): answered by %v, want one pod; failures: %s",
					client, ip, byHost, strings.Join(failures, " | "))
			}
			return ""
		})
	}
}

// testNoEndpoints: a Service without ready endpoints refuses connections
// at once (REJECT), rather than letting them time out.
func (s *services) testNoEndpoints(t *testing.T) {
	ip := s.svc["nothing"].Spec.ClusterIP
	// The time in the pod, from /proc/uptime's centiseconds.
	script := fmt.Sprintf(`cs() { read up _ < /proc/uptime; echo "${up%%.*}${up#*.}"; }; s=$(cs); `+
		`printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 %s 80; rc=$?; e=$(cs); echo "rc=$rc took=$(( (e - s) * 10 ))ms"`, ip)
	r, problem := s.c.sh(s.ns, "client-a", script)
	if problem != "" {
		t.Fatal(problem)
	}
	ms := -1
	if _, took, ok := strings.Cut(r.stdout, "took="); ok {
		ms, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(took), "ms"))
	}
	// nc gives up after 5s: a dropped connection would take that long.
	if !strings.Contains(r.stderr, "refused") || ms < 0 || ms > 3000 {
		t.Errorf("connecting to Service nothing %s:80 (no endpoints) from client-a: want \"Connection refused\" at once, got (%d ms): %s", ip, ms, r)
	}
}

// testLocalPolicy: externalTrafficPolicy Local: the NodePort of the host
// with the endpoint answers with the client's own IP (no masquerade); the
// other host has no local endpoint and does not answer.
func (s *services) testLocalPolicy(t *testing.T) {
	port := int(s.svc["local-np"].Spec.Ports[0].NodePort)
	a, b := s.c.hosts[0], s.c.hosts[1]
	eventually(t, 15*time.Second, func() string {
		body, err := httpWho(a.ip, port, 2*time.Second)
		if err != nil {
			return fmt.Sprintf("GET %s:%d (Local NodePort, endpoint on this host): %v", a.ip, port, err)
		}
		if want := "local-a " + serverIP; strings.TrimSpace(body) != want {
			return fmt.Sprintf("GET %s:%d (Local NodePort) from %s: %q, want %q (the client's own IP)", a.ip, port, serverIP, body, want)
		}
		return ""
	})
	if body, err := httpWho(b.ip, port, time.Second); err == nil {
		t.Errorf("GET %s:%d (Local NodePort, no endpoint on this host) answered %q; want no answer", b.ip, port, body)
	}
}

// httpWho GETs /cgi-bin/who from ip:port.
func httpWho(ip string, port int, timeout time.Duration) (string, error) {
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + net.JoinHostPort(ip, strconv.Itoa(port)) + "/cgi-bin/who")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, body)
	}
	return strings.TrimSpace(string(body)), nil
}
