package queryparams_test

import (
	"net/url"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/pkg/apis"
	_ "github.com/skiff-dev/skiff/pkg/registry/core/queryparams"
)

func decode(t *testing.T, query string, into runtime.Object) error {
	t.Helper()
	values, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	return runtime.NewParameterCodec(apis.Scheme).DecodeParameters(values, corev1.SchemeGroupVersion, into)
}

func TestDecode(t *testing.T) {
	since := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	for _, tc := range []struct {
		query string
		into  runtime.Object
		want  runtime.Object
	}{
		{"container=c&follow=true&previous=1&timestamps=yes&sinceSeconds=5&tailLines=3&limitBytes=10&insecureSkipTLSVerifyBackend=true",
			&corev1.PodLogOptions{}, &corev1.PodLogOptions{Container: "c", Follow: true, Previous: true, Timestamps: true,
				SinceSeconds: ptr.To[int64](5), TailLines: ptr.To[int64](3), LimitBytes: ptr.To[int64](10), InsecureSkipTLSVerifyBackend: true}},
		{"sinceTime=2026-01-02T03:04:05Z&follow=false&stream=Stdout", &corev1.PodLogOptions{}, &corev1.PodLogOptions{SinceTime: &since, Stream: ptr.To("Stdout")}},
		{"command=ls&command=-l&stdin=1&stdout=1&stderr=0&tty=true&container=x", &corev1.PodExecOptions{},
			&corev1.PodExecOptions{Command: []string{"ls", "-l"}, Stdin: true, Stdout: true, TTY: true, Container: "x"}},
		{"stdout=1&container=x", &corev1.PodAttachOptions{}, &corev1.PodAttachOptions{Stdout: true, Container: "x"}},
		{"ports=80&ports=8080", &corev1.PodPortForwardOptions{}, &corev1.PodPortForwardOptions{Ports: []int32{80, 8080}}},
		{"ports=80,8080", &corev1.PodPortForwardOptions{}, &corev1.PodPortForwardOptions{Ports: []int32{80, 8080}}},
		{"path=/a/b", &corev1.PodProxyOptions{}, &corev1.PodProxyOptions{Path: "/a/b"}},
		{"path=/stats/summary", &corev1.NodeProxyOptions{}, &corev1.NodeProxyOptions{Path: "/stats/summary"}},
		{"path=/", &corev1.ServiceProxyOptions{}, &corev1.ServiceProxyOptions{Path: "/"}},
	} {
		if err := decode(t, tc.query, tc.into); err != nil {
			t.Errorf("%s: %v", tc.query, err)
			continue
		}
		if !apiequality.Semantic.DeepEqual(tc.into, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.query, tc.into, tc.want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		query string
		into  runtime.Object
	}{
		{"tailLines=abc", &corev1.PodLogOptions{}},
		{"sinceSeconds=1.5", &corev1.PodLogOptions{}},
		{"sinceTime=yesterday", &corev1.PodLogOptions{}},
		{"ports=http", &corev1.PodPortForwardOptions{}},
	} {
		if err := decode(t, tc.query, tc.into); err == nil {
			t.Errorf("%s: no error, got %+v", tc.query, tc.into)
		}
	}
}
