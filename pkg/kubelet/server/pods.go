package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// getPods is /pods: the kubelet's pods as a v1 PodList.
func (s *Server) getPods(w http.ResponseWriter, r *http.Request) {
	list := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
	for _, p := range s.cfg.Pods.Pods() {
		list.Items = append(list.Items, *p)
	}
	writeJSON(w, list)
}

// getSpec is /spec: the machine's description (cadvisor's MachineInfo).
func (s *Server) getSpec(w http.ResponseWriter, r *http.Request) {
	m, err := s.cfg.Machine()
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("Internal Error: %v", err))
		return
	}
	writeJSON(w, m)
}

// getSummary is /stats/summary[?only_cpu_and_memory=true].
func (s *Server) getSummary(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Stats == nil {
		writeError(w, http.StatusServiceUnavailable, "Internal Error: no stats provider")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("parse form failed: %v", err))
		return
	}
	only := r.Form["only_cpu_and_memory"]
	summary, err := s.cfg.Stats.Summary(r.Context(), len(only) == 1 && only[0] == "true")
	if err != nil {
		klog.ErrorS(err, "HTTP InternalServerError serving", "request", "/stats/summary")
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("Internal Error: %v", err))
		return
	}
	writeJSON(w, summary)
}

func writeJSON(w http.ResponseWriter, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(data); err != nil {
		klog.V(4).InfoS("Error writing response", "err", err)
	}
}

// pod finds the kubelet's pod by namespace and name.
func (s *Server) pod(namespace, name string) (*corev1.Pod, bool) {
	for _, p := range s.cfg.Pods.Pods() {
		if p.Namespace == namespace && p.Name == name {
			return p, true
		}
	}
	return nil, false
}

// containerSpec is the pod's container, init container or ephemeral
// container of that name.
func containerSpec(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	for i := range pod.Spec.EphemeralContainers {
		if pod.Spec.EphemeralContainers[i].Name == name {
			c := corev1.Container(pod.Spec.EphemeralContainers[i].EphemeralContainerCommon)
			return &c
		}
	}
	return nil
}

var errNoRuntime = errors.New("the node has no container runtime")

// sandboxIDs are the runtime's sandboxes of the pod, ready ones first,
// newest first (upstream's getSandboxIDByPodUID).
func (s *Server) sandboxIDs(ctx context.Context, uid types.UID) ([]string, error) {
	if s.cfg.Runtime == nil {
		return nil, errNoRuntime
	}
	sandboxes, err := s.cfg.Runtime.RuntimeService().ListPodSandbox(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("listing pod sandboxes: %w", err)
	}
	var ready, other []*runtimeapi.PodSandbox
	for _, sb := range sandboxes {
		if sb.GetMetadata().GetUid() != string(uid) {
			continue
		}
		if sb.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY {
			ready = append(ready, sb)
		} else {
			other = append(other, sb)
		}
	}
	var ids []string
	for _, list := range [][]*runtimeapi.PodSandbox{ready, other} {
		sortNewest(list)
		for _, sb := range list {
			ids = append(ids, sb.GetId())
		}
	}
	return ids, nil
}

func sortNewest(list []*runtimeapi.PodSandbox) {
	for i := 1; i < len(list); i++ {
		for j := i; j > 0 && list[j].GetCreatedAt() > list[j-1].GetCreatedAt(); j-- {
			list[j], list[j-1] = list[j-1], list[j]
		}
	}
}

// runningContainer is the runtime's ID of the pod's running container of
// that name ("" if none), as upstream's findContainer over the runtime's
// running pods.
func (s *Server) runningContainer(ctx context.Context, uid types.UID, name string) (string, error) {
	ids, err := s.sandboxIDs(ctx, uid)
	if err != nil {
		return "", err
	}
	rs := s.cfg.Runtime.RuntimeService()
	for _, sb := range ids {
		containers, err := rs.ListContainers(ctx, &runtimeapi.ContainerFilter{
			PodSandboxId: sb,
			State:        &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		})
		if err != nil {
			return "", fmt.Errorf("listing the containers of sandbox %s: %w", sb, err)
		}
		for _, c := range containers {
			if c.GetMetadata().GetName() == name {
				return c.GetId(), nil
			}
		}
	}
	return "", nil
}
