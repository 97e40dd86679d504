package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/test/nodeimages"
)

// testProbes: liveness, readiness and startup probes by exec, httpGet and
// tcpSocket, as upstream's kubelet runs them. The pods start together and
// are checked one after the other.
func (ln *localNode) testProbes(t *testing.T) {
	ln.apply(t, fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: liveness}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 30
  containers:
  - name: liveness
    image: %[1]s
    command: [sh, -c, 'touch /tmp/healthy; sleep 4; rm /tmp/healthy; sleep 3600']
    livenessProbe:
      exec: {command: [cat, /tmp/healthy]}
      periodSeconds: 1
      failureThreshold: 3
      terminationGracePeriodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata: {name: ready, labels: {app: ready}}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: %[1]s
    command: [sh, -c, 'touch /tmp/ready; exec httpd -f -p 8080 -h /etc']
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      exec: {command: [test, -f, /tmp/ready]}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata: {name: ready}
spec:
  selector: {app: ready}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata: {name: startup}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: startup
    image: %[1]s
    command: [sleep, "3600"]
    startupProbe:
      exec: {command: [test, -f, /tmp/started]}
      periodSeconds: 1
      failureThreshold: 60
    livenessProbe:
      exec: {command: [test, -f, /tmp/alive]}
      periodSeconds: 1
      failureThreshold: 1
    readinessProbe:
      exec: {command: ["true"]}
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata: {name: netprobe}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: http
    image: %[1]s
    command: [httpd, -f, -p, "8080", -h, /etc]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /hostname, port: http}
      periodSeconds: 1
    livenessProbe:
      httpGet: {path: /hostname, port: 8080}
      periodSeconds: 1
      failureThreshold: 1
  - name: tcp
    image: %[1]s
    command: [nc, -ll, -p, "9090", -e, "true"]
    readinessProbe:
      tcpSocket: {port: 9090}
      periodSeconds: 1
    livenessProbe:
      tcpSocket: {port: 9090}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata: {name: netprobe-bad}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: http
    image: %[1]s
    command: [httpd, -f, -p, "8080", -h, /etc]
    readinessProbe:
      httpGet: {path: /missing, port: 8080}
      periodSeconds: 1
  - name: tcp
    image: %[1]s
    command: [sleep, "3600"]
    readinessProbe:
      tcpSocket: {port: 9999}
      periodSeconds: 1
`, nodeimages.BusyboxImage))
	t.Cleanup(func() {
		ln.k.run("delete", "pod", "liveness", "ready", "startup", "netprobe", "netprobe-bad", "--wait=false")
		ln.k.run("delete", "service", "ready", "--wait=false")
	})

	t.Run("StartupGatesTheOthers", ln.testStartupProbe)
	t.Run("LivenessRestarts", ln.testLivenessProbe)
	t.Run("ReadinessEndpoints", ln.testReadinessProbe)
	t.Run("HTTPAndTCP", ln.testNetworkProbes)
}

// testLivenessProbe: an exec liveness probe that starts failing 4 s after
// the start kills the container after failureThreshold (3) × periodSeconds
// (1 s), within the probe's own terminationGracePeriodSeconds (1 s, not
// the pod's 30 s); it is restarted, with upstream's events.
func (ln *localNode) testLivenessProbe(t *testing.T) {
	pod := ln.waitPod(t, "liveness", 60*time.Second, func(p *corev1.Pod) string {
		if len(p.Status.ContainerStatuses) == 0 {
			return "no container status"
		}
		c := p.Status.ContainerStatuses[0]
		if c.RestartCount < 1 || c.State.Running == nil || c.LastTerminationState.Terminated == nil {
			return "not restarted yet: " + containerStates(p)
		}
		return ""
	})
	c := pod.Status.ContainerStatuses[0]
	last := c.LastTerminationState.Terminated
	// Times have a resolution of a second: the probe fails from 4 s on,
	// the third failure comes 2 s later, the kill takes at most 1 s.
	if lived := last.FinishedAt.Sub(last.StartedAt.Time); lived < 5*time.Second || lived > 12*time.Second {
		t.Errorf("the container lived %s (%s to %s), want about 4 s + 3 × 1 s", lived, last.StartedAt, last.FinishedAt)
	}
	if c.RestartCount != 1 || last.ExitCode != 137 || last.Reason != "Error" {
		t.Errorf("after the liveness kill: restartCount %d, last state %+v; want 1 restart, exit code 137 (SIGKILL after the probe's grace period), reason Error", c.RestartCount, last)
	}
	events := ln.podEvents(t, "liveness")
	if findEvent(events, "Unhealthy", "Liveness probe failed: cat: can't open '/tmp/healthy': No such file or directory") == nil {
		t.Errorf("no Unhealthy event with the probe's output:%s", eventList(events))
	}
	if findEvent(events, "Killing", "Container liveness failed liveness probe, will be restarted") == nil {
		t.Errorf("no Killing event with upstream's message:%s", eventList(events))
	}
}

// testReadinessProbe: a readiness probe failing takes the pod out of its
// Service's EndpointSlice (ready=false) and back in when it passes again.
func (ln *localNode) testReadinessProbe(t *testing.T) {
	pod := ln.waitPod(t, "ready", 60*time.Second, podAllReady)
	ln.waitEndpoint(t, "ready", pod.Status.PodIP, true)
	body := ln.k.ok(t, "get", "--raw", "/api/v1/namespaces/"+ln.k.ns+"/services/ready:80/proxy/hostname")
	if body != "ready" {
		t.Errorf("services/proxy of service ready: %q, want the pod's hostname", body)
	}

	ln.k.ok(t, "exec", "ready", "--", "rm", "/tmp/ready")
	ln.waitPod(t, "ready", 20*time.Second, func(p *corev1.Pod) string {
		if cond := condition(p, corev1.PodReady); !strings.HasPrefix(cond, "False") {
			return "Ready condition " + cond
		}
		if c := p.Status.ContainerStatuses[0]; c.Ready || c.State.Running == nil || c.RestartCount != 0 {
			return "container " + containerStates(p) + ", want running, not ready, not restarted"
		}
		return ""
	})
	ln.waitEndpoint(t, "ready", pod.Status.PodIP, false)
	if e := findEvent(ln.podEvents(t, "ready"), "Unhealthy", "Readiness probe failed"); e == nil || e.Type != corev1.EventTypeWarning {
		t.Errorf("no Warning Unhealthy event for the readiness probe: %+v", e)
	}

	ln.k.ok(t, "exec", "ready", "--", "touch", "/tmp/ready")
	ln.waitPod(t, "ready", 20*time.Second, podAllReady)
	ln.waitEndpoint(t, "ready", pod.Status.PodIP, true)
}

// waitEndpoint waits until an EndpointSlice of service lists ip with
// conditions.ready as wanted.
func (ln *localNode) waitEndpoint(t *testing.T, service, ip string, ready bool) {
	t.Helper()
	eventually(t, 20*time.Second, func() string {
		slices, err := ln.admin.DiscoveryV1().EndpointSlices(ln.k.ns).List(context.Background(), metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=" + service,
		})
		if err != nil {
			return err.Error()
		}
		var seen []string
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				r := e.Conditions.Ready != nil && *e.Conditions.Ready
				seen = append(seen, fmt.Sprintf("%v ready=%t", e.Addresses, r))
				for _, a := range e.Addresses {
					if a == ip && r == ready {
						return ""
					}
				}
			}
		}
		return fmt.Sprintf("EndpointSlices of service %s: %v, want %s ready=%t", service, seen, ip, ready)
	})
}

// testStartupProbe: until the startup probe passes, neither the liveness
// probe (which would fail) nor the readiness probe (which would pass)
// runs; once it passes, both do.
func (ln *localNode) testStartupProbe(t *testing.T) {
	ln.waitPod(t, "startup", 60*time.Second, podRunning)
	until := time.Now().Add(4 * time.Second)
	for time.Now().Before(until) {
		p := ln.waitPod(t, "startup", 10*time.Second, podRunning)
		c := p.Status.ContainerStatuses[0]
		if c.Ready || (c.Started != nil && *c.Started) || c.RestartCount != 0 {
			t.Fatalf("before its startup probe passed: %s, started %v; want not started, not ready, no restart", containerStates(p), c.Started)
		}
		time.Sleep(500 * time.Millisecond)
	}
	ln.k.ok(t, "exec", "startup", "--", "touch", "/tmp/alive", "/tmp/started")
	p := ln.waitPod(t, "startup", 20*time.Second, func(p *corev1.Pod) string {
		c := p.Status.ContainerStatuses[0]
		if c.Started == nil || !*c.Started {
			return "not started: " + containerStates(p)
		}
		return podAllReady(p)
	})
	if c := p.Status.ContainerStatuses[0]; c.RestartCount != 0 {
		t.Errorf("the liveness probe restarted the container: %s", containerStates(p))
	}
	if e := findEvent(ln.podEvents(t, "startup"), "Unhealthy", "Startup probe failed"); e == nil {
		t.Errorf("no Unhealthy event of the startup probe")
	}
}

// testNetworkProbes: httpGet (port by name and number) and tcpSocket
// probes pass against busybox httpd and nc; against a missing path and a
// closed port they fail with upstream's messages.
func (ln *localNode) testNetworkProbes(t *testing.T) {
	ln.waitPod(t, "netprobe", 60*time.Second, podAllReady)
	// Liveness with failureThreshold 1 runs every second: a few more
	// seconds without a restart show it passes.
	time.Sleep(3 * time.Second)
	if p := ln.waitPod(t, "netprobe", 10*time.Second, podAllReady); p.Status.ContainerStatuses[0].RestartCount+p.Status.ContainerStatuses[1].RestartCount != 0 {
		t.Errorf("passing liveness probes restarted a container: %s", containerStates(p))
	}

	bad := ln.waitPod(t, "netprobe-bad", 60*time.Second, podRunning)
	for _, c := range bad.Status.ContainerStatuses {
		if c.Ready {
			t.Errorf("container %s of netprobe-bad is ready: %s", c.Name, containerStates(bad))
		}
	}
	eventually(t, 20*time.Second, func() string {
		events := ln.podEvents(t, "netprobe-bad")
		for _, want := range []string{
			"Readiness probe failed: HTTP probe failed with statuscode: 404",
			"Readiness probe failed: dial tcp " + bad.Status.PodIP + ":9999: connect: connection refused",
		} {
			if findEvent(events, "Unhealthy", want) == nil {
				return fmt.Sprintf("no Unhealthy event %q:%s", want, eventList(events))
			}
		}
		return ""
	})
}
