package dns

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// BenchmarkServeUDP: queries for one of 10 000 Services over loopback UDP,
// several in flight (fake API objects; the server and network are real).
func BenchmarkServeUDP(b *testing.B) {
	var objs []any
	objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}})
	for i := range 10000 {
		objs = append(objs, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("svc-%d", i), Namespace: "bench"},
			Spec: corev1.ServiceSpec{ClusterIP: fmt.Sprintf("10.%d.%d.%d", 96+i/65536, (i/256)%256, i%256),
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}}})
	}
	client := fake.NewClientset()
	for _, o := range objs {
		switch o := o.(type) {
		case *corev1.Namespace:
			_, _ = client.CoreV1().Namespaces().Create(context.Background(), o, metav1.CreateOptions{})
		case *corev1.Service:
			_, _ = client.CoreV1().Services(o.Namespace).Create(context.Background(), o, metav1.CreateOptions{})
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan *Server, 1)
	go func() {
		_ = Run(ctx, client, Options{BindAddress: "127.0.0.1", Port: -1, Upstreams: []string{"127.0.0.1:9"}, Started: func(s *Server) { started <- s }})
	}()
	s := <-started
	for !s.Ready() {
		time.Sleep(10 * time.Millisecond)
	}
	addr := s.UDPAddr().String()
	b.ResetTimer()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		conn, err := net.Dial("udp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		co := &dns.Conn{Conn: conn}
		i := 0
		for pb.Next() {
			m := new(dns.Msg)
			m.SetQuestion(fmt.Sprintf("svc-%d.bench.svc.cluster.local.", i%10000), dns.TypeA)
			i++
			if err := co.WriteMsg(m); err != nil {
				b.Error(err)
				return
			}
			resp, err := co.ReadMsg()
			if err != nil || len(resp.Answer) != 1 {
				b.Errorf("answer %v, %v", resp, err)
				return
			}
		}
	})
}
