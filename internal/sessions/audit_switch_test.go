package sessions

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/proxy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// TestRecordingSwitchOpensNewSession pins the fix for a session opened unrecorded that then gets an audited
// request (a commit switched the audit policy or the target's audit flag on): it used to keep the session, whose
// missing trail failed the recorder and closed every audited target. Now the session ends and a recorded one
// opens; switching recording off likewise opens an unrecorded one.
func TestRecordingSwitchOpensNewSession(t *testing.T) {
	m, st, _, c := newManager(t)
	begin := func(audit bool) *Session {
		t.Helper()
		ctx, r, err := m.Begin(context.Background(), grant(audit), client)
		if err != nil {
			t.Fatalf("begin (audit %v): %v", audit, err)
		}
		s := sessionOf(t, ctx)
		if err := m.Record(ctx, grant(audit), &proxy.Exchange{Start: c.now(), Method: "GET", URL: "https://api/x", Status: 200}); err != nil {
			t.Fatalf("record (audit %v): %v", audit, err)
		}
		r.End(1, 1, 200)
		c.advance(time.Second)
		return s
	}
	off := begin(false)
	on := begin(true)
	if on == off || on.writer == nil {
		t.Fatalf("audited request reused the unrecorded session (same %v, trail %v)", on == off, on.writer != nil)
	}
	waitStatus(t, st, off.row.ID, store.SessionDisconnected, "recording policy changed")
	if err := m.Healthy(); err != nil {
		t.Fatalf("recorder failed after the switch: %v", err)
	}
	if again := begin(false); again == on || again.writer != nil {
		t.Fatalf("unrecorded request after switching off: same session %v, trail %v", again == on, again.writer != nil)
	}
	waitStatus(t, st, on.row.ID, store.SessionDisconnected, "recording policy changed")
	m.CloseAll(context.Background(), "test done")
}
