package componentserver

import (
	"context"
	"testing"
	"time"
)

// TestServeWithoutPort: --secure-port 0 serves nothing, as upstream's
// components, instead of dereferencing the missing serving info.
func TestServeWithoutPort(t *testing.T) {
	o := NewOptions(10250, "kubelet")
	o.Secure.BindPort = 0
	ctx, cancel := context.WithCancel(context.Background())
	stopped, err := o.Serve(ctx, "agent", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
		t.Fatal("stopped before its context ended")
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("not stopped after its context ended")
	}
}
