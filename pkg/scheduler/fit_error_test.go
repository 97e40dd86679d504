package scheduler

import (
	"fmt"
	"testing"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

func diagnosisOf(statuses map[string][]string, absent ...string) Diagnosis {
	d := newDiagnosis()
	for node, reasons := range statuses {
		d.NodeToStatus.Set(node, framework.NewStatus(framework.Unschedulable, reasons...))
	}
	if len(absent) > 0 {
		d.NodeToStatus.SetAbsentNodesStatus(framework.NewStatus(framework.UnschedulableAndUnresolvable, absent...))
	}
	return d
}

// TestFitErrorMessage: upstream's exact texts.
func TestFitErrorMessage(t *testing.T) {
	preemption := "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
	taint := "node(s) had untolerated taint {dedicated: infra}"
	many := map[string][]string{}
	for i := range 10 {
		many[fmt.Sprintf("u%d", i)] = []string{"node(s) were unschedulable"}
	}
	many["c1"], many["c2"] = []string{"Insufficient cpu"}, []string{"Insufficient cpu"}
	for _, tc := range []struct {
		name   string
		all    int
		d      Diagnosis
		post   string
		prefix string
		want   string
	}{
		{name: "issue example", all: 3, d: diagnosisOf(map[string][]string{"a": {"Insufficient cpu"}, "b": {taint}, "c": {taint}}), post: preemption,
			want: "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {dedicated: infra}. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."},
		{name: "several reasons per node", all: 2, d: diagnosisOf(map[string][]string{"a": {"Insufficient cpu", "Insufficient memory"}, "b": {"Insufficient memory"}}),
			want: "0/2 nodes are available: 1 Insufficient cpu, 2 Insufficient memory."},
		{name: "sorted as text", all: 12, d: diagnosisOf(many),
			want: "0/12 nodes are available: 10 node(s) were unschedulable, 2 Insufficient cpu."},
		{name: "absent nodes", all: 3, d: diagnosisOf(map[string][]string{"a": {"Insufficient cpu"}}, "node(s) didn't satisfy plugin(s) [NodeAffinity]"),
			want: "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) [NodeAffinity]."},
		{name: "prefilter", all: 3, d: diagnosisOf(nil), prefix: "pod has unbound immediate PersistentVolumeClaims", post: preemption,
			want: "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."},
		{name: "no reasons", all: 1, d: diagnosisOf(nil), want: "0/1 nodes are available:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.d.PreFilterMsg, tc.d.PostFilterMsg = tc.prefix, tc.post
			got := (&FitError{NumAllNodes: tc.all, Diagnosis: tc.d}).Error()
			if got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestNumFeasibleNodesToFind: upstream's adaptive percentage.
func TestNumFeasibleNodesToFind(t *testing.T) {
	for _, tc := range []struct {
		pct   int32
		nodes int
		want  int
	}{
		{0, 10, 10}, {0, 99, 99}, {0, 100, 100}, {0, 1000, 420}, {0, 5000, 500}, {0, 6000, 300}, {0, 10000, 500},
		{10, 150, 100}, {100, 150, 150}, {50, 1000, 500}, {1, 20000, 200},
	} {
		if got := NumFeasibleNodesToFind(tc.pct, tc.nodes); got != tc.want {
			t.Errorf("%d%% of %d nodes: %d, want %d", tc.pct, tc.nodes, got, tc.want)
		}
	}
}
