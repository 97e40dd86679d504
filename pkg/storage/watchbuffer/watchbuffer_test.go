package watchbuffer

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

func event(i int) watch.Event {
	return watch.Event{Type: watch.Added, Object: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint(i)}}}
}

// A burst is taken off the inner watch at once, before the client reads
// anything, and reaches the client whole and in order.
func TestBurstIsDrainedBeforeTheClientReads(t *testing.T) {
	inner := watch.NewFake() // unbuffered: Add blocks until the event is taken
	b := newBuffered(inner, 100, "configmaps")
	done := make(chan struct{})
	go func() {
		for i := 0; i < 100; i++ {
			inner.Add(event(i).Object)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the inner watch could not hand over 100 events while the client did not read")
	}
	for i := 0; i < 100; i++ {
		ev := <-b.ResultChan()
		if name := ev.Object.(*corev1.ConfigMap).Name; name != fmt.Sprint(i) {
			t.Fatalf("event %d is %s", i, name)
		}
	}
}

// Past the depth the pump waits for the client instead of dropping.
func TestFullBufferWaitsForTheClient(t *testing.T) {
	inner := watch.NewFake()
	b := newBuffered(inner, 2, "configmaps")
	sent := make(chan int, 10)
	go func() {
		for i := 0; i < 5; i++ {
			inner.Add(event(i).Object)
			sent <- i
		}
	}()
	time.Sleep(200 * time.Millisecond)
	// Two buffered, one held by the pump: the fourth Add cannot finish.
	if n := len(sent); n != 3 {
		t.Fatalf("%d events taken from the inner watch with a buffer of 2, want 3", n)
	}
	for i := 0; i < 5; i++ {
		if name := (<-b.ResultChan()).Object.(*corev1.ConfigMap).Name; name != fmt.Sprint(i) {
			t.Fatalf("event %d is %s", i, name)
		}
	}
}

// Stop ends the inner watch and closes the result channel; so does the
// inner watch ending, after the buffered events.
func TestStopAndEnd(t *testing.T) {
	inner := watch.NewFake()
	b := newBuffered(inner, 10, "configmaps")
	b.Stop()
	b.Stop() // twice is fine
	if _, open := <-b.ResultChan(); open {
		t.Fatal("ResultChan open after Stop")
	}
	if !inner.IsStopped() {
		t.Error("the inner watch was not stopped")
	}

	inner = watch.NewFake()
	b = newBuffered(inner, 10, "configmaps")
	inner.Add(event(1).Object)
	inner.Stop()
	if ev, open := <-b.ResultChan(); !open || ev.Object.(*corev1.ConfigMap).Name != "1" {
		t.Fatalf("the event before the end: %v %v", ev, open)
	}
	if _, open := <-b.ResultChan(); open {
		t.Fatal("ResultChan open after the inner watch ended")
	}
}
