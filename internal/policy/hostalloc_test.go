//go:build !race

package policy

import "testing"

// TestCanonNameNoAlloc keeps the per-request host check free of allocations for hosts already in canonical form
// (an IPv4 address, a lower-case name): it runs for every request. The race detector adds allocations, hence the
// build tag.
func TestCanonNameNoAlloc(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "api.example.com", "localhost"} {
		if got, err := canonName(host, false); err != nil || got != host {
			t.Fatalf("canonName(%q) = %q, %v", host, got, err)
		}
		if n := testing.AllocsPerRun(100, func() { canonName(host, false) }); n != 0 {
			t.Errorf("canonName(%q) allocates %v times", host, n)
		}
	}
	// A non-canonical address still comes back canonical.
	if got, err := canonName("127.000.0.1", false); err == nil && got != "127.0.0.1" {
		t.Errorf("canonName(127.000.0.1) = %q", got)
	}
}

// TestRulesMatchNoAlloc keeps the decision on an allowed, canonical request free of allocations (it runs for
// every request): the path's segments stay on the stack.
func TestRulesMatchNoAlloc(t *testing.T) {
	rules, err := CompileRules([]Endpoint{ep("api.example.com", httpsOnly, []string{"GET"}, []string{"/v1/items/**"})}, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := Request{"https", "api.example.com", "GET", "/v1/items/42/parts"}
	if d := rules.Match(req); !d.Allowed {
		t.Fatalf("not allowed: %+v", d)
	}
	if n := testing.AllocsPerRun(100, func() { rules.Match(req) }); n != 0 {
		t.Errorf("Match allocates %v times", n)
	}
}
