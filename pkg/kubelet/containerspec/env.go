package containerspec

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	resourcehelper "k8s.io/component-helpers/resource"
)

// EnvVar is one resolved variable of a container's environment.
type EnvVar struct {
	Name  string
	Value string
}

// orderedEnv keeps variables in the order they were first set; setting a
// name again replaces its value in place (upstream keeps a map, so any
// order is upstream's; this one is stable and readable).
type orderedEnv struct {
	names  []string
	values map[string]string
}

func (e *orderedEnv) set(name, value string) {
	if _, ok := e.values[name]; !ok {
		e.names = append(e.names, name)
	}
	e.values[name] = value
}

// Env is the container's environment as upstream's kubelet builds it
// (makeEnvironmentVariables): envFrom sources first (keys with their
// prefix, keys of one source sorted), then env in declaration order — a
// Value expanded against the variables so far and the service links, a
// valueFrom resolved — overriding envFrom, then the service-link variables
// no other source set.
func Env(ctx context.Context, pod *corev1.Pod, c *corev1.Container, src Sources, o ContainerOptions) ([]EnvVar, error) {
	r := &envResolver{ctx: ctx, pod: pod, src: src, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	env := &orderedEnv{values: map[string]string{}}

	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, err := r.configMap(from.ConfigMapRef.Name, optional(from.ConfigMapRef.Optional))
			if err != nil {
				return nil, err
			}
			if cm == nil {
				continue
			}
			for _, k := range sortedKeys(cm.Data) {
				env.set(from.Prefix+k, cm.Data[k])
			}
		case from.SecretRef != nil:
			s, err := r.secret(from.SecretRef.Name, optional(from.SecretRef.Optional))
			if err != nil {
				return nil, err
			}
			if s == nil {
				continue
			}
			for _, k := range sortedKeys(s.Data) {
				env.set(from.Prefix+k, string(s.Data[k]))
			}
		}
	}

	serviceEnv := make(map[string]string, len(o.ServiceEnv))
	for _, e := range o.ServiceEnv {
		serviceEnv[e.Name] = e.Value
	}
	lookup := lookupIn(env.values, serviceEnv)

	for i := range c.Env {
		e := &c.Env[i]
		value := e.Value
		switch {
		case value != "":
			value = Expand(value, lookup)
		case e.ValueFrom != nil:
			v, ok, err := r.valueFrom(c, e.ValueFrom, o)
			if err != nil {
				return nil, err
			}
			if !ok {
				// An optional source that is missing leaves the variable unset.
				continue
			}
			value = v
		}
		env.set(e.Name, value)
	}

	out := make([]EnvVar, 0, len(env.names)+len(o.ServiceEnv))
	for _, name := range env.names {
		out = append(out, EnvVar{Name: name, Value: env.values[name]})
	}
	seen := map[string]bool{}
	for _, e := range o.ServiceEnv {
		if _, set := env.values[e.Name]; set || seen[e.Name] {
			continue
		}
		seen[e.Name] = true
		out = append(out, EnvVar{Name: e.Name, Value: serviceEnv[e.Name]})
	}
	return out, nil
}

func optional(b *bool) bool { return b != nil && *b }

// envResolver reads each configMap and secret once per container.
type envResolver struct {
	ctx        context.Context
	pod        *corev1.Pod
	src        Sources
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
}

// configMap is nil without error when it is optional and missing.
func (r *envResolver) configMap(name string, optional bool) (*corev1.ConfigMap, error) {
	if cm, ok := r.configMaps[name]; ok {
		return cm, nil
	}
	if r.src == nil {
		return nil, fmt.Errorf("couldn't get configMap %v/%v, no kubeClient defined", r.pod.Namespace, name)
	}
	cm, err := r.src.ConfigMap(r.ctx, r.pod.Namespace, name)
	if err != nil {
		if optional && apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	r.configMaps[name] = cm
	return cm, nil
}

// secret is nil without error when it is optional and missing.
func (r *envResolver) secret(name string, optional bool) (*corev1.Secret, error) {
	if s, ok := r.secrets[name]; ok {
		return s, nil
	}
	if r.src == nil {
		return nil, fmt.Errorf("couldn't get secret %v/%v, no kubeClient defined", r.pod.Namespace, name)
	}
	s, err := r.src.Secret(r.ctx, r.pod.Namespace, name)
	if err != nil {
		if optional && apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	r.secrets[name] = s
	return s, nil
}

// valueFrom resolves one env source; ok is false for a missing optional one.
func (r *envResolver) valueFrom(c *corev1.Container, from *corev1.EnvVarSource, o ContainerOptions) (value string, ok bool, err error) {
	switch {
	case from.FieldRef != nil:
		v, err := FieldRefValue(r.pod, from.FieldRef, o)
		return v, err == nil, err
	case from.ResourceFieldRef != nil:
		v, err := ResourceFieldRefValue(r.pod, c, from.ResourceFieldRef, o.NodeAllocatable)
		return v, err == nil, err
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		cm, err := r.configMap(ref.Name, optional(ref.Optional))
		if err != nil || cm == nil {
			return "", false, err
		}
		v, found := cm.Data[ref.Key]
		if !found {
			if optional(ref.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("couldn't find key %v in ConfigMap %v/%v", ref.Key, r.pod.Namespace, ref.Name)
		}
		return v, true, nil
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		s, err := r.secret(ref.Name, optional(ref.Optional))
		if err != nil || s == nil {
			return "", false, err
		}
		v, found := s.Data[ref.Key]
		if !found {
			if optional(ref.Optional) {
				return "", false, nil
			}
			return "", false, fmt.Errorf("couldn't find key %v in Secret %v/%v", ref.Key, r.pod.Namespace, ref.Name)
		}
		return string(v), true, nil
	case from.FileKeyRef != nil:
		return fileKeyValue(from.FileKeyRef, o)
	}
	// An empty source is an empty value, as upstream.
	return "", true, nil
}

// FieldRefValue is the downward API value of a pod field (env valueFrom.fieldRef).
func FieldRefValue(pod *corev1.Pod, fs *corev1.ObjectFieldSelector, o ContainerOptions) (string, error) {
	// The API server defaults apiVersion to v1; accept it unset too.
	if fs.APIVersion != "" && fs.APIVersion != "v1" {
		return "", fmt.Errorf("unsupported pod version: %s", fs.APIVersion)
	}
	path := fs.FieldPath
	if p, key, ok := splitSubscript(path); ok {
		switch p {
		case "metadata.annotations":
			if errs := validation.IsQualifiedName(strings.ToLower(key)); len(errs) != 0 {
				return "", fmt.Errorf("invalid key subscript in %s: %s", path, strings.Join(errs, ";"))
			}
			return pod.Annotations[key], nil
		case "metadata.labels":
			if errs := validation.IsQualifiedName(key); len(errs) != 0 {
				return "", fmt.Errorf("invalid key subscript in %s: %s", path, strings.Join(errs, ";"))
			}
			return pod.Labels[key], nil
		default:
			return "", fmt.Errorf("field label does not support subscript: %s", path)
		}
	}
	podIPs := o.PodIPs
	hostIPs := o.HostIPs
	if len(hostIPs) == 0 && o.HostIP != "" {
		hostIPs = []string{o.HostIP}
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName", "spec.host":
		if pod.Spec.NodeName == "" {
			return o.NodeName, nil
		}
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "spec.restartPolicy":
		return string(pod.Spec.RestartPolicy), nil
	case "spec.schedulerName":
		return pod.Spec.SchedulerName, nil
	case "status.phase":
		return string(pod.Status.Phase), nil
	case "status.hostIP":
		if len(hostIPs) == 0 {
			return "", fmt.Errorf("no host IP known for field %s", path)
		}
		return hostIPs[0], nil
	case "status.hostIPs":
		if len(hostIPs) == 0 {
			return "", fmt.Errorf("no host IP known for field %s", path)
		}
		return strings.Join(hostIPs, ","), nil
	case "status.podIP":
		if len(podIPs) == 0 {
			return "", nil
		}
		return podIPs[0], nil
	case "status.podIPs":
		return strings.Join(podIPs, ","), nil
	}
	return "", fmt.Errorf("field label not supported: %s", path)
}

// splitSubscript splits "metadata.labels['k']" into path and key.
func splitSubscript(fieldPath string) (string, string, bool) {
	if !strings.HasSuffix(fieldPath, "']") {
		return fieldPath, "", false
	}
	path, key, ok := strings.Cut(strings.TrimSuffix(fieldPath, "']"), "['")
	if !ok || path == "" {
		return fieldPath, "", false
	}
	return path, key, true
}

// formatMap is upstream's key="quoted value" lines, keys sorted.
func formatMap(m map[string]string) string {
	var b strings.Builder
	for _, k := range sortedKeys(m) {
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(m[k]))
	}
	return b.String()
}

// downwardLimitResources are the limits the downward API defaults to the
// node's allocatable when a container leaves them unset.
var downwardLimitResources = []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage}

// ResourceFieldRefValue is the downward API value of a container's
// resource (env valueFrom.resourceFieldRef): rounded up in units of the
// divisor, unset limits being the pod-level limit, else allocatable.
func ResourceFieldRefValue(pod *corev1.Pod, c *corev1.Container, fs *corev1.ResourceFieldSelector, allocatable corev1.ResourceList) (string, error) {
	target := c
	if fs.ContainerName != "" {
		target = findContainer(pod, fs.ContainerName)
		if target == nil {
			return "", fmt.Errorf("container %s not found", fs.ContainerName)
		}
	}
	defaults := allocatable
	if resourcehelper.IsPodLevelLimitsSet(pod) {
		defaults = allocatable.DeepCopy()
		for _, name := range downwardLimitResources {
			if !resourcehelper.IsSupportedPodLevelResource(name) {
				continue
			}
			if v, ok := pod.Spec.Resources.Limits[name]; ok && !v.IsZero() {
				if _, ok := defaults[name]; ok {
					defaults[name] = v.DeepCopy()
				}
			}
		}
	}
	limits := corev1.ResourceList{}
	for name, q := range target.Resources.Limits {
		limits[name] = q
	}
	for _, name := range downwardLimitResources {
		if q, ok := limits[name]; !ok || q.IsZero() {
			if d, ok := defaults[name]; ok {
				limits[name] = d.DeepCopy()
			}
		}
	}

	divisor := resource.MustParse("1")
	if !fs.Divisor.IsZero() {
		divisor = fs.Divisor
	}
	requests := target.Resources.Requests
	switch fs.Resource {
	case "limits.cpu":
		return milliRatio(limits.Cpu(), divisor), nil
	case "requests.cpu":
		return milliRatio(requests.Cpu(), divisor), nil
	case "limits.memory":
		return ratio(limits.Memory(), divisor), nil
	case "requests.memory":
		return ratio(requests.Memory(), divisor), nil
	case "limits.ephemeral-storage":
		return ratio(limits.StorageEphemeral(), divisor), nil
	case "requests.ephemeral-storage":
		return ratio(requests.StorageEphemeral(), divisor), nil
	}
	if name, ok := strings.CutPrefix(fs.Resource, "requests."); ok && strings.HasPrefix(name, corev1.ResourceHugePagesPrefix) {
		return ratio(requests.Name(corev1.ResourceName(name), resource.BinarySI), divisor), nil
	}
	if name, ok := strings.CutPrefix(fs.Resource, "limits."); ok && strings.HasPrefix(name, corev1.ResourceHugePagesPrefix) {
		return ratio(limits.Name(corev1.ResourceName(name), resource.BinarySI), divisor), nil
	}
	return "", fmt.Errorf("unsupported container resource : %v", fs.Resource)
}

func milliRatio(q *resource.Quantity, divisor resource.Quantity) string {
	return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10)
}

func ratio(q *resource.Quantity, divisor resource.Quantity) string {
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10)
}

func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}
