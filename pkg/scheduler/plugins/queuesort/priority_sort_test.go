package queuesort

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/pkg/scheduler/framework"
)

func qpi(name string, prio *int32, ts time.Time) *framework.QueuedPodInfo {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.PodSpec{Priority: prio}}
	return &framework.QueuedPodInfo{PodInfo: framework.NewPodInfo(p), Timestamp: ts}
}

func TestLess(t *testing.T) {
	low, high := int32(1), int32(10)
	t0 := time.Now()
	t1 := t0.Add(time.Second)
	tests := []struct {
		name string
		a, b *framework.QueuedPodInfo
		want bool
	}{
		{"higher priority first", qpi("a", &high, t1), qpi("b", &low, t0), true},
		{"lower priority after", qpi("a", &low, t0), qpi("b", &high, t1), false},
		{"equal priority, earlier first", qpi("a", &high, t0), qpi("b", &high, t1), true},
		{"equal priority, later after", qpi("a", &high, t1), qpi("b", &high, t0), false},
		{"equal priority, same time", qpi("a", &high, t0), qpi("b", &high, t0), false},
		{"nil priority is 0", qpi("a", nil, t0), qpi("b", &low, t1), false},
	}
	pl, err := New(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pl.(framework.QueueSortPlugin).Less(tt.a, tt.b); got != tt.want {
				t.Errorf("Less = %v, want %v", got, tt.want)
			}
		})
	}
}
