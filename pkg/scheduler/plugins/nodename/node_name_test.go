package nodename

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
	"github.com/skiff-dev/skiff/pkg/scheduler/plugins/internal/testhandle"
)

func TestNodeName(t *testing.T) {
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "foo"}}
	tests := []struct {
		name       string
		nodeName   string
		wantFilter *framework.Status
		wantPre    *framework.PreFilterResult
	}{
		{"no node name", "", nil, nil},
		{"same node", "foo", nil, &framework.PreFilterResult{NodeNames: sets.New("foo")}},
		{"other node", "bar", framework.NewStatus(framework.UnschedulableAndUnresolvable, "node(s) didn't match the requested node name"), &framework.PreFilterResult{NodeNames: sets.New("bar")}},
	}
	p, _ := New(context.Background(), nil, nil)
	pl := p.(*NodeName)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &v1.Pod{Spec: v1.PodSpec{NodeName: tt.nodeName}}
			ni := testhandle.NodeInfo(node)
			state := framework.NewCycleState()
			res, st := pl.PreFilter(context.Background(), state, pod, []*framework.NodeInfo{ni})
			if !st.IsSuccess() {
				t.Fatalf("PreFilter: %v", st)
			}
			if res.AllNodes() != tt.wantPre.AllNodes() || (!res.AllNodes() && !res.NodeNames.Equal(tt.wantPre.NodeNames)) {
				t.Errorf("PreFilter = %v, want %v", res, tt.wantPre)
			}
			if got := pl.Filter(context.Background(), state, pod, ni); !got.Equal(tt.wantFilter) {
				t.Errorf("Filter = %v, want %v", got, tt.wantFilter)
			}
		})
	}
}
