package containerspec

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func svc(ns, name, ip string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: ports}}
}

func TestServiceEnv(t *testing.T) {
	services := []*corev1.Service{
		svc("default", "kubernetes", "10.96.0.1", corev1.ServicePort{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP}),
		svc("ns", "my-db", "10.96.0.20", corev1.ServicePort{Port: 5432}, corev1.ServicePort{Name: "metrics", Port: 9187, Protocol: corev1.ProtocolUDP}),
		svc("ns", "headless", corev1.ClusterIPNone, corev1.ServicePort{Port: 80}),
		svc("ns", "v6", "fd00::30", corev1.ServicePort{Port: 80, Protocol: corev1.ProtocolSCTP}),
		svc("other", "elsewhere", "10.96.0.40", corev1.ServicePort{Port: 80}),
		svc("default", "not-master", "10.96.0.50", corev1.ServicePort{Port: 80}),
	}
	names := func(env []corev1.EnvVar) []string {
		var out []string
		for _, e := range env {
			out = append(out, e.Name+"="+e.Value)
		}
		return out
	}
	kubernetes := []string{
		"KUBERNETES_SERVICE_HOST=10.96.0.1", "KUBERNETES_SERVICE_PORT=443", "KUBERNETES_SERVICE_PORT_HTTPS=443",
		"KUBERNETES_PORT=tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP=tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP_PROTO=tcp",
		"KUBERNETES_PORT_443_TCP_PORT=443", "KUBERNETES_PORT_443_TCP_ADDR=10.96.0.1",
	}
	if got := names(ServiceEnv(services, "ns", false)); !reflect.DeepEqual(got, kubernetes) {
		t.Errorf("links disabled: %q", got)
	}
	want := append(append([]string{}, kubernetes...),
		"MY_DB_SERVICE_HOST=10.96.0.20", "MY_DB_SERVICE_PORT=5432", "MY_DB_SERVICE_PORT_METRICS=9187",
		"MY_DB_PORT=tcp://10.96.0.20:5432",
		"MY_DB_PORT_5432_TCP=tcp://10.96.0.20:5432", "MY_DB_PORT_5432_TCP_PROTO=tcp", "MY_DB_PORT_5432_TCP_PORT=5432", "MY_DB_PORT_5432_TCP_ADDR=10.96.0.20",
		"MY_DB_PORT_9187_UDP=udp://10.96.0.20:9187", "MY_DB_PORT_9187_UDP_PROTO=udp", "MY_DB_PORT_9187_UDP_PORT=9187", "MY_DB_PORT_9187_UDP_ADDR=10.96.0.20",
		"V6_SERVICE_HOST=fd00::30", "V6_SERVICE_PORT=80", "V6_PORT=sctp://[fd00::30]:80",
		"V6_PORT_80_SCTP=sctp://[fd00::30]:80", "V6_PORT_80_SCTP_PROTO=sctp", "V6_PORT_80_SCTP_PORT=80", "V6_PORT_80_SCTP_ADDR=fd00::30",
	)
	if got := names(ServiceEnv(services, "ns", true)); !reflect.DeepEqual(got, want) {
		t.Errorf("links enabled:\n%q\nwant\n%q", got, want)
	}
	// The namespace's own "kubernetes" service wins over default's, whatever the order.
	own := svc("ns", "kubernetes", "10.96.7.7", corev1.ServicePort{Port: 1})
	for _, list := range [][]*corev1.Service{{services[0], own}, {own, services[0]}} {
		env := ServiceEnv(list, "ns", true)
		if len(env) == 0 || env[0].Value != "10.96.7.7" {
			t.Errorf("own kubernetes service: %v", env)
		}
	}
	// No ports: nothing, no panic.
	if env := ServiceEnv([]*corev1.Service{svc("ns", "p", "10.0.0.1")}, "ns", true); len(env) != 0 {
		t.Errorf("portless service: %v", env)
	}
}
