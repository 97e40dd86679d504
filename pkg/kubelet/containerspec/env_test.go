package containerspec

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// fakeSources serves configMaps and secrets from maps, NotFound otherwise,
// and counts reads.
type fakeSources struct {
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
	reads      int
	err        error
}

func (f *fakeSources) ConfigMap(_ context.Context, namespace, name string) (*corev1.ConfigMap, error) {
	f.reads++
	if f.err != nil {
		return nil, f.err
	}
	if cm, ok := f.configMaps[namespace+"/"+name]; ok {
		return cm, nil
	}
	return nil, NotFound("configmap", name)
}

func (f *fakeSources) Secret(_ context.Context, namespace, name string) (*corev1.Secret, error) {
	f.reads++
	if f.err != nil {
		return nil, f.err
	}
	if s, ok := f.secrets[namespace+"/"+name]; ok {
		return s, nil
	}
	return nil, NotFound("secret", name)
}

func testSources() *fakeSources {
	return &fakeSources{
		configMaps: map[string]*corev1.ConfigMap{
			"ns/cm": {Data: map[string]string{"b": "cm-b", "a": "cm-a", "SHARED": "from-cm", "1-bad.key": "kept"}},
		},
		secrets: map[string]*corev1.Secret{
			"ns/sec": {Data: map[string][]byte{"token": []byte("s3cr3t"), "SHARED": []byte("from-secret")}},
		},
	}
}

func testPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "ns", UID: "uid-1",
			Labels:      map[string]string{"app": "web", "tier": "front"},
			Annotations: map[string]string{"note": `say "hi"`},
		},
		Spec: corev1.PodSpec{
			NodeName:           "node-a",
			ServiceAccountName: "sa",
			RestartPolicy:      corev1.RestartPolicyAlways,
			SchedulerName:      "default-scheduler",
			Containers:         []corev1.Container{{Name: "app", Image: "busybox"}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

func envNames(env []EnvVar) []string {
	var names []string
	for _, e := range env {
		names = append(names, e.Name+"="+e.Value)
	}
	return names
}

func TestEnvOrderAndPrecedence(t *testing.T) {
	pod := testPod()
	c := &corev1.Container{
		Name: "app",
		EnvFrom: []corev1.EnvFromSource{
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}},
			{Prefix: "S_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}}},
			{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}}},
			{Prefix: "CM_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}},
		},
		Env: []corev1.EnvVar{
			{Name: "a", Value: "env-a"},                             // overrides envFrom in place
			{Name: "REF", Value: "$(b)/$(SVC_HOST)/$(LATER)/$$(b)"}, // envFrom, service env; LATER not yet
			{Name: "LATER", Value: "x"},
			{Name: "SVC_PORT", Value: "own"}, // the container's own beats the service link
			{Name: "EMPTY"},
		},
	}
	o := ContainerOptions{ServiceEnv: []corev1.EnvVar{
		{Name: "SVC_HOST", Value: "10.0.0.1"}, {Name: "SVC_PORT", Value: "80"}, {Name: "KUBERNETES_SERVICE_HOST", Value: "10.0.0.2"},
	}}
	env, err := Env(context.Background(), pod, c, testSources(), o)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		// configMap keys sorted; upstream (v1.37) no longer drops keys that are no C identifiers
		"1-bad.key=kept", "SHARED=from-secret", "a=env-a", "b=cm-b",
		// the prefixed secret
		"S_SHARED=from-secret", "S_token=s3cr3t",
		// the unprefixed secret: SHARED overridden in place, token new
		"token=s3cr3t",
		// the configMap again, prefixed
		"CM_1-bad.key=kept", "CM_SHARED=from-cm", "CM_a=cm-a", "CM_b=cm-b",
		"REF=cm-b/10.0.0.1/$(LATER)/$(b)", "LATER=x", "SVC_PORT=own", "EMPTY=",
		// service links the container did not set, last
		"SVC_HOST=10.0.0.1", "KUBERNETES_SERVICE_HOST=10.0.0.2",
	}
	if got := envNames(env); !reflect.DeepEqual(got, want) {
		t.Errorf("env =\n%q\nwant\n%q", got, want)
	}
}

func TestEnvReadsEachSourceOnce(t *testing.T) {
	src := testSources()
	c := &corev1.Container{
		EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}},
		Env: []corev1.EnvVar{
			{Name: "A", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Key: "a"}}},
			{Name: "T", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "token"}}},
			{Name: "T2", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "token"}}},
		},
	}
	env, err := Env(context.Background(), testPod(), c, src, ContainerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if src.reads != 2 {
		t.Errorf("%d reads, want 2 (one per object)", src.reads)
	}
	got := envMap(env)
	if got["A"] != "cm-a" || got["T"] != "s3cr3t" || got["T2"] != "s3cr3t" {
		t.Errorf("env = %v", got)
	}
}

func TestEnvSourceErrors(t *testing.T) {
	cmRef := func(name, key string, optional bool) []corev1.EnvVar {
		return []corev1.EnvVar{{Name: "V", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: ptr.To(optional)}}}}
	}
	secRef := func(name, key string, optional bool) []corev1.EnvVar {
		return []corev1.EnvVar{{Name: "V", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: ptr.To(optional)}}}}
	}
	for _, tc := range []struct {
		name    string
		c       corev1.Container
		wantErr string // "" for none
		wantSet bool   // V is in the environment
	}{
		{"configMap missing", corev1.Container{Env: cmRef("nope", "a", false)}, `configmap "nope" not found`, false},
		{"configMap missing, optional", corev1.Container{Env: cmRef("nope", "a", true)}, "", false},
		{"configMap key missing", corev1.Container{Env: cmRef("cm", "zz", false)}, "couldn't find key zz in ConfigMap ns/cm", false},
		{"configMap key missing, optional", corev1.Container{Env: cmRef("cm", "zz", true)}, "", false},
		{"secret missing", corev1.Container{Env: secRef("nope", "a", false)}, `secret "nope" not found`, false},
		{"secret missing, optional", corev1.Container{Env: secRef("nope", "a", true)}, "", false},
		{"secret key missing", corev1.Container{Env: secRef("sec", "zz", false)}, "couldn't find key zz in Secret ns/sec", false},
		{"secret key missing, optional", corev1.Container{Env: secRef("sec", "zz", true)}, "", false},
		{"secret key", corev1.Container{Env: secRef("sec", "token", false)}, "", true},
		{"envFrom configMap missing", corev1.Container{EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}}}}}, `configmap "nope" not found`, false},
		{"envFrom configMap missing, optional", corev1.Container{EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Optional: ptr.To(true)}}}}, "", false},
		{"envFrom secret missing", corev1.Container{EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}}}}}, `secret "nope" not found`, false},
		{"envFrom secret missing, optional", corev1.Container{EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Optional: ptr.To(true)}}}}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, err := Env(context.Background(), testPod(), &tc.c, testSources(), ContainerOptions{})
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, set := envMap(env)["V"]; set != tc.wantSet {
				t.Errorf("V set = %v, want %v (env %v)", set, tc.wantSet, env)
			}
		})
	}

	// A failure other than NotFound is an error even for optional sources.
	src := &fakeSources{err: errors.New("apiserver down")}
	c := corev1.Container{Env: cmRef("cm", "a", true)}
	if _, err := Env(context.Background(), testPod(), &c, src, ContainerOptions{}); err == nil || !strings.Contains(err.Error(), "apiserver down") {
		t.Errorf("err = %v, want the source's error", err)
	}
	// No sources at all: upstream's message for a kubelet without a client.
	if _, err := Env(context.Background(), testPod(), &c, nil, ContainerOptions{}); err == nil || err.Error() != "couldn't get configMap ns/cm, no kubeClient defined" {
		t.Errorf("err = %v", err)
	}
}

func TestNotFoundMessage(t *testing.T) {
	err := NotFound("configmap", "x")
	if !apierrors.IsNotFound(err) || err.Error() != `configmap "x" not found` {
		t.Errorf("NotFound = %v (IsNotFound %v)", err, apierrors.IsNotFound(err))
	}
}

func TestFieldRefValue(t *testing.T) {
	pod := testPod()
	o := ContainerOptions{PodIPs: []string{"10.1.0.5", "fd00::5"}, HostIP: "192.168.1.2", HostIPs: []string{"192.168.1.2", "fd01::2"}}
	for _, tc := range []struct{ path, want, wantErr string }{
		{path: "metadata.name", want: "web"},
		{path: "metadata.namespace", want: "ns"},
		{path: "metadata.uid", want: "uid-1"},
		{path: "metadata.labels['app']", want: "web"},
		{path: "metadata.labels['missing']", want: ""},
		{path: "metadata.annotations['note']", want: `say "hi"`},
		{path: "metadata.labels", want: "app=\"web\"\ntier=\"front\""},
		{path: "metadata.annotations", want: `note="say \"hi\""`},
		{path: "spec.nodeName", want: "node-a"},
		{path: "spec.host", want: "node-a"},
		{path: "spec.serviceAccountName", want: "sa"},
		{path: "spec.restartPolicy", want: "Always"},
		{path: "spec.schedulerName", want: "default-scheduler"},
		{path: "status.phase", want: "Running"},
		{path: "status.podIP", want: "10.1.0.5"},
		{path: "status.podIPs", want: "10.1.0.5,fd00::5"},
		{path: "status.hostIP", want: "192.168.1.2"},
		{path: "status.hostIPs", want: "192.168.1.2,fd01::2"},
		{path: "metadata.labels['bad key!']", wantErr: "invalid key subscript in metadata.labels['bad key!']"},
		{path: "spec.nodeName['x']", wantErr: "field label does not support subscript: spec.nodeName['x']"},
		{path: "spec.containers", wantErr: "field label not supported: spec.containers"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			got, err := FieldRefValue(pod, &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: tc.path}, o)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("= %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := FieldRefValue(pod, &corev1.ObjectFieldSelector{APIVersion: "v2", FieldPath: "metadata.name"}, o); err == nil || err.Error() != "unsupported pod version: v2" {
		t.Errorf("v2: err = %v", err)
	}
	// Only HostIP known: status.hostIPs is it alone.
	if got, _ := FieldRefValue(pod, &corev1.ObjectFieldSelector{FieldPath: "status.hostIPs"}, ContainerOptions{HostIP: "1.2.3.4"}); got != "1.2.3.4" {
		t.Errorf("hostIPs from HostIP = %q", got)
	}
}

func TestResourceFieldRefValue(t *testing.T) {
	pod := testPod()
	c := &corev1.Container{Name: "app", Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi"), "hugepages-2Mi": resource.MustParse("4Mi")},
	}}
	other := corev1.Container{Name: "side", Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3")}}}
	pod.Spec.Containers = []corev1.Container{*c, other}
	allocatable := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
	for _, tc := range []struct {
		resource, divisor, container, want, wantErr string
	}{
		{resource: "requests.cpu", want: "1"}, // 250m rounded up
		{resource: "requests.cpu", divisor: "1m", want: "250"},
		{resource: "requests.cpu", divisor: "100m", want: "3"},
		{resource: "limits.cpu", want: "4"}, // unset: allocatable
		{resource: "limits.cpu", divisor: "1m", want: "4000"},
		{resource: "requests.memory", want: "67108864"},
		{resource: "requests.memory", divisor: "1Mi", want: "64"},
		{resource: "limits.memory", divisor: "1Mi", want: "128"},
		{resource: "limits.memory", divisor: "1G", want: "1"},
		{resource: "limits.ephemeral-storage", divisor: "1Gi", want: "100"},
		{resource: "requests.ephemeral-storage", want: "0"},
		{resource: "limits.hugepages-2Mi", divisor: "1Mi", want: "4"},
		{resource: "limits.cpu", container: "side", want: "3"},
		{resource: "limits.memory", container: "side", divisor: "1Gi", want: "8"},
		{resource: "limits.cpu", container: "ghost", wantErr: "container ghost not found"},
		{resource: "limits.gpu", wantErr: "unsupported container resource : limits.gpu"},
	} {
		t.Run(tc.resource+"/"+tc.divisor+"/"+tc.container, func(t *testing.T) {
			fs := &corev1.ResourceFieldSelector{Resource: tc.resource, ContainerName: tc.container}
			if tc.divisor != "" {
				fs.Divisor = resource.MustParse(tc.divisor)
			}
			got, err := ResourceFieldRefValue(pod, c, fs, allocatable)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("= %q, %v; want %q", got, err, tc.want)
			}
		})
	}

	// Pod-level limits stand in for allocatable.
	pod.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")}}
	got, err := ResourceFieldRefValue(pod, c, &corev1.ResourceFieldSelector{Resource: "limits.cpu"}, allocatable)
	if err != nil || got != "2" {
		t.Errorf("limits.cpu with pod-level limit = %q, %v; want 2", got, err)
	}
}

func TestEnvValueFromFieldsAndResources(t *testing.T) {
	pod := testPod()
	c := &corev1.Container{Name: "app", Env: []corev1.EnvVar{
		{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
		{Name: "IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.podIP"}}},
		{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
		{Name: "BOTH", Value: "$(POD)@$(IP)"},
	}}
	o := ContainerOptions{PodIPs: []string{"10.1.0.9"}, NodeAllocatable: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}}
	env, err := Env(context.Background(), pod, c, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"POD=web", "IP=10.1.0.9", "MEM=2048", "BOTH=web@10.1.0.9"}
	if got := envNames(env); !reflect.DeepEqual(got, want) {
		t.Errorf("env = %q, want %q", got, want)
	}
	c.Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.bogus"}}}}
	if _, err := Env(context.Background(), pod, c, nil, o); err == nil {
		t.Error("an unsupported fieldRef is an error")
	}
}
