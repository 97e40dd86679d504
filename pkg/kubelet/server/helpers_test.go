package server

import (
	"context"
	"encoding/json"
	"fmt"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeCRI is the part of a CRI runtime the server uses; the rest of
// internalapi.RuntimeService panics if called.
type fakeCRI struct {
	internalapi.RuntimeService

	mu         sync.Mutex
	sandboxes  []*runtimeapi.PodSandbox
	containers []*runtimeapi.Container
	statuses   map[string]*runtimeapi.ContainerStatus
	stats      []*runtimeapi.ContainerStats
	streamURL  string
	execs      []*runtimeapi.ExecRequest
	execSync   func(id string, cmd []string) ([]byte, []byte, error)
}

func newFakeCRI() *fakeCRI { return &fakeCRI{statuses: map[string]*runtimeapi.ContainerStatus{}} }

func (f *fakeCRI) addSandbox(id, ns, name, uid string, ready bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	if ready {
		st = runtimeapi.PodSandboxState_SANDBOX_READY
	}
	f.sandboxes = append(f.sandboxes, &runtimeapi.PodSandbox{Id: id, Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: ns, Uid: uid}, State: st, CreatedAt: time.Now().UnixNano()})
}

func (f *fakeCRI) addContainer(id, sandbox, name string, state runtimeapi.ContainerState, logPath string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers = append(f.containers, &runtimeapi.Container{Id: id, PodSandboxId: sandbox, Metadata: &runtimeapi.ContainerMetadata{Name: name}, State: state, CreatedAt: time.Now().UnixNano()})
	f.statuses[id] = &runtimeapi.ContainerStatus{Id: id, Metadata: &runtimeapi.ContainerMetadata{Name: name}, State: state, LogPath: logPath}
}

func (f *fakeCRI) setState(id string, state runtimeapi.ContainerState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses[id].State = state
	for _, c := range f.containers {
		if c.Id == id {
			c.State = state
		}
	}
}

func (f *fakeCRI) ListPodSandbox(_ context.Context, filter *runtimeapi.PodSandboxFilter) ([]*runtimeapi.PodSandbox, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*runtimeapi.PodSandbox
	for _, sb := range f.sandboxes {
		if filter != nil && filter.State != nil && filter.State.State != sb.State {
			continue
		}
		out = append(out, sb)
	}
	return out, nil
}

func (f *fakeCRI) ListContainers(_ context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*runtimeapi.Container
	for _, c := range f.containers {
		if filter != nil && filter.State != nil && filter.State.State != c.State {
			continue
		}
		if filter != nil && filter.PodSandboxId != "" && filter.PodSandboxId != c.PodSandboxId {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

func (f *fakeCRI) ContainerStatus(_ context.Context, id string, _ bool) (*runtimeapi.ContainerStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.statuses[id]
	if !ok {
		return nil, status.Error(codes.NotFound, fmt.Sprintf("container %q not found", id))
	}
	return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{Id: st.Id, Metadata: st.Metadata, State: st.State, LogPath: st.LogPath}}, nil
}

func (f *fakeCRI) ListContainerStats(context.Context, *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats, nil
}

func (f *fakeCRI) PodSandboxStatus(_ context.Context, id string, _ bool) (*runtimeapi.PodSandboxStatusResponse, error) {
	return nil, status.Error(codes.NotFound, "no verbose status here")
}

func (f *fakeCRI) Exec(_ context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.execs = append(f.execs, req)
	return &runtimeapi.ExecResponse{Url: f.streamURL}, nil
}

func (f *fakeCRI) Attach(_ context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	return &runtimeapi.AttachResponse{Url: f.streamURL}, nil
}

func (f *fakeCRI) PortForward(_ context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	return &runtimeapi.PortForwardResponse{Url: f.streamURL}, nil
}

func (f *fakeCRI) ExecSync(_ context.Context, id string, cmd []string, _ time.Duration) ([]byte, []byte, error) {
	return f.execSync(id, cmd)
}

func decodeSummary(t interface{ Fatalf(string, ...any) }, body string) *statsapi.Summary {
	s := &statsapi.Summary{}
	if err := json.Unmarshal([]byte(body), s); err != nil {
		t.Fatalf("decoding the summary: %v: %.300s", err, body)
	}
	return s
}
