package expectations

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
)

// TestTrackedDeletions: an owner waits for its creations and deletions
// (each pod once), not for another object of its name, and not forever.
func TestTrackedDeletions(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	e := New[string](clk)
	if !e.Satisfied("ns/a", "u1") {
		t.Fatal("no expectations: not satisfied")
	}
	e.Expect("ns/a", "u1", 2, 0)
	e.CreationObserved("ns/a")
	if e.Satisfied("ns/a", "u1") {
		t.Fatal("satisfied after 1 of 2 creations")
	}
	if d, ok := e.Pending("ns/a"); !ok || d <= Timeout-time.Second {
		t.Errorf("pending %v %v", d, ok)
	}
	e.CreationObserved("ns/a")
	if !e.Satisfied("ns/a", "u1") {
		t.Fatal("not satisfied after 2 of 2 creations")
	}
	e.ExpectDeletions("ns/a", "u1", []string{"ns/p1", "ns/p2"})
	e.DeletionObservedOf("ns/a", "ns/p1")
	e.DeletionObservedOf("ns/a", "ns/p1")
	e.DeletionObservedOf("ns/a", "ns/other")
	if e.Satisfied("ns/a", "u1") {
		t.Fatal("a deletion seen twice counted twice")
	}
	if e.Satisfied("ns/a", "u1") || !e.Satisfied("ns/a", "u2") {
		t.Fatal("a new object of the same name waits for the old one's")
	}
	e.Expect("ns/a", "u2", 1, 0)
	clk.Step(Timeout + time.Second)
	if !e.Satisfied("ns/a", "u2") {
		t.Fatal("expired expectations still wait")
	}
	e.Forget("ns/a")
	if _, ok := e.Pending("ns/a"); ok {
		t.Fatal("forgotten expectations pending")
	}
}

// TestCounted: counted deletions and creations, lowered for what was not
// issued; keys of any comparable type and no UID (the Job controller's).
func TestCounted(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	e := New[types.NamespacedName](clk)
	key := types.NamespacedName{Namespace: "ns", Name: "j"}
	e.Expect(key, "", 3, 2)
	e.Lower(key, 2, 0)
	e.CreationObserved(key)
	e.DeletionObserved(key)
	if e.Satisfied(key, "") {
		t.Fatal("satisfied with a deletion still expected")
	}
	e.DeletionObserved(key)
	if !e.Satisfied(key, "") {
		t.Fatal("not satisfied after every creation and deletion")
	}
	if _, ok := e.Pending(key); ok {
		t.Fatal("satisfied expectations pending")
	}
	e.Expect(key, "", 0, 1)
	clk.Step(Timeout)
	if e.Satisfied(key, "") {
		t.Fatal("expired at exactly the timeout (upstream: only after it)")
	}
	if d, ok := e.Pending(key); !ok || d != time.Second {
		t.Errorf("pending at the timeout %v %v, want 1s", d, ok)
	}
	clk.Step(time.Nanosecond)
	if !e.Satisfied(key, "") {
		t.Fatal("not satisfied after the timeout")
	}
	e.Lower(types.NamespacedName{Name: "unknown"}, 1, 1) // no panic, no entry
	if _, ok := e.Pending(types.NamespacedName{Name: "unknown"}); ok {
		t.Fatal("lowering unknown expectations made some")
	}
}
