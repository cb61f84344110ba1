package policy

import (
	"strings"
	"testing"
)

func TestParseExtenderNAT(t *testing.T) {
	for _, c := range []struct {
		nat, prefix, addr string
		ok, bad           bool
	}{
		{nat: "10.0.0.1:443"},
		{nat: "api.internal"},
		{nat: "extender:site-a", prefix: "site-a", ok: true},
		{nat: "EXTENDER:Site-A", prefix: "site-a", ok: true},
		{nat: "extender:site-a/127.0.0.1:8443", prefix: "site-a", addr: "127.0.0.1:8443", ok: true},
		{nat: "extender:site-a/API.Internal.", prefix: "site-a", addr: "api.internal", ok: true},
		{nat: "extender:site-a/[::1]:443", prefix: "site-a", addr: "[::1]:443", ok: true},
		{nat: "extender:", ok: true, bad: true},
		{nat: "extender:a b", ok: true, bad: true},
		{nat: "extender:site-a/", ok: true, bad: true},
		{nat: "extender:site-a/h:0", ok: true, bad: true},
		{nat: "extender:site-a/*.x.com", ok: true, bad: true},
		{nat: "extender:" + strings.Repeat("a", 65), ok: true, bad: true},
	} {
		prefix, addr, ok, err := ParseExtenderNAT(c.nat)
		if ok != c.ok || (err != nil) != c.bad || (!c.bad && (prefix != c.prefix || addr != c.addr)) {
			t.Errorf("ParseExtenderNAT(%q) = %q, %q, %v, %v", c.nat, prefix, addr, ok, err)
		}
	}
	// Validation of an endpoint goes through the same parser and names the field.
	e := Endpoint{Host: "api.example.com", Protocols: []string{"https"}, Methods: []string{"GET"}, Paths: []string{"/**"},
		NATTargetHost: "extender:site-a/h:99999"}
	if errs := ValidateEndpoint(e); len(errs) != 1 || errs[0].Field != "nat_target_host" {
		t.Fatalf("ValidateEndpoint: %v", errs)
	}
	e.NATTargetHost = "Extender:SITE-A/Api.Internal:8443"
	if n := NormalizeEndpoint(e); n.NATTargetHost != "extender:site-a/api.internal:8443" {
		t.Fatalf("NormalizeEndpoint: %q", n.NATTargetHost)
	}
}

// FuzzParseExtenderNAT checks that an accepted extender NAT host normalizes to a form that parses to the same
// prefix and address, so what is stored is what the proxy dials.
func FuzzParseExtenderNAT(f *testing.F) {
	for _, s := range []string{"extender:site-a", "extender:a/1.2.3.4:5", "extender:a/[::1]:1", "extender:/x", "extender:a/b/c", "x:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, nat string) {
		prefix, addr, ok, err := ParseExtenderNAT(nat)
		if !ok || err != nil {
			return
		}
		p2, a2, ok2, err2 := ParseExtenderNAT(normalizeNAT(nat))
		if !ok2 || err2 != nil || p2 != prefix || a2 != addr {
			t.Fatalf("%q -> %q: %q %q %v %v, want %q %q", nat, normalizeNAT(nat), p2, a2, ok2, err2, prefix, addr)
		}
	})
}
