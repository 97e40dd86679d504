package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// endpointsManifest: a Service whose named target port the pods resolve,
// three pods and one that the simulation keeps not Ready.
const endpointsManifest = `
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, labels: {app: web}}
spec:
  containers:
  - {name: nginx, image: nginx, ports: [{name: http, containerPort: 8080}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, labels: {app: web}}
spec:
  containers:
  - {name: nginx, image: nginx, ports: [{name: http, containerPort: 8080}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, labels: {app: web}}
spec:
  containers:
  - {name: nginx, image: nginx, ports: [{name: http, containerPort: 8080}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-unready
  labels: {app: web}
  annotations: {skiff.dev/sim-ready: "false"}
spec:
  containers:
  - {name: nginx, image: nginx, ports: [{name: http, containerPort: 8080}]}
`

// TestEndpointsControllers: with skiff server and two simulated nodes
// (pod IPs from the nodes' podCIDRs), through stock kubectl: a Service
// over three pods lists their IPs with the resolved target port in `get
// endpoints` and `get endpointslices` (labels and owner as upstream's); a
// pod kept not Ready is a notReadyAddress and ready=false; a pod deleted
// leaves both; a selector-less Service's own Endpoints are mirrored to a
// slice.
func TestEndpointsControllers(t *testing.T) {
	srv, err := startServer(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	stopOnCleanup(t, srv)
	startAgent(t, srv, "--simulate", "2", "--simulate-pod-cidr-from-node")
	k := newKctl(t, firstKubectl(t), srv)
	eventually(t, 30*time.Second, func() string {
		if out := k.ok(t, "get", "nodes", "--no-headers"); strings.Count(out, " Ready ") != 2 {
			return "nodes:\n" + out
		}
		return ""
	})
	waitServiceAccount(t, k)
	k.okStdin(t, endpointsManifest, "apply", "-f", "-")

	podIP := map[string]string{}
	eventually(t, 30*time.Second, func() string {
		out := k.ok(t, "get", "pods", "-l", "app=web", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.podIP}={.status.phase}{"\n"}{end}`)
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Split(line, "="); len(f) == 3 && f[1] != "" && f[2] == "Running" {
				podIP[f[0]] = f[1]
			}
		}
		if len(podIP) != 4 {
			return "pods:\n" + out
		}
		return ""
	})
	ready := []string{podIP["web-0"], podIP["web-1"], podIP["web-2"]}
	slices.Sort(ready)
	unready := podIP["web-unready"]
	t.Logf("pod IPs %v", podIP)

	// Endpoints: the ready pods' IPs under addresses, the other under
	// notReadyAddresses, port 8080 named http.
	endpointsAre := func(wantReady []string, wantNotReady string) {
		t.Helper()
		eventually(t, 20*time.Second, func() string {
			out := k.jsonpath(t, `{.subsets[*].addresses[*].ip} / {.subsets[*].notReadyAddresses[*].ip} / {.subsets[*].ports[*].name}:{.subsets[*].ports[*].port} / {.metadata.labels.endpoints\.kubernetes\.io/managed-by}`, "endpoints", "web")
			f := strings.Split(out, " / ")
			if len(f) != 4 {
				return "endpoints: " + out
			}
			got := strings.Fields(f[0])
			slices.Sort(got)
			if !slices.Equal(got, wantReady) || strings.TrimSpace(f[1]) != wantNotReady || f[2] != "http:8080" || f[3] != "endpoint-controller" {
				return "endpoints web: " + out
			}
			return ""
		})
		table := k.ok(t, "get", "endpoints", "web")
		for _, ip := range wantReady {
			assertContains(t, table, ip+":8080")
		}
	}
	endpointsAre(ready, unready)

	// EndpointSlices: one IPv4 slice of the Service with all four, the
	// unready one ready=false.
	slicesAre := func(wantReady []string, wantNotReady string) {
		t.Helper()
		eventually(t, 20*time.Second, func() string {
			out := k.jsonpath(t, `{range .items[*]}{.addressType} {.ports[0].name}:{.ports[0].port} {.metadata.labels.endpointslice\.kubernetes\.io/managed-by} {.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}{"\n"}{range .endpoints[*]}{.addresses[0]}={.conditions.ready}={.nodeName}{"\n"}{end}{end}`,
				"endpointslices", "-l", "kubernetes.io/service-name=web")
			lines := strings.Split(out, "\n")
			if len(lines) == 0 || lines[0] != "IPv4 http:8080 endpointslice-controller.k8s.io Service/web" {
				return "endpointslices: " + out
			}
			var gotReady []string
			gotNotReady := ""
			for _, l := range lines[1:] {
				f := strings.Split(l, "=")
				if len(f) != 3 || !strings.HasPrefix(f[2], "sim-") {
					return "endpointslices: " + out
				}
				if f[1] == "true" {
					gotReady = append(gotReady, f[0])
				} else {
					gotNotReady = f[0]
				}
			}
			slices.Sort(gotReady)
			if !slices.Equal(gotReady, wantReady) || gotNotReady != wantNotReady {
				return "endpointslices: " + out
			}
			return ""
		})
		table := k.ok(t, "get", "endpointslices", "-l", "kubernetes.io/service-name=web")
		assertContains(t, table, "IPv4", "8080")
	}
	slicesAre(ready, unready)

	// A pod deleted leaves both.
	k.ok(t, "delete", "pod", "web-1", "--wait=false")
	var left []string
	for _, ip := range ready {
		if ip != podIP["web-1"] {
			left = append(left, ip)
		}
	}
	endpointsAre(left, unready)
	slicesAre(left, unready)

	// A Service without selector: its Endpoints are the user's, mirrored.
	k.okStdin(t, `
apiVersion: v1
kind: Service
metadata: {name: ext}
spec:
  ports: [{name: db, port: 5432}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: ext}
subsets:
- addresses: [{ip: 192.168.50.1}]
  ports: [{name: db, port: 5432}]
`, "apply", "-f", "-")
	eventually(t, 20*time.Second, func() string {
		out := k.jsonpath(t, `{range .items[*]}{.metadata.labels.endpointslice\.kubernetes\.io/managed-by} {.endpoints[*].addresses[0]} {.ports[0].port}{"\n"}{end}`,
			"endpointslices", "-l", "kubernetes.io/service-name=ext")
		if out != "endpointslicemirroring-controller.k8s.io 192.168.50.1 5432" {
			return "mirrored slices: " + out
		}
		return ""
	})
}

// waitServiceAccount waits for the namespace's default ServiceAccount.
func waitServiceAccount(t *testing.T, k *kctl) {
	t.Helper()
	eventually(t, 20*time.Second, func() string {
		if r := k.run("get", "serviceaccount", "default"); r.err != nil {
			return r.combined()
		}
		return ""
	})
}
