package netnstest

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
)

// TestAddDo makes a namespace and runs Go code in it: it sees only that
// namespace's loopback, and no thread stays there afterwards.
func TestAddDo(t *testing.T) {
	RequireRoot(t, "creates a network namespace")
	ns := fmt.Sprintf("nt-%d", os.Getpid()%100000)
	Add(t, ns)
	In(t, ns, "ip", "link", "add", "ntbr0", "type", "bridge")
	hostLinks, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	err = Do(ns, func() error {
		links, err := net.Interfaces()
		for _, l := range links {
			names = append(names, fmt.Sprintf("%s up=%v", l.Name, l.Flags&net.FlagUp != 0))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names, ","); got != "lo up=true,ntbr0 up=false" {
		t.Errorf("links in %s: %s, want lo (up) and ntbr0", ns, got)
	}
	// Many goroutines, so that the threads Do used run them too.
	for range 20 {
		done := make(chan []net.Interface)
		go func() { links, _ := net.Interfaces(); done <- links }()
		if links := <-done; len(links) != len(hostLinks) {
			t.Fatalf("a thread stayed in %s: %d links, the host has %d", ns, len(links), len(hostLinks))
		}
	}
	if err := Do("nt-no-such-namespace", func() error { return nil }); err == nil {
		t.Error("Do in a missing namespace: no error")
	}
}
