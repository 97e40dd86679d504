package scheduler

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

// ErrNoNodesAvailable: the cluster has no nodes (upstream's text).
var ErrNoNodesAvailable = errors.New("no nodes available to schedule pods")

// Diagnosis is why a pod fits no node.
type Diagnosis struct {
	// NodeToStatus: each rejected node's status.
	NodeToStatus *framework.NodeToStatus
	// UnschedulablePlugins and PendingPlugins rejected the pod; only
	// their registered events move it back to activeQ.
	UnschedulablePlugins sets.Set[string]
	PendingPlugins       sets.Set[string]
	// PreFilterMsg: a PreFilter plugin rejected the pod for all nodes.
	PreFilterMsg string
	// PostFilterMsg: what preemption said.
	PostFilterMsg string
}

func newDiagnosis() Diagnosis {
	return Diagnosis{NodeToStatus: framework.NewNodeToStatus(nil, nil),
		UnschedulablePlugins: sets.New[string](), PendingPlugins: sets.New[string]()}
}

// AddPluginStatus records the plugin of a rejection.
func (d *Diagnosis) AddPluginStatus(s *framework.Status) {
	if s.Plugin() == "" {
		return
	}
	if s.Code() == framework.Pending {
		d.PendingPlugins.Insert(s.Plugin())
	} else if s.IsRejected() {
		d.UnschedulablePlugins.Insert(s.Plugin())
	}
}

// FitError: no node fits the pod.
type FitError struct {
	Pod         *v1.Pod
	NumAllNodes int
	Diagnosis   Diagnosis
}

// Error is upstream's message: "0/N nodes are available:", then the
// PreFilter message or the nodes' reasons counted and sorted by text,
// then the PostFilter (preemption) message.
func (f *FitError) Error() string {
	msg := fmt.Sprintf("0/%v nodes are available:", f.NumAllNodes)
	if f.Diagnosis.PreFilterMsg != "" {
		msg += fmt.Sprintf(" %v.", f.Diagnosis.PreFilterMsg)
	} else {
		reasons := map[string]int{}
		f.Diagnosis.NodeToStatus.ForEach(func(_ string, s *framework.Status) {
			for _, r := range s.Reasons() {
				reasons[r]++
			}
		})
		if n := f.Diagnosis.NodeToStatus.Len(); n < f.NumAllNodes {
			for _, r := range f.Diagnosis.NodeToStatus.AbsentNodesStatus().Reasons() {
				reasons[r] += f.NumAllNodes - n
			}
		}
		var list []string
		for r, n := range reasons {
			list = append(list, fmt.Sprintf("%v %v", n, r))
		}
		sort.Strings(list)
		if len(list) > 0 {
			msg += fmt.Sprintf(" %v.", strings.Join(list, ", "))
		}
	}
	if f.Diagnosis.PostFilterMsg != "" {
		msg += " " + f.Diagnosis.PostFilterMsg
	}
	return msg
}
