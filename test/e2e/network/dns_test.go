package network

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

const dnsNS = nsPrefix + "dns"

// TestDNS: pods resolve through the cluster DNS (skiff server's, behind
// the kube-dns Service that the agents' proxies serve): the kubernetes
// Service, a headless Service's pods, a StatefulSet pod's hostname, and
// names outside the cluster through the upstream resolver.
func TestDNS(t *testing.T) {
	skipIfNotWired(t)
	c := requireCluster(t)
	c.namespace(t, dnsNS, nil)
	a := c.hosts[0].name
	labels := map[string]string{"app": "web"}
	c.createService(t, dnsNS, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{
		ClusterIP: corev1.ClusterIPNone, Selector: labels,
		Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}}}, 0)
	tmpl := echoPod("", "", labels)
	tmpl.Spec.NodeName = ""
	ctx := context.Background()
	_, err := c.admin.AppsV1().StatefulSets(dnsNS).Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](2), ServiceName: "web", PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: tmpl.Spec},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.createPods(t, dnsNS, clientPod("dns-client", a, nil))
	web := map[string]string{}
	for _, name := range []string{"web-0", "web-1"} {
		web[name] = c.waitPodReady(t, dnsNS, name, 90*time.Second).Status.PodIP
	}
	lookup := func(t *testing.T, name string, want ...string) {
		t.Helper()
		eventually(t, 20*time.Second, func() string {
			r, problem := c.sh(dnsNS, "dns-client", "nslookup "+name)
			if problem != "" {
				return problem
			}
			if got := answers(r.stdout); strings.Join(got, " ") != strings.Join(sorted(want), " ") {
				return fmt.Sprintf("nslookup %s in a pod: addresses %v, want %v\n%s", name, got, sorted(want), r)
			}
			return ""
		})
	}

	subtest(t, "KubernetesDefault", func(t *testing.T) {
		// busybox's nslookup searches only names without a dot: the FQDN
		// here, and kubernetes.default through the search path with the
		// C library's resolver (ping prints the address it resolved).
		lookup(t, "kubernetes.default.svc.cluster.local", kubernetesIP)
		eventually(t, 20*time.Second, func() string {
			r, problem := c.sh(dnsNS, "dns-client", "ping -c 1 -W 1 kubernetes.default")
			if problem != "" {
				return problem
			}
			if !strings.Contains(r.stdout, "("+kubernetesIP+")") {
				return fmt.Sprintf("ping kubernetes.default in a pod (the pod's resolv.conf search path): want it resolved to %s\n%s", kubernetesIP, r)
			}
			return ""
		})
	})
	subtest(t, "HeadlessServicePods", func(t *testing.T) {
		lookup(t, "web."+dnsNS+".svc.cluster.local", web["web-0"], web["web-1"])
	})
	subtest(t, "StatefulSetPodHostname", func(t *testing.T) {
		for name, ip := range web {
			lookup(t, name+".web."+dnsNS+".svc.cluster.local", ip)
		}
	})
	subtest(t, "OutsideNameForwarded", func(t *testing.T) {
		lookup(t, upstreamName, upstreamIP)
	})
}

var nslookupAddress = regexp.MustCompile(`(?m)^Address:\s+(\S+)$`)

// answers are the addresses of nslookup's answer (after the server's own
// "Address: ip:53" line), sorted.
func answers(out string) []string {
	var ips []string
	_, answer, ok := strings.Cut(out, "Name:")
	if !ok {
		return nil
	}
	for _, m := range nslookupAddress.FindAllStringSubmatch(answer, -1) {
		ips = append(ips, m[1])
	}
	return sorted(ips)
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
