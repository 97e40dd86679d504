package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"

	"github.com/skiff-dev/skiff/test/nodeimages"
)

// The conformance specs these subtests follow: SchedulerPreemption's
// (extended resources patched into the node's status), HostPort's and
// SchedulerPredicates' host port ones, and StatefulSet's "Should recreate
// evicted statefulset".

// fooResource is the extended resource SchedulerPreemption patches in.
const fooResource = corev1.ResourceName("scheduling.k8s.io/foo")

// patchNodeStatus patches the node's status from old to updated, as the
// conformance specs' patchNode: a two-way strategic merge patch of status.
func (ln *localNode) patchNodeStatus(t *testing.T, old, updated *corev1.Node) {
	t.Helper()
	oldJSON, _ := json.Marshal(old)
	newJSON, _ := json.Marshal(updated)
	patch, err := strategicpatch.CreateTwoWayMergePatch(oldJSON, newJSON, &corev1.Node{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ln.admin.CoreV1().Nodes().Patch(context.Background(), old.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		t.Fatal(err)
	}
}

// setNodeFoo sets (n > 0) or removes (n == 0) scheduling.k8s.io/foo in the
// node's capacity and allocatable.
func (ln *localNode) setNodeFoo(t *testing.T, n int64) {
	t.Helper()
	node, err := ln.admin.CoreV1().Nodes().Get(context.Background(), ln.node.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	updated := node.DeepCopy()
	if n > 0 {
		updated.Status.Capacity[fooResource] = *resource.NewQuantity(n, resource.DecimalSI)
		updated.Status.Allocatable[fooResource] = *resource.NewQuantity(n, resource.DecimalSI)
	} else {
		delete(updated.Status.Capacity, fooResource)
		delete(updated.Status.Allocatable, fooResource)
	}
	ln.patchNodeStatus(t, node, updated)
}

// pausePod is a conformance pausePodConfig's pod: grace period 1 s.
func pausePod(name, priorityClass string, requests corev1.ResourceList, nodeName string) *corev1.Pod {
	one := int64(1)
	no := false
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			PriorityClassName:             priorityClass,
			TerminationGracePeriodSeconds: &one,
			AutomountServiceAccountToken:  &no,
			Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
					MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{nodeName}}},
				}}},
			}},
			Containers: []corev1.Container{{
				Name: name, Image: nodeimages.PauseImage,
				Resources: corev1.ResourceRequirements{Requests: requests, Limits: requests},
			}},
		},
	}
}

// testExtendedResourcePreemption: scheduling.k8s.io/foo patched into the
// node's status stays there (the kubelet's status writes keep it), pods
// requesting it are admitted by the kubelet and run, and a higher priority
// pod preempts the low priority one: the victim gets DisruptionTarget
// (PreemptionByScheduler) and a Preempted event, the medium one stays, and
// the preemptor runs once the victim is gone.
func (ln *localNode) testExtendedResourcePreemption(t *testing.T) {
	ctx := context.Background()
	pods := ln.admin.CoreV1().Pods(ln.k.ns)
	ln.setNodeFoo(t, 5)
	t.Cleanup(func() { ln.setNodeFoo(t, 0) })

	// Longer than a status update interval (10 s): the kubelet has looked
	// at its status at least once since the patch.
	deadline := time.Now().Add(12 * time.Second)
	for time.Now().Before(deadline) {
		node, err := ln.admin.CoreV1().Nodes().Get(ctx, ln.node.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c, a := node.Status.Capacity[fooResource], node.Status.Allocatable[fooResource]
		if c.Value() != 5 || a.Value() != 5 {
			t.Fatalf("after the patch the node's %s is capacity %s allocatable %s, want 5 and 5", fooResource, c.String(), a.String())
		}
		time.Sleep(time.Second)
	}

	prefix := strings.ToLower(ln.k.ns)
	classes := map[string]int32{"low": 1, "medium": 100, "high": 1000}
	for name, value := range classes {
		pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: prefix + "-" + name}, Value: value}
		if _, err := ln.admin.SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ln.admin.SchedulingV1().PriorityClasses().Delete(ctx, pc.Name, metav1.DeleteOptions{}) })
	}
	two := corev1.ResourceList{fooResource: resource.MustParse("2")}
	victim := pausePod("victim", prefix+"-low", two, ln.node.Name)
	// As the disruption condition spec: the finalizer keeps the victim
	// to look at after its deletion.
	victim.Finalizers = []string{"example.com/test-finalizer"}
	removeFinalizer := func() {
		p, err := pods.Get(ctx, "victim", metav1.GetOptions{})
		if err == nil && len(p.Finalizers) > 0 {
			_, _ = pods.Patch(ctx, "victim", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
		}
	}
	t.Cleanup(removeFinalizer)
	for _, p := range []*corev1.Pod{victim, pausePod("medium", prefix+"-medium", two, ln.node.Name)} {
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ln.waitPod(t, "victim", 60*time.Second, podRunning)
	ln.waitPod(t, "medium", 60*time.Second, podRunning)

	if _, err := pods.Create(ctx, pausePod("preemptor", prefix+"-high", two, ln.node.Name), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ln.waitPod(t, "victim", 30*time.Second, func(p *corev1.Pod) string {
		if p.DeletionTimestamp == nil {
			return "victim not deleted"
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue && c.Reason == corev1.PodReasonPreemptionByScheduler {
				return ""
			}
		}
		return fmt.Sprintf("no DisruptionTarget condition: %+v", p.Status.Conditions)
	})
	eventually(t, 10*time.Second, func() string {
		if findEvent(ln.podEvents(t, "victim"), "Preempted", "Preempted by pod") == nil {
			return "no Preempted event on the victim:" + eventList(ln.podEvents(t, "victim"))
		}
		return ""
	})
	// The kubelet's status writes of the stopped victim keep the
	// scheduler's condition.
	ln.waitPod(t, "victim", 30*time.Second, func(p *corev1.Pod) string {
		if p.Status.Phase != corev1.PodFailed && p.Status.Phase != corev1.PodSucceeded {
			return fmt.Sprintf("victim phase %s, containers %s", p.Status.Phase, containerStates(p))
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
				return ""
			}
		}
		return fmt.Sprintf("stopped victim lost its DisruptionTarget condition: %+v", p.Status.Conditions)
	})
	removeFinalizer()
	ln.waitPod(t, "preemptor", 60*time.Second, podRunning)
	if _, err := pods.Get(ctx, "victim", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("victim after the preemptor runs: %v, want gone", err)
	}
	if p, err := pods.Get(ctx, "medium", metav1.GetOptions{}); err != nil {
		t.Errorf("medium pod: %v", err)
	} else if p.DeletionTimestamp != nil {
		t.Errorf("medium pod deleted at %v: want it left running", p.DeletionTimestamp)
	}
	// A fourth pod of 2 does not fit on the kubelet either: bound to the
	// node directly it is rejected with upstream's reason.
	over := pausePod("over", "", two, ln.node.Name)
	over.Spec.Affinity = nil
	over.Spec.NodeName = ln.node.Name
	over.Spec.RestartPolicy = corev1.RestartPolicyNever
	if _, err := pods.Create(ctx, over, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ln.waitPod(t, "over", 30*time.Second, func(p *corev1.Pod) string {
		if p.Status.Phase != corev1.PodFailed || p.Status.Reason != "OutOfscheduling.k8s.io/foo" ||
			p.Status.Message != "Pod was rejected: Node didn't have enough resource: scheduling.k8s.io/foo, requested: 2, used: 4, capacity: 5" {
			return fmt.Sprintf("phase %s reason %q message %q", p.Status.Phase, p.Status.Reason, p.Status.Message)
		}
		return ""
	})
	// As "preemption by critical pod": a system-cluster-critical pod of
	// kube-system preempts the lowest (medium), not the preemptor.
	critical := pausePod("critical-"+prefix, "system-cluster-critical", two, ln.node.Name)
	system := ln.admin.CoreV1().Pods(metav1.NamespaceSystem)
	if _, err := system.Create(ctx, critical, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = system.Delete(ctx, critical.Name, metav1.DeleteOptions{}) })
	eventually(t, 60*time.Second, func() string {
		p, err := system.Get(ctx, critical.Name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		return podRunning(p)
	})
	if p, err := pods.Get(ctx, "medium", metav1.GetOptions{}); err == nil && p.DeletionTimestamp == nil {
		t.Errorf("medium pod not preempted by the critical pod")
	}
	if p, err := pods.Get(ctx, "preemptor", metav1.GetOptions{}); err != nil {
		t.Errorf("preemptor: %v", err)
	} else if p.DeletionTimestamp != nil {
		t.Errorf("preemptor preempted by the critical pod, want medium")
	}
	for _, name := range []string{"medium", "preemptor", "over"} {
		_ = pods.Delete(ctx, name, metav1.DeleteOptions{})
	}
}

// hostPortPod serves busybox httpd's /etc (/hostname answers the pod's
// name) on 8080, published as hostIP:port/protocol.
func hostPortPod(name, hostIP string, port int32, protocol corev1.Protocol, nodeName string) *corev1.Pod {
	one := int64(1)
	no := false
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeName:                      nodeName,
			TerminationGracePeriodSeconds: &one,
			AutomountServiceAccountToken:  &no,
			Containers: []corev1.Container{{
				Name: "web", Image: nodeimages.BusyboxImage,
				Command: []string{"httpd", "-f", "-p", "8080", "-h", "/etc"},
				Ports:   []corev1.ContainerPort{{ContainerPort: 8080, HostPort: port, HostIP: hostIP, Protocol: protocol}},
			}},
		},
	}
}

// internalIP is the node's first IPv4 InternalIP, what the HostPort spec
// publishes on.
func (ln *localNode) internalIP(t *testing.T) string {
	t.Helper()
	for _, a := range ln.node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP && net.ParseIP(a.Address).To4() != nil {
			return a.Address
		}
	}
	t.Fatalf("node has no IPv4 InternalIP: %v", ln.node.Status.Addresses)
	return ""
}

// hostnameVia GETs /hostname through addr from the source address source
// ("" any), as the spec's curl --interface.
func hostnameVia(addr, source string) (string, error) {
	d := net.Dialer{Timeout: 3 * time.Second}
	if source != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(source)}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	fmt.Fprintf(conn, "GET /hostname HTTP/1.0\r\nHost: %s\r\n\r\n", addr)
	body, err := io.ReadAll(conn)
	if err != nil {
		return "", err
	}
	s := string(body)
	if i := strings.Index(s, "\r\n\r\n"); i >= 0 && strings.HasPrefix(s, "HTTP/1.") && strings.Contains(s[:i], " 200 ") {
		return strings.TrimSpace(s[i+4:]), nil
	}
	return "", fmt.Errorf("answer %q", s)
}

// testHostPorts: the same host port on 127.0.0.1/TCP, the InternalIP/TCP
// and the InternalIP/UDP does not conflict (the kubelet admits all three,
// each reaches its own pod); on 0.0.0.0 it conflicts with the specific
// addresses: the kubelet rejects such a pod bound to the node (NodePorts,
// upstream's message) and the scheduler leaves one Pending.
func (ln *localNode) testHostPorts(t *testing.T) {
	ctx := context.Background()
	pods := ln.admin.CoreV1().Pods(ln.k.ns)
	hostIP := ln.internalIP(t)
	const port = 54323
	t.Cleanup(func() {
		for _, name := range []string{"hp1", "hp2", "hp3", "hp4", "hp5", "hq1", "hq2", "hq3"} {
			_ = pods.Delete(ctx, name, metav1.DeleteOptions{})
		}
	})
	// Twice, as SchedulerPredicates' and HostPort's specs publish the same
	// port one after the other: the first pods' mappings must go with them.
	ln.publishSameHostPort(t, "hp", hostIP, port)
	one := int64(1)
	for _, name := range []string{"hp1", "hp2", "hp3"} {
		if err := pods.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &one}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"hp1", "hp2", "hp3"} {
		eventually(t, 30*time.Second, func() string {
			if _, err := pods.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Sprintf("pod %s not gone: %v", name, err)
			}
			return ""
		})
	}
	ln.publishSameHostPort(t, "hq", hostIP, port)

	// From a hostNetwork pod, as the HostPort spec's e2e-host-exec (its
	// sandbox once failed: runc refused the hostname it was given).
	hostExec := hostPortPod("hostexec", "", 0, "", ln.node.Name)
	hostExec.Spec.HostNetwork = true
	hostExec.Spec.Containers[0].Ports = nil
	hostExec.Spec.Containers[0].Command = []string{"sleep", "3600"}
	if _, err := pods.Create(ctx, hostExec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pods.Delete(ctx, "hostexec", metav1.DeleteOptions{}) })
	ln.waitPod(t, "hostexec", 60*time.Second, func(p *corev1.Pod) string {
		if problem := podRunning(p); problem != "" {
			return problem + eventList(ln.podEvents(t, "hostexec"))
		}
		return ""
	})
	for ip, want := range map[string]string{hostIP: "hq2", "127.0.0.1": "hq1"} {
		eventually(t, 20*time.Second, func() string {
			r := ln.k.run("exec", "hostexec", "--", "sh", "-c", fmt.Sprintf(`printf 'GET /hostname HTTP/1.0\r\n\r\n' | nc %s %d`, ip, port))
			if r.err != nil || !strings.HasSuffix(strings.TrimSpace(r.stdout), want) {
				return fmt.Sprintf("from the host network to %s:%d, want %s: %s", ip, port, want, r)
			}
			return ""
		})
	}

	// 0.0.0.0 conflicts with hq2: bound to the node, the kubelet refuses it.
	hp4 := hostPortPod("hp4", "", port, corev1.ProtocolTCP, ln.node.Name)
	hp4.Spec.RestartPolicy = corev1.RestartPolicyNever
	if _, err := pods.Create(ctx, hp4, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ln.waitPod(t, "hp4", 30*time.Second, func(p *corev1.Pod) string {
		if p.Status.Phase != corev1.PodFailed || p.Status.Reason != "NodePorts" ||
			p.Status.Message != "Pod was rejected: Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports" {
			return fmt.Sprintf("phase %s reason %q message %q", p.Status.Phase, p.Status.Reason, p.Status.Message)
		}
		return ""
	})
	// Through the scheduler: unschedulable.
	hp5 := hostPortPod("hp5", "0.0.0.0", port, corev1.ProtocolTCP, "")
	hp5.Spec.NodeSelector = map[string]string{corev1.LabelHostname: ln.node.Labels[corev1.LabelHostname]}
	if _, err := pods.Create(ctx, hp5, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ln.waitPod(t, "hp5", 30*time.Second, func(p *corev1.Pod) string {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable &&
				strings.Contains(c.Message, "node(s) didn't have free ports for the requested pod ports") {
				return ""
			}
		}
		return fmt.Sprintf("node %q conditions %+v", p.Spec.NodeName, p.Status.Conditions)
	})
}

// testStatefulSetRecreatesRejected: as "Should recreate evicted
// statefulset": a StatefulSet's pod bound to the node where another pod
// holds its host port is rejected by the kubelet (Failed), deleted and
// recreated by the controller until the port is free, then runs.
func (ln *localNode) testStatefulSetRecreatesRejected(t *testing.T) {
	ctx := context.Background()
	pods := ln.admin.CoreV1().Pods(ln.k.ns)
	const port = 21017
	holder := hostPortPod("test-pod", "", port, corev1.ProtocolTCP, ln.node.Name)
	if _, err := pods.Create(ctx, holder, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ln.waitPod(t, "test-pod", 60*time.Second, podRunning)

	template := hostPortPod("ss", "", port, corev1.ProtocolTCP, ln.node.Name)
	replicas := int32(1)
	labels := map[string]string{"app": "ss"}
	set := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "ss"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &replicas, ServiceName: "test", Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: template.Spec},
		},
	}
	if _, err := ln.admin.AppsV1().StatefulSets(ln.k.ns).Create(ctx, set, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = ln.admin.AppsV1().StatefulSets(ln.k.ns).Delete(ctx, "ss", metav1.DeleteOptions{})
		_ = pods.Delete(ctx, "test-pod", metav1.DeleteOptions{})
	})
	// Rejected, deleted, recreated: two UIDs of ss-0 seen, the first
	// Failed by NodePorts.
	seen := map[types.UID]bool{}
	var rejected *corev1.Pod
	eventually(t, 60*time.Second, func() string {
		p, err := pods.Get(ctx, "ss-0", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		seen[p.UID] = true
		if p.Status.Phase == corev1.PodFailed && rejected == nil {
			rejected = p
		}
		if rejected == nil || len(seen) < 2 {
			return fmt.Sprintf("ss-0 %s phase %s reason %q, %d pods seen", p.UID, p.Status.Phase, p.Status.Reason, len(seen))
		}
		return ""
	})
	if rejected.Status.Reason != "NodePorts" {
		t.Errorf("rejected ss-0: reason %q message %q, want NodePorts", rejected.Status.Reason, rejected.Status.Message)
	}
	zero := int64(0)
	if err := pods.Delete(ctx, "test-pod", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	ln.waitPod(t, "ss-0", 90*time.Second, func(p *corev1.Pod) string {
		if p.UID == rejected.UID {
			return "not recreated"
		}
		return podRunning(p)
	})
}

// publishSameHostPort runs <prefix>1..3 on port of 127.0.0.1/TCP, of
// hostIP/TCP and of hostIP/UDP, and checks each is reached through its
// own.
func (ln *localNode) publishSameHostPort(t *testing.T, prefix, hostIP string, port int) {
	t.Helper()
	ctx := context.Background()
	pods := ln.admin.CoreV1().Pods(ln.k.ns)
	for _, p := range []*corev1.Pod{
		hostPortPod(prefix+"1", "127.0.0.1", int32(port), corev1.ProtocolTCP, ln.node.Name),
		hostPortPod(prefix+"2", hostIP, int32(port), corev1.ProtocolTCP, ln.node.Name),
		hostPortPod(prefix+"3", hostIP, int32(port), corev1.ProtocolUDP, ln.node.Name),
	} {
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ln.waitPod(t, prefix+"1", 60*time.Second, podRunning)
	ln.waitPod(t, prefix+"2", 60*time.Second, podRunning)
	udpPod := ln.waitPod(t, prefix+"3", 60*time.Second, podRunning)
	target := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	eventually(t, 20*time.Second, func() string {
		if got, err := hostnameVia(target, hostIP); err != nil || got != prefix+"1" {
			return fmt.Sprintf("%s from %s: %q %v, want %s1", target, hostIP, got, err, prefix)
		}
		return ""
	})
	target = net.JoinHostPort(hostIP, strconv.Itoa(port))
	eventually(t, 20*time.Second, func() string {
		if got, err := hostnameVia(target, ""); err != nil || got != prefix+"2" {
			return fmt.Sprintf("%s: %q %v, want %s2", target, got, err, prefix)
		}
		return ""
	})
	// UDP: a datagram to hostIP:port is translated to the UDP pod's 8080
	// (the connection tracking shows its reply direction from the pod).
	eventually(t, 20*time.Second, func() string {
		conn, err := net.Dial("udp", target)
		if err != nil {
			return err.Error()
		}
		_, _ = conn.Write([]byte("ping\n"))
		conn.Close()
		out, err := exec.Command("conntrack", "-L", "-p", "udp", "--orig-dst", hostIP, "--orig-port-dst", strconv.Itoa(port)).CombinedOutput()
		if err != nil {
			return fmt.Sprintf("conntrack: %v: %s", err, out)
		}
		if !strings.Contains(string(out), "src="+udpPod.Status.PodIP+" ") || !strings.Contains(string(out), "sport=8080 ") {
			return fmt.Sprintf("UDP %s not translated to %s:8080: %s", target, udpPod.Status.PodIP, out)
		}
		return ""
	})
}

// testPreemptionExecutionPath: as SchedulerPreemption's
// PreemptionExecutionPath: ReplicaSets of priorities 1, 2 and 3 hold
// 200, 300 and 450 of the node's 1000 example.com/fakecpu; a priority 4
// pod of 500 preempts the pods of the first two (the 450 one is
// reprieved) exactly once each: their ReplicaSets create one pod more
// each, which stay pending, and nothing else is preempted.
func (ln *localNode) testPreemptionExecutionPath(t *testing.T) {
	ctx := context.Background()
	const fakecpu = corev1.ResourceName("example.com/fakecpu")
	setFakecpu := func(n int64) {
		node, err := ln.admin.CoreV1().Nodes().Get(ctx, ln.node.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		updated := node.DeepCopy()
		if n > 0 {
			updated.Status.Capacity[fakecpu] = *resource.NewQuantity(n, resource.DecimalSI)
			updated.Status.Allocatable[fakecpu] = *resource.NewQuantity(n, resource.DecimalSI)
		} else {
			delete(updated.Status.Capacity, fakecpu)
			delete(updated.Status.Allocatable, fakecpu)
		}
		ln.patchNodeStatus(t, node, updated)
	}
	setFakecpu(1000)
	t.Cleanup(func() { setFakecpu(0) })
	prefix := strings.ToLower(ln.k.ns) + "-p"
	for i := 1; i <= 4; i++ {
		pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: prefix + strconv.Itoa(i)}, Value: int32(i)}
		if _, err := ln.admin.SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ln.admin.SchedulingV1().PriorityClasses().Delete(ctx, pc.Name, metav1.DeleteOptions{}) })
	}
	pods := ln.admin.CoreV1().Pods(ln.k.ns)
	list, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	created := map[string]int{}
	countCreated := func() {
		for {
			select {
			case e := <-w.ResultChan():
				if p, ok := e.Object.(*corev1.Pod); ok && e.Type == "ADDED" {
					for _, rs := range []string{"rs-pod1", "rs-pod2", "rs-pod3"} {
						if strings.HasPrefix(p.Name, rs) {
							created[rs]++
						}
					}
				}
			default:
				return
			}
		}
	}
	sets := ln.admin.AppsV1().ReplicaSets(ln.k.ns)
	for i, amount := range []string{"200", "300", "450"} {
		name := "pod" + strconv.Itoa(i+1)
		p := pausePod(name, prefix+strconv.Itoa(i+1), corev1.ResourceList{fakecpu: resource.MustParse(amount)}, ln.node.Name)
		one := int32(1)
		labels := map[string]string{"name": name}
		rs := &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: "rs-" + name},
			Spec: appsv1.ReplicaSetSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: p.Spec}},
		}
		if _, err := sets.Create(ctx, rs, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sets.Delete(ctx, rs.Name, metav1.DeleteOptions{}) })
		eventually(t, 60*time.Second, func() string {
			got, err := sets.Get(ctx, rs.Name, metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			if got.Status.AvailableReplicas != 1 {
				return fmt.Sprintf("%s: %d available", rs.Name, got.Status.AvailableReplicas)
			}
			return ""
		})
	}
	// Not "pod4" as upstream: the 0.0.0.0 hostPort subtest's pod4 and the
	// extended-resource subtest's preemptor may still be terminating in
	// this shared namespace.
	preemptor := pausePod("rs-preemptor", prefix+"4", corev1.ResourceList{fakecpu: resource.MustParse("500")}, ln.node.Name)
	if _, err := pods.Create(ctx, preemptor, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pods.Delete(ctx, "rs-preemptor", metav1.DeleteOptions{}) })
	ln.waitPod(t, "rs-preemptor", 60*time.Second, func(p *corev1.Pod) string {
		if p.Spec.NodeName == "" {
			return "rs-preemptor not bound"
		}
		return podRunning(p)
	})
	want := map[string]int{"rs-pod1": 2, "rs-pod2": 2, "rs-pod3": 1}
	eventually(t, 30*time.Second, func() string {
		countCreated()
		for rs, n := range want {
			if created[rs] != n {
				return fmt.Sprintf("pods created %v, want %v", created, want)
			}
		}
		return ""
	})
	// Stable: nothing more preempted.
	time.Sleep(5 * time.Second)
	countCreated()
	for rs, n := range want {
		if created[rs] != n {
			t.Errorf("after 5 s pods created %v, want %v", created, want)
			break
		}
	}
}

// testHostPortAnyAddressConflict: as SchedulerPredicates' "conflict
// between pods with same hostPort and protocol but one using 0.0.0.0
// hostIP": through a node label just added, a pod on 0.0.0.0:54322 runs,
// one on the InternalIP's 54322 stays unschedulable.
func (ln *localNode) testHostPortAnyAddressConflict(t *testing.T) {
	ctx := context.Background()
	pods := ln.admin.CoreV1().Pods(ln.k.ns)
	key := "kubernetes.io/e2e-" + strings.ToLower(ln.k.ns)
	label := func(patch string) {
		if _, err := ln.admin.CoreV1().Nodes().Patch(ctx, ln.node.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	label(fmt.Sprintf(`{"metadata":{"labels":{%q:"95"}}}`, key))
	t.Cleanup(func() { label(fmt.Sprintf(`{"metadata":{"labels":{%q:null}}}`, key)) })
	const port = 54322
	for _, p := range []*corev1.Pod{
		hostPortPod("pod4", "", port, corev1.ProtocolTCP, ""),
		hostPortPod("pod5", ln.internalIP(t), port, corev1.ProtocolTCP, ""),
	} {
		p.Spec.NodeSelector = map[string]string{key: "95"}
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pods.Delete(ctx, p.Name, metav1.DeleteOptions{}) })
		if p.Name == "pod4" {
			ln.waitPod(t, "pod4", 60*time.Second, podRunning)
		}
	}
	ln.waitPod(t, "pod5", 30*time.Second, func(p *corev1.Pod) string {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				return ""
			}
		}
		return fmt.Sprintf("node %q phase %s conditions %+v", p.Spec.NodeName, p.Status.Phase, p.Status.Conditions)
	})
	// Still not placed a while later.
	time.Sleep(3 * time.Second)
	if p, err := pods.Get(ctx, "pod5", metav1.GetOptions{}); err != nil {
		t.Errorf("pod5: %v", err)
	} else if p.Spec.NodeName != "" {
		t.Errorf("pod5 bound to %q, want it unschedulable", p.Spec.NodeName)
	}
}
