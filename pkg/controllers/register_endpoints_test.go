package controllers

import (
	"testing"
)

// TestEndpointsDescriptors: upstream's names, identities and flags, with
// upstream's bounds and messages.
func TestEndpointsDescriptors(t *testing.T) {
	byName := map[string]Descriptor{}
	for _, d := range Descriptors() {
		byName[d.Name] = d
	}
	for name, want := range map[string]struct{ identity, flag string }{
		"endpoints-controller":               {"endpoint-controller", "concurrent-endpoint-syncs"},
		"endpointslice-controller":           {"endpointslice-controller", "concurrent-service-endpoint-syncs"},
		"endpointslice-mirroring-controller": {"endpointslicemirroring-controller", "mirroring-concurrent-service-endpoint-syncs"},
	} {
		d, ok := byName[name]
		if !ok {
			t.Errorf("%s not registered", name)
			continue
		}
		if d.Identity != want.identity || d.Concurrency == nil || d.Concurrency.Flag != want.flag || d.Concurrency.Default != 5 {
			t.Errorf("%s: identity %s, concurrency %+v; want %s, %s=5", name, d.Identity, d.Concurrency, want.identity, want.flag)
		}
	}
	slice := byName["endpointslice-controller"]
	if err := slice.Concurrency.Validate(51); err == nil || err.Error() != "concurrent-service-endpoint-syncs must not be more than 50, but got 51" {
		t.Errorf("51 workers: %v", err)
	}
	if err := slice.Concurrency.Validate(0); err == nil || err.Error() != "concurrent-service-endpoint-syncs must not be less than 1, but got 0" {
		t.Errorf("0 workers: %v", err)
	}
	if len(slice.Flags) != 1 || slice.Flags[0].Flag != "max-endpoints-per-slice" || slice.Flags[0].Default != 100 {
		t.Fatalf("flags %+v", slice.Flags)
	}
	f := slice.Flags[0]
	for n, want := range map[int]string{0: "max-endpoints-per-slice must not be less than 1, but got 0",
		1001: "max-endpoints-per-slice must not be more than 1000, but got 1001", 1: "", 1000: ""} {
		got := ""
		if err := f.Validate(n); err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("%d: %q, want %q", n, got, want)
		}
	}
	if got := (Options{IntFlags: map[string]int{"max-endpoints-per-slice": 7}}).Int("max-endpoints-per-slice", 100); got != 7 {
		t.Errorf("Int = %d, want 7", got)
	}
	if got := (Options{}).Int("max-endpoints-per-slice", 100); got != 100 {
		t.Errorf("Int without the flag = %d, want 100", got)
	}
}
