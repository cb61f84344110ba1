package auth

import (
	"testing"
	"time"
)

// fakeShared is the cluster's count as another node would have added to it.
type fakeShared struct{ n map[string]int }

func (f *fakeShared) Add(scope, key string)       { f.n[scope+"|"+key]++ }
func (f *fakeShared) Total(scope, key string) int { return f.n[scope+"|"+key] }

// TestFailureLimiterShared pins that failures counted on other nodes refuse here too, and that failures here are
// shared.
func TestFailureLimiterShared(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		local     int // failures here
		elsewhere int // failures on other nodes
		allowed   bool
	}{
		{"none", 0, 0, true},
		{"under the burst together", 2, 2, true},
		{"over the burst only together", 2, 3, false},
		{"over the burst elsewhere", 0, 5, false},
		{"over the burst here", 5, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh := &fakeShared{n: map[string]int{}}
			l := &FailureLimiter{Burst: 5, Now: func() time.Time { return now }, Shared: sh}
			for range tc.local {
				l.Fail("ip:10.0.0.1")
			}
			sh.n["login-failure|ip:10.0.0.1"] += tc.elsewhere
			ok, wait := l.Allow("ip:10.0.0.1")
			if ok != tc.allowed || (!ok && wait <= 0) {
				t.Errorf("Allow = %v, %v; want allowed %v", ok, wait, tc.allowed)
			}
			if got := sh.n["login-failure|ip:10.0.0.1"]; got != tc.local+tc.elsewhere {
				t.Errorf("shared count %d, want %d: local failures must be shared", got, tc.local+tc.elsewhere)
			}
		})
	}
}
