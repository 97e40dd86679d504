package volumebinding

import (
	"context"
	"math"

	v1 "k8s.io/api/core/v1"
	configv1 "k8s.io/kube-scheduler/config/v1"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

// maxCustomPriorityScore is the top of a shape point's score.
const maxCustomPriorityScore = 10

// defaultShape is upstream v1.37's with StorageCapacityScoring on: the
// emptier the volume would be, the better.
var defaultShape = []configv1.UtilizationShapePoint{{Utilization: 0, Score: maxCustomPriorityScore}, {Utilization: 100, Score: 0}}

// storageResource: bytes requested by a class's claims and the capacity
// of the PVs chosen for them.
type storageResource struct {
	requested, capacity int64
}

// buildScorer is upstream's volume capacity scorer: each class's
// utilization scored on the shape (points scaled to 0-100), the classes'
// mean rounded.
func buildScorer(points []configv1.UtilizationShapePoint) func(map[string]*storageResource) int64 {
	scale := framework.MaxNodeScore / maxCustomPriorityScore
	at := func(p int64) int64 {
		for i, pt := range points {
			if p > int64(pt.Utilization) {
				continue
			}
			if i == 0 {
				return int64(pt.Score) * scale
			}
			a := points[i-1]
			lo, hi := int64(a.Score)*scale, int64(pt.Score)*scale
			return lo + (hi-lo)*(p-int64(a.Utilization))/int64(pt.Utilization-a.Utilization)
		}
		return int64(points[len(points)-1].Score) * scale
	}
	return func(classes map[string]*storageResource) int64 {
		if len(classes) == 0 {
			return 0
		}
		var sum int64
		for _, r := range classes {
			if r.capacity == 0 || r.requested > r.capacity {
				sum += at(100)
				continue
			}
			sum += at(r.requested * 100 / r.capacity)
		}
		return int64(math.Round(float64(sum) / float64(len(classes))))
	}
}

// PreScore: Skip unless some node's choice binds static PVs (dynamic
// provisioning would be scored by CSIStorageCapacity, not done here).
func (pl *VolumeBinding) PreScore(_ context.Context, cs *framework.CycleState, _ *v1.Pod, _ []*framework.NodeInfo) *framework.Status {
	s, err := getStateData(cs)
	if err != nil {
		return framework.AsStatus(err)
	}
	if s.hasStaticBindings {
		return nil
	}
	return framework.NewStatus(framework.Skip)
}

// Score: how full the static PVs chosen on the node would be, by class.
func (pl *VolumeBinding) Score(_ context.Context, cs *framework.CycleState, _ *v1.Pod, nodeInfo *framework.NodeInfo) (int64, *framework.Status) {
	s, err := getStateData(cs)
	if err != nil {
		return 0, framework.AsStatus(err)
	}
	s.mu.Lock()
	volumes, ok := s.podVolumesByNode[nodeInfo.Node().Name]
	s.mu.Unlock()
	if !ok {
		return 0, nil
	}
	classes := map[string]*storageResource{}
	for _, b := range volumes.staticBindings {
		r := classes[b.pv.Spec.StorageClassName]
		if r == nil {
			r = &storageResource{}
			classes[b.pv.Spec.StorageClassName] = r
		}
		req := b.pvc.Spec.Resources.Requests[v1.ResourceStorage]
		capacity := b.pv.Spec.Capacity[v1.ResourceStorage]
		r.requested += req.Value()
		r.capacity += capacity.Value()
	}
	return pl.scorer(classes), nil
}

// ScoreExtensions: none.
func (pl *VolumeBinding) ScoreExtensions() framework.ScoreExtensions { return nil }
