package scheduling_test

import (
	"testing"

	"github.com/skiff-dev/skiff/pkg/apis/apitesting"
	"github.com/skiff-dev/skiff/pkg/apis/scheduling"
)

// The expected objects are what an upstream v1.37.2 kube-apiserver returns
// for the same input (`kubectl create --dry-run=server`).

func TestPriorityClassDefaults(t *testing.T) {
	f := apitesting.Frame{Head: "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: pc}\nvalue: 5\n"}
	apitesting.RunDefaultingCases(t, f.Cases([]apitesting.DefaultingCase{
		{Name: "preempts lower priorities", In: "", Want: "preemptionPolicy: PreemptLowerPriority\n"},
		{Name: "never stays", In: "preemptionPolicy: Never\n", Want: "preemptionPolicy: Never\n"},
	}))
}

func TestSystemPriorityClasses(t *testing.T) {
	want := map[string]int32{"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
	classes := scheduling.SystemPriorityClasses()
	if len(classes) != len(want) {
		t.Fatalf("%d system priority classes, want %d", len(classes), len(want))
	}
	for _, pc := range classes {
		if v, ok := want[pc.Name]; !ok || pc.Value != v || pc.GlobalDefault || pc.Description == "" {
			t.Errorf("unexpected system priority class %s = %d (globalDefault %v)", pc.Name, pc.Value, pc.GlobalDefault)
		}
		if !scheduling.IsSystemPriorityClassName(pc.Name) {
			t.Errorf("IsSystemPriorityClassName(%q) = false", pc.Name)
		}
	}
	classes[0].Value = 1
	if scheduling.SystemPriorityClasses()[0].Value == 1 {
		t.Error("SystemPriorityClasses returns shared objects")
	}
	if scheduling.IsSystemPriorityClassName("system-other") {
		t.Error(`IsSystemPriorityClassName("system-other") = true`)
	}
}
