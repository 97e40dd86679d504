package simulated

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultCapacity is a simulated node's capacity unless told otherwise.
const DefaultCapacity = "cpu=8,memory=32Gi,pods=110,ephemeral-storage=100Gi"

// ParseCapacity reads name=quantity pairs, e.g. DefaultCapacity or
// "example.com/gpu=4".
func ParseCapacity(s string) (corev1.ResourceList, error) {
	list := corev1.ResourceList{}
	for _, pair := range splitList(s) {
		name, value, ok := strings.Cut(pair, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want name=quantity", pair)
		}
		if errs := validation.IsQualifiedName(name); len(errs) > 0 {
			return nil, fmt.Errorf("resource name %q: %s", name, strings.Join(errs, "; "))
		}
		q, err := resource.ParseQuantity(value)
		if err != nil {
			return nil, fmt.Errorf("resource %s: quantity %q: %w", name, value, err)
		}
		if q.Sign() < 0 {
			return nil, fmt.Errorf("resource %s: quantity %q must not be negative", name, value)
		}
		list[corev1.ResourceName(name)] = q
	}
	return list, nil
}

// ParseLabels reads key=value pairs.
func ParseLabels(s string) (map[string]string, error) {
	labels := map[string]string{}
	for _, pair := range splitList(s) {
		key, value, ok := strings.Cut(pair, "=")
		if !ok {
			return nil, fmt.Errorf("label %q: want key=value", pair)
		}
		if errs := validation.IsQualifiedName(key); len(errs) > 0 {
			return nil, fmt.Errorf("label key %q: %s", key, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(value); len(errs) > 0 {
			return nil, fmt.Errorf("label %s value %q: %s", key, value, strings.Join(errs, "; "))
		}
		labels[key] = value
	}
	return labels, nil
}

// ParseTaints reads key[=value]:effect entries, as kubelet's
// --register-with-taints.
func ParseTaints(s string) ([]corev1.Taint, error) {
	var taints []corev1.Taint
	for _, entry := range splitList(s) {
		kv, effect, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, fmt.Errorf("taint %q: want key[=value]:effect", entry)
		}
		key, value, _ := strings.Cut(kv, "=")
		if errs := validation.IsQualifiedName(key); len(errs) > 0 {
			return nil, fmt.Errorf("taint key %q: %s", key, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(value); len(errs) > 0 {
			return nil, fmt.Errorf("taint %s value %q: %s", key, value, strings.Join(errs, "; "))
		}
		switch e := corev1.TaintEffect(effect); e {
		case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
			taints = append(taints, corev1.Taint{Key: key, Value: value, Effect: e})
		default:
			return nil, fmt.Errorf("taint %q: effect %q is not NoSchedule, PreferNoSchedule or NoExecute", entry, effect)
		}
	}
	return taints, nil
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
