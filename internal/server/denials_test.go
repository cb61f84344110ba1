package server

import (
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/proxy"
)

// TestDenialAuditorBounds: denials naming no credential are not queued (an anonymous peer cannot write the audit
// table), a full queue drops instead of blocking, and the writer's pace admits at most auditRate a second.
func TestDenialAuditorBounds(t *testing.T) {
	a := newDenialAuditor(nil, nil)
	a.enqueue(proxy.DeniedRequest{Reason: "connection policy refuses the address"})
	if len(a.ch) != 0 {
		t.Fatalf("an anonymous denial was queued")
	}
	for range cap(a.ch) + 5 {
		a.enqueue(proxy.DeniedRequest{Reason: "r", Session: proxy.SessionInfo{CredentialID: "c1"}})
	}
	if len(a.ch) != cap(a.ch) || a.dropped.Load() != 5 {
		t.Fatalf("queued %d, dropped %d; want %d and 5", len(a.ch), a.dropped.Load(), cap(a.ch))
	}
	w := &window{limit: 3}
	now := time.Unix(1000, 0)
	var got []bool
	for i := range 5 {
		got = append(got, w.allow(now.Add(time.Duration(i)*time.Millisecond)))
	}
	got = append(got, w.allow(now.Add(1001*time.Millisecond)))
	want := []bool{true, true, true, false, false, true}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allow sequence %v, want %v", got, want)
		}
	}
}
