package server

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// criLine is one line in the CRI log format containerd writes.
func criLine(t time.Time, stream, text string) string {
	return t.UTC().Format(time.RFC3339Nano) + " " + stream + " F " + text + "\n"
}

func logsFixture(t *testing.T) (*Server, *fakeCRI, string, time.Time) {
	t.Helper()
	dir := t.TempDir()
	cur := filepath.Join(dir, "1.log")
	prev := filepath.Join(dir, "0.log")
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var b strings.Builder
	for i, l := range []string{"one", "two", "three", "four"} {
		stream := "stdout"
		if i == 1 {
			stream = "stderr"
		}
		b.WriteString(criLine(base.Add(time.Duration(i)*10*time.Minute), stream, l))
	}
	if err := os.WriteFile(cur, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(prev, []byte(criLine(base.Add(-time.Hour), "stdout", "before the restart")), 0o644); err != nil {
		t.Fatal(err)
	}
	rs := newFakeCRI()
	rs.addSandbox("sb1", "default", "web", "u1", true)
	rs.addContainer("c0", "sb1", "app", runtimeapi.ContainerState_CONTAINER_EXITED, prev)
	rs.addContainer("c1", "sb1", "app", runtimeapi.ContainerState_CONTAINER_RUNNING, cur)
	pods := fakePods{
		{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "u1"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}, {Name: "side"}, {Name: "pulling"}, {Name: "gone"}}},
			Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{
				{Name: "app", ContainerID: "containerd://c1", RestartCount: 1,
					State:                corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
					LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ContainerID: "containerd://c0"}}},
				{Name: "side", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}},
				{Name: "pulling", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}},
				{Name: "gone", ContainerID: "containerd://nope", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
			}},
		},
	}
	return newTestServer(t, &fakeAuth{}, pods, fakeRuntime{rs}), rs, cur, base
}

func TestContainerLogs(t *testing.T) {
	s, _, _, base := logsFixture(t)
	h := s.Handler()
	ts := func(i int) string {
		return base.Add(time.Duration(i) * 10 * time.Minute).UTC().Format("2006-01-02T15:04:05.000000000Z07:00")
	}
	cases := []struct {
		query string
		code  int
		body  string
	}{
		{"", 200, "one\ntwo\nthree\nfour\n"},
		{"?tailLines=2", 200, "three\nfour\n"},
		{"?tail=1", 200, "four\n"},
		{"?tail=all", 200, "one\ntwo\nthree\nfour\n"},
		{"?tailLines=0", 200, ""},
		{"?limitBytes=6", 200, "one\ntw"},
		{"?timestamps=true&tailLines=1", 200, ts(3) + " four\n"},
		{"?sinceTime=" + base.Add(15*time.Minute).UTC().Format(time.RFC3339), 200, "three\nfour\n"},
		{"?sinceSeconds=3700", 200, "one\ntwo\nthree\nfour\n"},
		{"?sinceSeconds=1", 200, ""},
		{"?previous=true", 200, "before the restart\n"},
		{"?tailLines=-1", 422, `{"message": "Invalid request."}`},
		{"?limitBytes=0", 422, `{"message": "Invalid request."}`},
		{"?sinceSeconds=0", 422, `{"message": "Invalid request."}`},
		{"?sinceSeconds=5&sinceTime=" + base.UTC().Format(time.RFC3339), 422, `{"message": "Invalid request."}`},
		{"?tailLines=abc", 400, `{"message": "Unable to decode query."}`},
		{"?follow=maybe", 400, `{"message": "Unable to decode query."}`},
		{"?sinceTime=yesterday", 400, `{"message": "Unable to decode query."}`},
		{"?stream=Stdout", 400, `unable to return the given log stream: "Stdout". Please enable PodLogsQuerySplitStreams feature gate in kubelet`},
	}
	for _, c := range cases {
		code, body := do(t, h, "GET", "/containerLogs/default/web/app"+c.query, "alice")
		if code != c.code || body != c.body {
			t.Errorf("%s: %d %q, want %d %q", c.query, code, body, c.code, c.body)
		}
	}
	errCases := []struct {
		path string
		code int
		body string
	}{
		{"/containerLogs/default/nope/app", 404, `pod "nope" does not exist`},
		{"/containerLogs/other/web/app", 404, `pod "web" does not exist`},
		{"/containerLogs/default/web/nope", 404, `container "nope" not found in pod "web"`},
		{"/containerLogs/default/web/side", 400, `container "side" in pod "web" is waiting to start: ContainerCreating`},
		{"/containerLogs/default/web/pulling", 400, `container "pulling" in pod "web" is waiting to start: trying and failing to pull image`},
		{"/containerLogs/default/web/side?previous=true", 400, `previous terminated container "side" in pod "web" not found`},
		{"/containerLogs/default/web/gone", 400, `unable to retrieve container logs for containerd://nope`},
	}
	for _, c := range errCases {
		code, body := do(t, h, "GET", c.path, "alice")
		if code != c.code || body != c.body {
			t.Errorf("%s: %d %q, want %d %q", c.path, code, body, c.code, c.body)
		}
	}
	if code, _ := do(t, h, "POST", "/containerLogs/default/web/app", "alice"); code != 405 {
		t.Errorf("POST: %d, want 405", code)
	}
}

// TestContainerLogsFollow: lines appended to the file reach the client
// as they are written; the stream ends once the container stops.
func TestContainerLogsFollow(t *testing.T) {
	s, rs, path, _ := logsFixture(t)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/containerLogs/default/web/app?follow=true&tailLines=1", nil)
	req.Header.Set("Authorization", "Bearer alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				return "<EOF>"
			}
			return l
		case <-time.After(10 * time.Second):
			return "<timeout>"
		}
	}
	if l := next(); l != "four" {
		t.Fatalf("first line %q, want four", l)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, text := range []string{"five", "six"} {
		if _, err := f.WriteString(criLine(time.Now(), "stdout", text)); err != nil {
			t.Fatal(err)
		}
		if l := next(); l != text {
			t.Fatalf("followed line %q, want %q", l, text)
		}
	}
	rs.setState("c1", runtimeapi.ContainerState_CONTAINER_EXITED)
	_, _ = f.WriteString(criLine(time.Now(), "stdout", "last words"))
	if l := next(); l != "last words" {
		t.Fatalf("line after the stop %q", l)
	}
	if l := next(); l != "<EOF>" {
		t.Fatalf("after the container stopped: %q, want the end of the stream", l)
	}
}
