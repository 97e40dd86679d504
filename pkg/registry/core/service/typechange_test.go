package service

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/test/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}

// startServer runs `skiff apiserver` (or upstream's kube-apiserver) and
// returns a Services client for the default namespace.
func startServer(t *testing.T, upstream bool) typedcorev1.ServiceInterface {
	t.Helper()
	var s *harness.Server
	if upstream {
		s = harness.StartUpstreamTest(t, harness.Options{})
	} else {
		s = harness.StartSkiffTest(t, harness.Options{Command: "apiserver"})
	}
	return kubernetes.NewForConfigOrDie(s.AdminConfig(t)).CoreV1().Services(metav1.NamespaceDefault)
}

func tcpService(name string, typ corev1.ServiceType) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Type: typ, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(9376)}}}}
}

func externalNameService(name string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "foo.example.com", Selector: map[string]string{"app": name}}}
}

// update is the e2e jig's UpdateService: Get, modify, Update, so every
// field the server filled in goes back to it.
func update(t *testing.T, c typedcorev1.ServiceInterface, name string, modify func(*corev1.Service)) (*corev1.Service, error) {
	t.Helper()
	svc, err := c.Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	modify(svc)
	return c.Update(context.Background(), svc, metav1.UpdateOptions{})
}

func create(t *testing.T, c typedcorev1.ServiceInterface, svc *corev1.Service) *corev1.Service {
	t.Helper()
	created, err := c.Create(context.Background(), svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating %s: %v", svc.Name, err)
	}
	return created
}

func toExternalName(s *corev1.Service) {
	s.Spec.Type = corev1.ServiceTypeExternalName
	s.Spec.ExternalName = "externalsvc.default.svc.cluster.local"
}

// checkExternalName: what an ExternalName Service holds after a type change.
func checkExternalName(t *testing.T, svc *corev1.Service) {
	t.Helper()
	s := svc.Spec
	if s.ClusterIP != "" || s.ClusterIPs != nil || s.IPFamilies != nil || s.IPFamilyPolicy != nil {
		t.Errorf("ExternalName kept clusterIP %q clusterIPs %v ipFamilies %v ipFamilyPolicy %v", s.ClusterIP, s.ClusterIPs, s.IPFamilies, s.IPFamilyPolicy)
	}
	for _, p := range s.Ports {
		if p.NodePort != 0 {
			t.Errorf("ExternalName kept nodePort %d", p.NodePort)
		}
	}
	if s.ExternalTrafficPolicy != "" || s.HealthCheckNodePort != 0 {
		t.Errorf("ExternalName kept externalTrafficPolicy %q healthCheckNodePort %d", s.ExternalTrafficPolicy, s.HealthCheckNodePort)
	}
	// Upstream drops internalTrafficPolicy too (checked against it by
	// TestServiceTypeChangesUpstream).
	if s.InternalTrafficPolicy != nil {
		t.Errorf("ExternalName kept internalTrafficPolicy %v", *s.InternalTrafficPolicy)
	}
}

// checkClusterIP: what a Service changed from ExternalName was given.
func checkClusterIP(t *testing.T, svc *corev1.Service) {
	t.Helper()
	s := svc.Spec
	if s.ClusterIP == "" || !slices.Equal(s.ClusterIPs, []string{s.ClusterIP}) {
		t.Errorf("clusterIP %q clusterIPs %v: not allocated", s.ClusterIP, s.ClusterIPs)
	}
	if !slices.Equal(s.IPFamilies, []corev1.IPFamily{corev1.IPv4Protocol}) || s.IPFamilyPolicy == nil || *s.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack {
		t.Errorf("ipFamilies %v ipFamilyPolicy %v, want [IPv4] SingleStack", s.IPFamilies, s.IPFamilyPolicy)
	}
	if s.InternalTrafficPolicy == nil || *s.InternalTrafficPolicy != corev1.ServiceInternalTrafficPolicyCluster {
		t.Errorf("internalTrafficPolicy %v, want Cluster", s.InternalTrafficPolicy)
	}
}

// wantInvalid: a 422 whose causes name field with message.
func wantInvalid(t *testing.T, err error, field, message string) {
	t.Helper()
	if !apierrors.IsInvalid(err) {
		t.Fatalf("got %v, want 422 Invalid on %s", err, field)
	}
	for _, c := range err.(apierrors.APIStatus).Status().Details.Causes {
		if c.Field == field && c.Message != "" && strings.Contains(c.Message, message) {
			return
		}
	}
	t.Errorf("%v: no cause on %s saying %q", err, field, message)
}

// The four type changes of the [Conformance] specs "should be able to
// change the type from ... to ...", their API side: what is dropped, what
// is allocated, and that what was dropped is free for others at once.
func TestServiceTypeChanges(t *testing.T) { testServiceTypeChanges(t, startServer(t, false)) }

// The same against upstream, when hack/upstream.sh has built it: the
// expectations are upstream's.
func TestServiceTypeChangesUpstream(t *testing.T) { testServiceTypeChanges(t, startServer(t, true)) }

func testServiceTypeChanges(t *testing.T, c typedcorev1.ServiceInterface) {
	ctx := context.Background()

	t.Run("ClusterIP to ExternalName", func(t *testing.T) {
		old := create(t, c, tcpService("clusterip-service", corev1.ServiceTypeClusterIP))
		svc, err := update(t, c, old.Name, toExternalName)
		if err != nil {
			t.Fatal(err)
		}
		checkExternalName(t, svc)
		// The address went back to the allocator: another Service gets it.
		reuse := tcpService("reuses-clusterip", corev1.ServiceTypeClusterIP)
		reuse.Spec.ClusterIP = old.Spec.ClusterIP
		if got := create(t, c, reuse); got.Spec.ClusterIP != old.Spec.ClusterIP {
			t.Errorf("reuse got %s, want %s", got.Spec.ClusterIP, old.Spec.ClusterIP)
		}
	})

	t.Run("NodePort to ExternalName", func(t *testing.T) {
		old := create(t, c, tcpService("nodeport-service", corev1.ServiceTypeNodePort))
		if old.Spec.Ports[0].NodePort == 0 || old.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyCluster {
			t.Fatalf("NodePort Service created with %+v", old.Spec)
		}
		svc, err := update(t, c, old.Name, toExternalName)
		if err != nil {
			t.Fatal(err)
		}
		checkExternalName(t, svc)
		reuse := tcpService("reuses-nodeport", corev1.ServiceTypeNodePort)
		reuse.Spec.ClusterIP = old.Spec.ClusterIP
		reuse.Spec.Ports[0].NodePort = old.Spec.Ports[0].NodePort
		got := create(t, c, reuse)
		if got.Spec.ClusterIP != old.Spec.ClusterIP || got.Spec.Ports[0].NodePort != old.Spec.Ports[0].NodePort {
			t.Errorf("reuse got %s:%d, want %s:%d", got.Spec.ClusterIP, got.Spec.Ports[0].NodePort, old.Spec.ClusterIP, old.Spec.Ports[0].NodePort)
		}
	})

	t.Run("ExternalName to ClusterIP", func(t *testing.T) {
		create(t, c, externalNameService("externalname-to-clusterip"))
		svc, err := update(t, c, "externalname-to-clusterip", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeClusterIP
			s.Spec.ExternalName = ""
			s.Spec.Ports = tcpService("", "").Spec.Ports
		})
		if err != nil {
			t.Fatal(err)
		}
		checkClusterIP(t, svc)
		// The address is taken.
		taken := tcpService("wants-the-same-ip", corev1.ServiceTypeClusterIP)
		taken.Spec.ClusterIP = svc.Spec.ClusterIP
		_, err = c.Create(ctx, taken, metav1.CreateOptions{})
		wantInvalid(t, err, "spec.clusterIPs", "provided IP is already allocated")
	})

	t.Run("ExternalName to NodePort", func(t *testing.T) {
		create(t, c, externalNameService("externalname-to-nodeport"))
		svc, err := update(t, c, "externalname-to-nodeport", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ExternalName = ""
			s.Spec.Ports = tcpService("", "").Spec.Ports
		})
		if err != nil {
			t.Fatal(err)
		}
		checkClusterIP(t, svc)
		if svc.Spec.Ports[0].NodePort == 0 || svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyCluster {
			t.Errorf("nodePort %d externalTrafficPolicy %q, want allocated and Cluster", svc.Spec.Ports[0].NodePort, svc.Spec.ExternalTrafficPolicy)
		}
		taken := tcpService("wants-the-same-nodeport", corev1.ServiceTypeNodePort)
		taken.Spec.Ports[0].NodePort = svc.Spec.Ports[0].NodePort
		_, err = c.Create(ctx, taken, metav1.CreateOptions{})
		wantInvalid(t, err, "spec.ports[0].nodePort", "provided port is already allocated")
	})

	// A patch that only names the new type and clears the singular
	// clusterIP (the plural one stays as stored) drops the rest too.
	t.Run("merge patch to ExternalName", func(t *testing.T) {
		old := create(t, c, tcpService("patched-to-externalname", corev1.ServiceTypeClusterIP))
		patch := []byte(`{"spec":{"type":"ExternalName","externalName":"foo.example.com","clusterIP":""}}`)
		svc, err := c.Patch(ctx, old.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkExternalName(t, svc)
		reuse := tcpService("reuses-patched", corev1.ServiceTypeClusterIP)
		reuse.Spec.ClusterIP = old.Spec.ClusterIP
		create(t, c, reuse)
	})

	t.Run("NodePort to ClusterIP", func(t *testing.T) {
		old := create(t, c, tcpService("nodeport-to-clusterip", corev1.ServiceTypeNodePort))
		svc, err := update(t, c, old.Name, func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP })
		if err != nil {
			t.Fatal(err)
		}
		if svc.Spec.ClusterIP != old.Spec.ClusterIP || svc.Spec.Ports[0].NodePort != 0 || svc.Spec.ExternalTrafficPolicy != "" {
			t.Errorf("clusterIP %s nodePort %d externalTrafficPolicy %q, want %s kept, 0, empty",
				svc.Spec.ClusterIP, svc.Spec.Ports[0].NodePort, svc.Spec.ExternalTrafficPolicy, old.Spec.ClusterIP)
		}
		reuse := tcpService("reuses-nodeport-of-clusterip", corev1.ServiceTypeNodePort)
		reuse.Spec.Ports[0].NodePort = old.Spec.Ports[0].NodePort
		create(t, c, reuse)
	})

	// healthCheckNodePort goes with type LoadBalancer and policy Local.
	t.Run("LoadBalancer Local to NodePort", func(t *testing.T) {
		lb := tcpService("lb-local", corev1.ServiceTypeLoadBalancer)
		lb.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		old := create(t, c, lb)
		if old.Spec.HealthCheckNodePort == 0 {
			t.Fatalf("no healthCheckNodePort allocated: %+v", old.Spec)
		}
		old.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.1"}}
		if _, err := c.UpdateStatus(ctx, old, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		svc, err := update(t, c, old.Name, func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })
		if err != nil {
			t.Fatal(err)
		}
		if svc.Spec.HealthCheckNodePort != 0 || svc.Spec.AllocateLoadBalancerNodePorts != nil || svc.Spec.Ports[0].NodePort != old.Spec.Ports[0].NodePort {
			t.Errorf("healthCheckNodePort %d allocateLoadBalancerNodePorts %v nodePort %d, want 0, nil, %d kept",
				svc.Spec.HealthCheckNodePort, svc.Spec.AllocateLoadBalancerNodePorts, svc.Spec.Ports[0].NodePort, old.Spec.Ports[0].NodePort)
		}
		if len(svc.Status.LoadBalancer.Ingress) > 0 {
			t.Errorf("status.loadBalancer %+v kept by a NodePort Service", svc.Status.LoadBalancer)
		}
		reuse := tcpService("reuses-healthcheck-port", corev1.ServiceTypeNodePort)
		reuse.Spec.Ports[0].NodePort = old.Spec.HealthCheckNodePort
		create(t, c, reuse)
	})

	// A LoadBalancer that opts out of NodePorts still holds those it asks
	// for, as upstream's allocator gives them.
	t.Run("LoadBalancer without NodePort allocation", func(t *testing.T) {
		lb := tcpService("lb-no-nodeports", corev1.ServiceTypeLoadBalancer)
		lb.Spec.AllocateLoadBalancerNodePorts = ptr.To(false)
		lb.Spec.Ports = append(lb.Spec.Ports, corev1.ServicePort{Name: "https", Port: 443})
		lb.Spec.Ports[0].NodePort = 30444
		got := create(t, c, lb)
		if got.Spec.Ports[0].NodePort != 30444 || got.Spec.Ports[1].NodePort != 0 {
			t.Errorf("nodePorts %d, %d, want 30444 and none", got.Spec.Ports[0].NodePort, got.Spec.Ports[1].NodePort)
		}
		taken := tcpService("wants-the-lb-nodeport", corev1.ServiceTypeNodePort)
		taken.Spec.Ports[0].NodePort = 30444
		_, err := c.Create(ctx, taken, metav1.CreateOptions{})
		wantInvalid(t, err, "spec.ports[0].nodePort", "provided port is already allocated")
	})

	// What the client changed along with the type is not dropped: upstream's
	// validation errors, and nothing is released.
	t.Run("headless update clearing clusterIP", func(t *testing.T) {
		// What a read-modify-write that blanks clusterIP sends: "" with the
		// stored clusterIPs ["None"]. Upstream keeps the Service headless.
		old := tcpService("headless", corev1.ServiceTypeClusterIP)
		old.Spec.ClusterIP = corev1.ClusterIPNone
		create(t, c, old)
		svc, err := update(t, c, "headless", func(s *corev1.Service) { s.Spec.ClusterIP = "" })
		if err != nil {
			t.Fatal(err)
		}
		if svc.Spec.ClusterIP != corev1.ClusterIPNone || !slices.Equal(svc.Spec.ClusterIPs, []string{corev1.ClusterIPNone}) {
			t.Errorf("headless after update: clusterIP %q clusterIPs %v", svc.Spec.ClusterIP, svc.Spec.ClusterIPs)
		}
	})

	t.Run("conflicting fields", func(t *testing.T) {
		old := create(t, c, tcpService("conflicts", corev1.ServiceTypeNodePort))
		_, err := update(t, c, old.Name, func(s *corev1.Service) {
			toExternalName(s)
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.0.0.201", []string{"10.0.0.201"}
		})
		wantInvalid(t, err, "spec.clusterIPs", "may not be set for ExternalName services")
		_, err = update(t, c, old.Name, func(s *corev1.Service) {
			toExternalName(s)
			s.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicyPreferDualStack)
		})
		wantInvalid(t, err, "spec.ipFamilyPolicy", "may not be set for ExternalName services")
		_, err = update(t, c, old.Name, func(s *corev1.Service) {
			toExternalName(s)
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
		})
		wantInvalid(t, err, "spec.ipFamilies", "may not be set for ExternalName services")
		_, err = update(t, c, old.Name, func(s *corev1.Service) {
			toExternalName(s)
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		})
		wantInvalid(t, err, "spec.externalTrafficPolicy", "may only be set for externally-accessible services")
		_, err = update(t, c, old.Name, func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeClusterIP
			s.Spec.Ports[0].NodePort++
		})
		wantInvalid(t, err, "spec.ports[0].nodePort", "may not be used when `type` is 'ClusterIP'")

		// The failed updates released nothing.
		taken := tcpService("conflicts-ip", corev1.ServiceTypeClusterIP)
		taken.Spec.ClusterIP = old.Spec.ClusterIP
		_, err = c.Create(ctx, taken, metav1.CreateOptions{})
		wantInvalid(t, err, "spec.clusterIPs", "provided IP is already allocated")
		takenPort := tcpService("conflicts-port", corev1.ServiceTypeNodePort)
		takenPort.Spec.Ports[0].NodePort = old.Spec.Ports[0].NodePort
		_, err = c.Create(ctx, takenPort, metav1.CreateOptions{})
		wantInvalid(t, err, "spec.ports[0].nodePort", "provided port is already allocated")
	})
}
