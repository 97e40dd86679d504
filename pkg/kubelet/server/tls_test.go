package server

import (
	"crypto/tls"
	"testing"
)

func TestPreferCurrent(t *testing.T) {
	selfSigned, issued := &tls.Certificate{}, &tls.Certificate{}
	fallback := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return selfSigned, nil }
	if got, _ := preferCurrent(nil, fallback)(nil); got != selfSigned {
		t.Error("no manager: not the fallback")
	}
	var current *tls.Certificate
	get := preferCurrent(func() *tls.Certificate { return current }, fallback)
	if got, _ := get(nil); got != selfSigned {
		t.Error("before issuance: not the fallback")
	}
	current = issued
	if got, _ := get(nil); got != issued {
		t.Error("once issued: not the issued certificate")
	}
}
