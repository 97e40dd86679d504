package pod

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

func TestValidateContainer(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{
		InitContainers:      []corev1.Container{{Name: "init"}},
		Containers:          []corev1.Container{{Name: "a"}, {Name: "b"}},
		EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug"}}},
	}}
	one := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "one"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "only"}}}}
	none := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "none"}}
	for _, tc := range []struct {
		pod       *corev1.Pod
		container string
		want, err string
	}{
		{one, "", "only", ""},
		{pod, "b", "b", ""},
		{pod, "init", "init", ""},
		{pod, "debug", "debug", ""},
		{pod, "", "", "a container name must be specified for pod p, choose one of: [init a b debug]"},
		{pod, "x", "", "container x is not valid for pod p"},
		{none, "", "", "a container name must be specified for pod none"},
	} {
		got, err := validateContainer(tc.container, tc.pod)
		if tc.err != "" {
			if !apierrors.IsBadRequest(err) || err.Error() != tc.err {
				t.Errorf("%s/%q: %v, want 400 %q", tc.pod.Name, tc.container, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s/%q: %q %v, want %q", tc.pod.Name, tc.container, got, err, tc.want)
		}
	}
}

func TestValidateLogOptions(t *testing.T) {
	now := metav1.Now()
	for _, tc := range []struct {
		opts corev1.PodLogOptions
		want string
	}{
		{corev1.PodLogOptions{}, ""},
		{corev1.PodLogOptions{TailLines: ptr.To[int64](0), LimitBytes: ptr.To[int64](1), SinceSeconds: ptr.To[int64](1)}, ""},
		{corev1.PodLogOptions{TailLines: ptr.To[int64](-1)}, "tailLines: Invalid value: -1: must be greater than or equal to 0"},
		{corev1.PodLogOptions{LimitBytes: ptr.To[int64](0)}, "limitBytes: Invalid value: 0: must be greater than 0"},
		{corev1.PodLogOptions{SinceSeconds: ptr.To[int64](0)}, "sinceSeconds: Invalid value: 0: must be greater than 0"},
		{corev1.PodLogOptions{SinceSeconds: ptr.To[int64](1), SinceTime: &now}, "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"},
		{corev1.PodLogOptions{Stream: ptr.To("All")}, "stream: Forbidden: may not be specified"},
	} {
		got := validateLogOptions(&tc.opts).ToAggregate()
		switch {
		case tc.want == "" && got != nil:
			t.Errorf("%+v: %v", tc.opts, got)
		case tc.want != "" && (got == nil || !strings.Contains(got.Error(), tc.want)):
			t.Errorf("%+v: %v, want %q", tc.opts, got, tc.want)
		}
	}
}

type podGetter map[string]*corev1.Pod

func (g podGetter) Get(_ context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	if p, ok := g[name]; ok {
		return p, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("pods"), name)
}

func TestResourceLocation(t *testing.T) {
	withIP := func(name, ip string, port int32) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}
		if port != 0 {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "d", Ports: []corev1.ContainerPort{{ContainerPort: port}}})
		}
		if ip != "" {
			p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
		}
		return p
	}
	pods := podGetter{
		"web": withIP("web", "10.1.2.3", 8080), "bare": withIP("bare", "10.1.2.4", 0), "v6": withIP("v6", "fd00::1", 0),
		"lo": withIP("lo", "127.0.0.1", 80), "ll": withIP("ll", "169.254.1.1", 80), "noip": withIP("noip", "", 80),
	}
	for id, want := range map[string]string{
		"web":             "//10.1.2.3:8080",
		"web:9000":        "//10.1.2.3:9000",
		"https:web:443":   "https://10.1.2.3:443",
		"bare":            "//10.1.2.4",
		"v6":              "//[fd00::1]",
		"v6:80":           "//[fd00::1]:80",
		"lo":              "400 address not allowed",
		"ll":              "400 address not allowed",
		"noip":            "400 address not allowed",
		"ftp:web:1":       `400 invalid pod request "ftp:web:1"`,
		"a:b:c:d":         `400 invalid pod request "a:b:c:d"`,
		"missing":         `404 pods "missing" not found`,
		"http:missing:80": `404 pods "missing" not found`,
	} {
		u, err := ResourceLocation(context.Background(), pods, id)
		got := ""
		if err != nil {
			got = fmt.Sprintf("%d %s", code(err), err)
		} else {
			got = u.String()
		}
		if got != want {
			t.Errorf("%s: %q, want %q", id, got, want)
		}
	}
}

func code(err error) int32 {
	if s, ok := err.(apierrors.APIStatus); ok {
		return s.Status().Code
	}
	return 0
}
