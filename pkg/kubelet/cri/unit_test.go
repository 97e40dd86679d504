package cri

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestPullAuths(t *testing.T) {
	auth := base64.StdEncoding.EncodeToString([]byte("user:secret"))
	client := fake.NewSimpleClientset(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"https://registry.example.com":{"auth":"` + auth + `"},"other.example.com":{"username":"o","password":"p"}}}`)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "hub"}, Type: corev1.SecretTypeDockercfg,
			Data: map[string][]byte{corev1.DockerConfigKey: []byte(`{"https://index.docker.io/v1/":{"username":"h","password":"q"}}`)}},
	)
	r := &Runtime{cfg: Config{Client: client}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"}, Spec: corev1.PodSpec{
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}, {Name: "hub"}, {Name: "missing"}},
	}}
	got := r.pullAuths(context.Background(), pod, "registry.example.com/team/app:1")
	if len(got) != 1 || got[0].Username != "user" || got[0].Password != "secret" {
		t.Errorf("registry.example.com: %+v", got)
	}
	got = r.pullAuths(context.Background(), pod, "busybox")
	if len(got) != 1 || got[0].Username != "h" {
		t.Errorf("Docker Hub: %+v", got)
	}
	if got := r.pullAuths(context.Background(), pod, "elsewhere.example.com/app"); len(got) != 0 {
		t.Errorf("no secret for elsewhere.example.com: %+v", got)
	}
}

func TestWithDefaultTag(t *testing.T) {
	for in, want := range map[string]string{
		"busybox": "busybox:latest", "registry.k8s.io/pause:3.10.2": "registry.k8s.io/pause:3.10.2",
		"localhost:5000/app": "localhost:5000/app:latest", "app@sha256:abc": "app@sha256:abc",
	} {
		if got, err := withDefaultTag(in); err != nil || got != want {
			t.Errorf("withDefaultTag(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "Busybox", "a b"} {
		if _, err := withDefaultTag(bad); err == nil {
			t.Errorf("withDefaultTag(%q): no error", bad)
		}
	}
}

func TestLogTail(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 100; i++ {
		b.WriteString("2024-01-01T00:00:00.000000000Z stdout F line\n")
	}
	b.WriteString("2024-01-01T00:00:00.000000000Z stderr P par\n")
	b.WriteString("2024-01-01T00:00:00.000000000Z stderr F tial\n")
	path := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	got := logTail(path)
	if want := strings.Repeat("line\n", 79) + "partial\n"; got != want {
		t.Errorf("logTail = %q, want 80 lines: %q", got, want)
	}
}

func TestBackoff(t *testing.T) {
	now := time.Unix(1000, 0)
	var b backoff
	reset := 10 * time.Minute
	if w := b.remaining(now, now, reset); w != 0 {
		t.Errorf("first exit waits %v", w)
	}
	b.next(now, 10*time.Second, 5*time.Minute, reset)
	exit := now.Add(time.Second)
	if w := b.remaining(exit, exit, reset); w != 10*time.Second {
		t.Errorf("second exit waits %v, want 10s", w)
	}
	for i := 0; i < 10; i++ {
		b.next(now, 10*time.Second, 5*time.Minute, reset)
	}
	if b.wait != 5*time.Minute {
		t.Errorf("back-off capped at %v, want 5m", b.wait)
	}
	// Ran for longer than the reset: restarts at once, from 10s again.
	late := now.Add(11 * time.Minute)
	if w := b.remaining(late, late, reset); w != 0 {
		t.Errorf("after running 11m waits %v", w)
	}
	b.next(late, 10*time.Second, 5*time.Minute, reset)
	if b.wait != 10*time.Second {
		t.Errorf("back-off after a reset %v, want 10s", b.wait)
	}
}
