package e2e

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// testNodeProxy: the node's kubelet API through the apiserver's
// nodes/proxy (the seed's /api/v1/nodes/{node}/proxy/{pods,stats,spec}),
// and pods/proxy to a pod's port.
func (ln *localNode) testNodeProxy(t *testing.T) {
	k, node := ln.k, ln.node.Name
	base := "/api/v1/nodes/" + node + "/proxy/"

	t.Run("Healthz", func(t *testing.T) {
		if out := k.ok(t, "get", "--raw", base+"healthz"); out != "ok" {
			t.Errorf("nodes/proxy/healthz: %q", out)
		}
	})
	t.Run("StatsSummary", func(t *testing.T) {
		var s statsv1alpha1.Summary
		decodeRaw(t, k, base+"stats/summary", &s)
		n := s.Node
		if n.NodeName != node || n.CPU == nil || n.CPU.UsageCoreNanoSeconds == nil || n.Memory == nil ||
			n.Memory.WorkingSetBytes == nil || *n.Memory.WorkingSetBytes == 0 || n.Fs == nil || n.Fs.CapacityBytes == nil {
			t.Errorf("stats/summary node: %+v", n)
		}
		var web *statsv1alpha1.PodStats
		for i := range s.Pods {
			if s.Pods[i].PodRef.Name == "web" && s.Pods[i].PodRef.Namespace == k.ns {
				web = &s.Pods[i]
			}
		}
		if web == nil {
			t.Fatalf("stats/summary lists no pod web in %s: %d pods", k.ns, len(s.Pods))
		}
		if len(web.Containers) != 1 || web.Containers[0].Name != "web" || web.CPU == nil || web.Memory == nil || web.Memory.WorkingSetBytes == nil {
			t.Errorf("stats/summary of pod web: %+v", web)
		}
	})
	t.Run("Pods", func(t *testing.T) {
		var list corev1.PodList
		decodeRaw(t, k, base+"pods", &list)
		found := false
		for _, p := range list.Items {
			if p.Name == "web" && p.Namespace == k.ns {
				found = p.Spec.NodeName == node && p.UID != ""
			}
		}
		if list.Kind != "PodList" || !found {
			t.Errorf("nodes/proxy/pods: kind %q, %d pods, pod web found: %t", list.Kind, len(list.Items), found)
		}
	})
	t.Run("Spec", func(t *testing.T) {
		var spec struct {
			NumCores       int    `json:"num_cores"`
			MemoryCapacity uint64 `json:"memory_capacity"`
			MachineID      string `json:"machine_id"`
		}
		decodeRaw(t, k, base+"spec", &spec)
		if spec.NumCores == 0 || spec.MemoryCapacity == 0 {
			t.Errorf("nodes/proxy/spec: %+v, want cAdvisor's MachineInfo with cores and memory", spec)
		}
	})
	t.Run("PodProxy", func(t *testing.T) {
		if out := k.ok(t, "get", "--raw", "/api/v1/namespaces/"+k.ns+"/pods/web:8080/proxy/hostname"); out != "web" {
			t.Errorf("pods/proxy to web:8080/hostname: %q", out)
		}
	})
}

// decodeRaw decodes the JSON of `kubectl get --raw path` into v.
func decodeRaw(t *testing.T, k *kctl, path string, v any) {
	t.Helper()
	out := k.ok(t, "get", "--raw", path)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("get --raw %s: %v\n%s", path, err, abbreviate(out))
	}
}
