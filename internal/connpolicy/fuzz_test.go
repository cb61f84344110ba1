package connpolicy

import (
	"errors"
	"testing"
)

// FuzzTargetMatch checks the target parser and matcher against their contract: a parsed entry never matches an
// address with a name rule or a name with an address rule, and "*" matches every name.
func FuzzTargetMatch(f *testing.F) {
	for _, s := range [][2]string{{"*.example.com", "a.example.com"}, {"10.0.0.0/8", "10.1.2.3"}, {"*", "x"}, {"api.example.com", "API.example.com."},
		{"::/0", "[2001:db8::1]"}, {"*.a", ".a"}, {"a", "a."}, {"1.2.3.4", "1.2.3.4"}} {
		f.Add(s[0], s[1])
	}
	star, _ := ParseTarget("*")
	f.Fuzz(func(t *testing.T, entry, host string) {
		tg, err := ParseTarget(entry)
		if err != nil {
			return
		}
		h, addr := normalizeHost(host)
		got := tg.Matches(h, addr)
		if got && addr.IsValid() != tg.prefix.IsValid() {
			t.Fatalf("%q matched %q across kinds (name rule vs address)", entry, host)
		}
		if !addr.IsValid() && !star.Matches(h, addr) {
			t.Fatalf("* does not match the name %q", host)
		}
	})
}

// FuzzCheckInband checks that an inband route never admits a target its exception list names, and that a
// refusal is always a *Refusal.
func FuzzCheckInband(f *testing.F) {
	f.Add("*.corp.example", "vault.corp.example", "vault.corp.example", 443, 443)
	f.Add("10.0.0.0/8", "10.9.0.0/16", "10.9.1.1", 0, 22)
	f.Add("*", "*.internal", "db.internal", 0, 5432)
	f.Fuzz(func(t *testing.T, domain, exception, host string, exPort, port int) {
		d, err1 := ParseTarget(domain)
		e, err2 := ParseTarget(exception)
		if err1 != nil || err2 != nil || exPort < 0 || exPort > 65535 || port < 1 || port > 65535 {
			return
		}
		dec := &Decision{PolicyName: "p", WebProxy: WebProxy{Enabled: true}, Transport: Transport{Mode: TransportClientServer, AllowPlain: true},
			Route: Route{Mode: RouteInband, Domains: []DomainPort{{Target: d}}, Exceptions: []DomainPort{{Target: e, Port: exPort}}}}
		err := dec.Check(Request{Scheme: "http", Host: host, Port: port})
		h, addr := normalizeHost(host)
		if err == nil && e.Matches(h, addr) && (exPort == 0 || exPort == port) {
			t.Fatalf("excepted target %q:%d admitted", host, port)
		}
		var r *Refusal
		if err != nil && !errors.As(err, &r) {
			t.Fatalf("refusal of type %T", err)
		}
	})
}
