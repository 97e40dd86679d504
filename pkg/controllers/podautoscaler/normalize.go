package podautoscaler

import (
	"math"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
)

// Upstream's scale-up limit without a behavior: max(2*current, 4).
const (
	scaleUpLimitFactor  = 2.0
	scaleUpLimitMinimum = 4.0
)

type timestampedRecommendation struct {
	recommendation int32
	timestamp      time.Time
}

type timestampedScaleEvent struct {
	replicaChange int32
	timestamp     time.Time
	outdated      bool
}

// history is what the controller remembers of one HPA between syncs, as
// upstream keeps it in memory (lost on restart, as upstream's).
type history struct {
	recommendations []timestampedRecommendation
	scaleUp         []timestampedScaleEvent
	scaleDown       []timestampedScaleEvent
}

// stabilizeRecommendation (no behavior): the highest recommendation of the
// downscale stabilization window, recording this one.
func (r *Reconciler) stabilizeRecommendation(h *history, desired int32) int32 {
	now := r.now()
	highest := desired
	cutoff := now.Add(-r.Config.DownscaleStabilization)
	old := -1
	for i, rec := range h.recommendations {
		if rec.timestamp.Before(cutoff) {
			old = i
		} else if rec.recommendation > highest {
			highest = rec.recommendation
		}
	}
	r.record(h, old, desired, now)
	return highest
}

func (r *Reconciler) record(h *history, old int, desired int32, now time.Time) {
	if old >= 0 {
		h.recommendations[old] = timestampedRecommendation{desired, now}
	} else {
		h.recommendations = append(h.recommendations, timestampedRecommendation{desired, now})
	}
}

// normalizeDesiredReplicas is upstream's normalization without a behavior.
func (r *Reconciler) normalizeDesiredReplicas(hpa *autoscalingv2.HorizontalPodAutoscaler, h *history, current, desired, minReplicas int32) int32 {
	stabilized := r.stabilizeRecommendation(h, desired)
	if stabilized != desired {
		setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, "ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation")
	} else {
		setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, "ReadyForNewScale", "recommended size matches current size")
	}
	out, reason, message := convertDesiredReplicasWithRules(current, stabilized, minReplicas, hpa.Spec.MaxReplicas)
	setLimited(hpa, out != stabilized, reason, message)
	return out
}

func setLimited(hpa *autoscalingv2.HorizontalPodAutoscaler, limited bool, reason, message string) {
	status := corev1.ConditionFalse
	if limited {
		status = corev1.ConditionTrue
	}
	setCondition(hpa, autoscalingv2.ScalingLimited, status, reason, "%s", message)
}

func convertDesiredReplicasWithRules(current, desired, minReplicas, maxReplicas int32) (int32, string, string) {
	scaleUpLimit := int32(math.Max(scaleUpLimitFactor*float64(current), scaleUpLimitMinimum))
	maximum, reason, message := maxReplicas, "TooManyReplicas", "the desired replica count is more than the maximum replica count"
	if maxReplicas > scaleUpLimit {
		maximum, reason, message = scaleUpLimit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"
	}
	switch {
	case desired < minReplicas:
		return minReplicas, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
	case desired > maximum:
		return maximum, reason, message
	}
	return desired, "DesiredWithinRange", "the desired count is within the acceptable range"
}

// normalizeDesiredReplicasWithBehaviors: stabilization windows, then the
// policies' rates, then min/max.
func (r *Reconciler) normalizeDesiredReplicasWithBehaviors(hpa *autoscalingv2.HorizontalPodAutoscaler, h *history, current, desired, minReplicas int32) int32 {
	b := hpa.Spec.Behavior
	if b.ScaleDown != nil && b.ScaleDown.StabilizationWindowSeconds == nil {
		w := int32(r.Config.DownscaleStabilization.Seconds())
		b.ScaleDown.StabilizationWindowSeconds = &w
	}
	stabilized, reason, message := r.stabilizeWithBehaviors(h, b, current, desired)
	if stabilized != desired {
		setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, reason, "%s", message)
	} else {
		setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, "ReadyForNewScale", "recommended size matches current size")
	}
	out, reason, message := r.convertWithBehaviorRate(h, b, current, stabilized, minReplicas, hpa.Spec.MaxReplicas)
	setLimited(hpa, out != stabilized, reason, message)
	return out
}

func (r *Reconciler) stabilizeWithBehaviors(h *history, b *autoscalingv2.HorizontalPodAutoscalerBehavior, current, desired int32) (int32, string, string) {
	now := r.now()
	up, down := desired, desired
	upCutoff := now.Add(-time.Second * time.Duration(windowOf(b.ScaleUp)))
	downCutoff := now.Add(-time.Second * time.Duration(windowOf(b.ScaleDown)))
	old := -1
	for i, rec := range h.recommendations {
		if rec.timestamp.After(upCutoff) {
			up = min(rec.recommendation, up)
		}
		if rec.timestamp.After(downCutoff) {
			down = max(rec.recommendation, down)
		}
		if rec.timestamp.Before(upCutoff) && rec.timestamp.Before(downCutoff) {
			old = i
		}
	}
	recommendation := max(current, up)
	recommendation = min(recommendation, down)
	r.record(h, old, desired, now)
	if desired >= current {
		return recommendation, "ScaleUpStabilized", "recent recommendations were lower than current one, applying the lowest recent recommendation"
	}
	return recommendation, "ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation"
}

func windowOf(rules *autoscalingv2.HPAScalingRules) int32 {
	if rules == nil || rules.StabilizationWindowSeconds == nil {
		return 0
	}
	return *rules.StabilizationWindowSeconds
}

func (r *Reconciler) convertWithBehaviorRate(h *history, b *autoscalingv2.HorizontalPodAutoscalerBehavior, current, desired, minReplicas, maxReplicas int32) (int32, string, string) {
	now := r.now()
	switch {
	case desired > current && b.ScaleUp != nil:
		limit := max(scaleUpLimit(now, current, h.scaleUp, h.scaleDown, b.ScaleUp), current)
		maximum, reason, message := maxReplicas, "TooManyReplicas", "the desired replica count is more than the maximum replica count"
		if maximum > limit {
			maximum, reason, message = limit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"
		}
		if desired > maximum {
			return maximum, reason, message
		}
	case desired < current && b.ScaleDown != nil:
		limit := min(scaleDownLimit(now, current, h.scaleUp, h.scaleDown, b.ScaleDown), current)
		minimum, reason, message := minReplicas, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
		if minimum < limit {
			minimum, reason, message = limit, "ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate"
		}
		if desired < minimum {
			return minimum, reason, message
		}
	}
	return desired, "DesiredWithinRange", "the desired count is within the acceptable range"
}

func changeInPeriod(now time.Time, periodSeconds int32, events []timestampedScaleEvent) int32 {
	cutoff := now.Add(-time.Second * time.Duration(periodSeconds))
	var n int32
	for _, e := range events {
		if e.timestamp.After(cutoff) {
			n += e.replicaChange
		}
	}
	return n
}

func selectPolicy(rules *autoscalingv2.HPAScalingRules) autoscalingv2.ScalingPolicySelect {
	if rules.SelectPolicy == nil {
		return autoscalingv2.MaxChangePolicySelect
	}
	return *rules.SelectPolicy
}

// scaleUpLimit is the most replicas the policies allow now.
func scaleUpLimit(now time.Time, current int32, ups, downs []timestampedScaleEvent, rules *autoscalingv2.HPAScalingRules) int32 {
	return policyLimit(now, current, ups, downs, rules, true)
}

// scaleDownLimit is the fewest replicas the policies allow now.
func scaleDownLimit(now time.Time, current int32, ups, downs []timestampedScaleEvent, rules *autoscalingv2.HPAScalingRules) int32 {
	return policyLimit(now, current, ups, downs, rules, false)
}

// policyLimit applies each policy to the replicas at the start of its
// period and picks the largest change (Max) or the smallest (Min).
func policyLimit(now time.Time, current int32, ups, downs []timestampedScaleEvent, rules *autoscalingv2.HPAScalingRules, up bool) int32 {
	policy := selectPolicy(rules)
	if policy == autoscalingv2.DisabledPolicySelect {
		return current
	}
	// The largest change is the maximum up and the minimum down.
	pickMax := up == (policy != autoscalingv2.MinChangePolicySelect)
	pick, result := minInt32, int32(math.MaxInt32)
	if pickMax {
		pick, result = maxInt32, math.MinInt32
	}
	for _, p := range rules.Policies {
		start := current - changeInPeriod(now, p.PeriodSeconds, ups) + changeInPeriod(now, p.PeriodSeconds, downs)
		var proposed int32
		switch {
		case p.Type == autoscalingv2.PodsScalingPolicy && up:
			proposed = start + p.Value
		case p.Type == autoscalingv2.PodsScalingPolicy:
			proposed = start - p.Value
		case p.Type == autoscalingv2.PercentScalingPolicy && up:
			// Rounded up, or a small percentage would never add a pod.
			proposed = int32(math.Ceil(float64(start) * (1 + float64(p.Value)/100)))
		case p.Type == autoscalingv2.PercentScalingPolicy:
			proposed = int32(float64(start) * (1 - float64(p.Value)/100))
		}
		result = pick(result, proposed)
	}
	return result
}

// storeScaleEvent remembers a rescale for the policies' periods (only with
// a behavior), reusing an outdated slot.
func (r *Reconciler) storeScaleEvent(h *history, b *autoscalingv2.HorizontalPodAutoscalerBehavior, prev, next int32) {
	if b == nil {
		return
	}
	now := r.now()
	events, rules, change := &h.scaleDown, b.ScaleDown, prev-next
	if next > prev {
		events, rules, change = &h.scaleUp, b.ScaleUp, next-prev
	}
	var longest int32
	if rules != nil {
		for _, p := range rules.Policies {
			longest = max(longest, p.PeriodSeconds)
		}
	}
	cutoff := now.Add(-time.Second * time.Duration(longest))
	slot := -1
	for i := range *events {
		if (*events)[i].timestamp.Before(cutoff) {
			(*events)[i].outdated = true
		}
		if (*events)[i].outdated {
			slot = i
		}
	}
	e := timestampedScaleEvent{replicaChange: change, timestamp: now}
	if slot >= 0 {
		(*events)[slot] = e
	} else {
		*events = append(*events, e)
	}
}

func minInt32(a, b int32) int32 { return min(a, b) }
func maxInt32(a, b int32) int32 { return max(a, b) }
