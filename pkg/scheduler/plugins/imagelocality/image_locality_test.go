package imagelocality

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/internal/testhandle"
)

// nodeWith is a NodeInfo whose ImageStates hold images (name → size MiB)
// each present on numNodes nodes.
func nodeWith(name string, numNodes int, images map[string]int64) *framework.NodeInfo {
	ni := testhandle.NodeInfo(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}})
	for img, size := range images {
		ni.ImageStates[img] = &framework.ImageStateSummary{Size: size * mb, NumNodes: numNodes}
	}
	return ni
}

func podWith(images ...string) *v1.Pod {
	p := &v1.Pod{}
	for _, img := range images {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Image: img})
	}
	return p
}

func TestScore(t *testing.T) {
	tests := []struct {
		name  string
		pod   *v1.Pod
		nodes []*framework.NodeInfo
		want  []int64
	}{
		{
			// Two nodes, each image on one of them (spread 1/2). n1 holds
			// 40 MiB → 20 MiB scaled, under 23: 0. n2 holds 300 MiB → 150:
			// 100*(150-23)/(2000-23) = 6.
			name: "two images, spread over two nodes",
			pod:  podWith("gcr.io/40", "gcr.io/300"),
			nodes: []*framework.NodeInfo{
				nodeWith("n1", 1, map[string]int64{"gcr.io/40:latest": 40}),
				nodeWith("n2", 1, map[string]int64{"gcr.io/300:latest": 300}),
			},
			want: []int64{0, 6},
		},
		{
			// Both images on both nodes: n1 250+10 = 260 MiB:
			// 100*(260-23)/(2000-23) = 11 on each.
			name: "images everywhere",
			pod:  podWith("gcr.io/250:latest", "gcr.io/10:v1"),
			nodes: []*framework.NodeInfo{
				nodeWith("n1", 2, map[string]int64{"gcr.io/250:latest": 250, "gcr.io/10:v1": 10}),
				nodeWith("n2", 2, map[string]int64{"gcr.io/250:latest": 250, "gcr.io/10:v1": 10}),
			},
			want: []int64{11, 11},
		},
		{
			// One image of 3000 MiB on every node saturates at 1000 MiB.
			name:  "saturated",
			pod:   podWith("big"),
			nodes: []*framework.NodeInfo{nodeWith("n1", 1, map[string]int64{"big:latest": 3000})},
			want:  []int64{100},
		},
		{
			name:  "tag must match",
			pod:   podWith("gcr.io/250:v2"),
			nodes: []*framework.NodeInfo{nodeWith("n1", 1, map[string]int64{"gcr.io/250:latest": 250})},
			want:  []int64{0},
		},
		{
			// A registry port is not a tag: "host:5000/img" means :latest.
			// 500 MiB on 1 of 1 node: 100*(500-23)/(1000-23) = 48.
			name:  "registry port",
			pod:   podWith("host:5000/img"),
			nodes: []*framework.NodeInfo{nodeWith("n1", 1, map[string]int64{"host:5000/img:latest": 500})},
			want:  []int64{48},
		},
		{
			// An image volume counts as one more image: 500 MiB against
			// 2000: 100*(500-23)/(2000-23) = 24.
			name: "image volume",
			pod: func() *v1.Pod {
				p := podWith("app")
				p.Spec.Volumes = []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{Image: &v1.ImageVolumeSource{Reference: "data:v1"}}}}
				return p
			}(),
			nodes: []*framework.NodeInfo{nodeWith("n1", 1, map[string]int64{"data:v1": 500})},
			want:  []int64{24},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := testhandle.New(tt.nodes)
			p, err := New(context.Background(), nil, h)
			if err != nil {
				t.Fatal(err)
			}
			pl := p.(*ImageLocality)
			for i, n := range tt.nodes {
				got, st := pl.Score(context.Background(), framework.NewCycleState(), tt.pod, n)
				if !st.IsSuccess() {
					t.Fatal(st)
				}
				if got != tt.want[i] {
					t.Errorf("node %d: score %d, want %d", i, got, tt.want[i])
				}
			}
		})
	}
}

func TestNormalizedImageName(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":                     "nginx:latest",
		"nginx:1.25":                "nginx:1.25",
		"registry:5000/nginx":       "registry:5000/nginx:latest",
		"registry:5000/nginx:1":     "registry:5000/nginx:1",
		"nginx@sha256:0123456789ab": "nginx@sha256:0123456789ab",
	} {
		if got := normalizedImageName(in); got != want {
			t.Errorf("normalizedImageName(%q) = %q, want %q", in, got, want)
		}
	}
}
