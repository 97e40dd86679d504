package noderesources

import (
	"math"

	configv1 "k8s.io/kube-scheduler/config/v1"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

// maxCustomPriorityScore is the top of a utilization shape's scores;
// shape scores are scaled by MaxNodeScore/maxCustomPriorityScore.
const maxCustomPriorityScore = 10

// weighted combines per-resource scores by the resources' weights; nodes
// lacking a resource (allocatable 0) leave it out.
func weighted(resources []configv1.ResourceSpec, per func(requested, allocatable int64) int64) func(requested, allocated, allocatable []int64) int64 {
	return func(requested, _, allocatable []int64) int64 {
		var sum, weights int64
		for i := range requested {
			if allocatable[i] == 0 {
				continue
			}
			sum += per(requested[i], allocatable[i]) * resources[i].Weight
			weights += resources[i].Weight
		}
		if weights == 0 {
			return 0
		}
		return sum / weights
	}
}

// leastRequestedScore favours free nodes: (capacity-requested)/capacity.
func leastRequestedScore(requested, capacity int64) int64 {
	if capacity == 0 || requested > capacity {
		return 0
	}
	return (capacity - requested) * framework.MaxNodeScore / capacity
}

// mostRequestedScore favours full nodes: requested/capacity, capped.
func mostRequestedScore(requested, capacity int64) int64 {
	if capacity == 0 {
		return 0
	}
	if requested > capacity {
		requested = capacity
	}
	return requested * framework.MaxNodeScore / capacity
}

type shapePoint struct{ utilization, score int64 }

// brokenLinear interpolates the shape at utilization p (0-100); outside
// the points it is the nearest end's score.
func brokenLinear(shape []shapePoint) func(int64) int64 {
	return func(p int64) int64 {
		for i := range shape {
			if p <= shape[i].utilization {
				if i == 0 {
					return shape[0].score
				}
				a, b := shape[i-1], shape[i]
				return a.score + (b.score-a.score)*(p-a.utilization)/(b.utilization-a.utilization)
			}
		}
		return shape[len(shape)-1].score
	}
}

// requestedToCapacityRatioScorer scores each resource's utilization on
// the shape; resources scoring 0 are left out of the weighted mean, which
// is rounded (upstream's behaviour).
func requestedToCapacityRatioScorer(resources []configv1.ResourceSpec, points []configv1.UtilizationShapePoint) func(requested, allocated, allocatable []int64) int64 {
	shape := make([]shapePoint, 0, len(points))
	for _, p := range points {
		shape = append(shape, shapePoint{int64(p.Utilization), int64(p.Score) * (framework.MaxNodeScore / maxCustomPriorityScore)})
	}
	f := brokenLinear(shape)
	per := func(requested, capacity int64) int64 {
		if capacity == 0 || requested > capacity {
			return f(100)
		}
		return f(requested * 100 / capacity)
	}
	return func(requested, _, allocatable []int64) int64 {
		var sum, weights int64
		for i := range requested {
			if allocatable[i] == 0 {
				continue
			}
			if s := per(requested[i], allocatable[i]); s > 0 {
				sum += s * resources[i].Weight
				weights += resources[i].Weight
			}
		}
		if weights == 0 {
			return 0
		}
		return int64(math.Round(float64(sum) / float64(weights)))
	}
}

// balancedResourceScorer (upstream v1.37): how much placing the pod
// improves the balance of the node's resource fractions, centred on 50:
// 50 + (50 + balance(with pod) - balance(without))/2.
func balancedResourceScorer(requested, allocated, allocatable []int64) int64 {
	with := balancedResourceScore(requested, allocatable)
	without := balancedResourceScore(allocated, allocatable)
	return framework.MaxNodeScore/2 + (framework.MaxNodeScore/2+with-without)/2
}

// balancedResourceScore is (1 - standard deviation of the requested
// fractions, each capped at 1) * 100; for two resources the deviation is
// half their difference.
func balancedResourceScore(requested, allocatable []int64) int64 {
	var fractions []float64
	var total float64
	for i := range requested {
		if allocatable[i] == 0 {
			continue
		}
		f := float64(requested[i]) / float64(allocatable[i])
		if f > 1 {
			f = 1
		}
		total += f
		fractions = append(fractions, f)
	}
	std := 0.0
	switch {
	case len(fractions) == 2:
		std = math.Abs((fractions[0] - fractions[1]) / 2)
	case len(fractions) > 2:
		mean := total / float64(len(fractions))
		var sum float64
		for _, f := range fractions {
			sum += (f - mean) * (f - mean)
		}
		std = math.Sqrt(sum / float64(len(fractions)))
	}
	return int64((1 - std) * float64(framework.MaxNodeScore))
}
