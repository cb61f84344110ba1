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
