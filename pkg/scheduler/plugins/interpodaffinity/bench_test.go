package interpodaffinity

import (
	"context"
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

// BenchmarkPreFilterFilter: one cycle of a pod with hostname
// anti-affinity among 1000 nodes each running one such pod (the
// hack/bench anti-affinity scenario at its end).
func BenchmarkPreFilterFilter(b *testing.B) {
	web := map[string]string{"app": "web"}
	anti := required(nil, []v1.PodAffinityTerm{term(v1.LabelHostname, "app", "web")})
	var nodes []*framework.NodeInfo
	for i := 0; i < 1000; i++ {
		nodes = append(nodes, ni(mkNode(fmt.Sprintf("n%d", i), map[string]string{zone: fmt.Sprintf("z%d", i%10)}),
			mkPod(fmt.Sprintf("w%d", i), "", web, anti), mkPod(fmt.Sprintf("o%d", i), "", map[string]string{"app": "other"}, nil)))
	}
	h := newFakeHandle(nodes)
	p, err := New(context.Background(), nil, h)
	if err != nil {
		b.Fatal(err)
	}
	pl := p.(*InterPodAffinity)
	pod := mkPod("p", "", web, anti)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cs := framework.NewCycleState()
		if _, st := pl.PreFilter(context.Background(), cs, pod, nodes); !st.IsSuccess() {
			b.Fatal(st)
		}
		for _, n := range nodes {
			if st := pl.Filter(context.Background(), cs, pod, n); st.IsSuccess() {
				b.Fatal("fits")
			}
		}
	}
}
