package options

import (
	"testing"
	"time"
)

func TestServiceAccountOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		set   func(*ServiceAccountOptions)
		valid bool
	}{
		{"defaults", func(*ServiceAccountOptions) {}, true},
		{"no issuer", func(o *ServiceAccountOptions) { o.Issuers = nil }, false},
		{"empty issuer", func(o *ServiceAccountOptions) { o.Issuers = []string{""} }, false},
		{"duplicate issuer", func(o *ServiceAccountOptions) { o.Issuers = []string{"a", "a"} }, false},
		{"bad URL issuer", func(o *ServiceAccountOptions) { o.Issuers = []string{"https://a b:x"} }, false},
		{"max 2h", func(o *ServiceAccountOptions) { o.MaxExpiration = 2 * time.Hour }, true},
		{"max 30m", func(o *ServiceAccountOptions) { o.MaxExpiration = 30 * time.Minute }, false},
		{"max 1h with extension", func(o *ServiceAccountOptions) { o.MaxExpiration = time.Hour }, false},
		{"max 1h without extension", func(o *ServiceAccountOptions) { o.MaxExpiration, o.ExtendExpiration = time.Hour, false }, true},
		{"http jwks uri", func(o *ServiceAccountOptions) { o.JWKSURI = "http://x/keys" }, false},
	} {
		o := NewServiceAccountOptions()
		tc.set(o)
		if errs := o.Validate(); (len(errs) == 0) != tc.valid {
			t.Errorf("%s: errors %v, want valid=%v", tc.name, errs, tc.valid)
		}
	}
}
