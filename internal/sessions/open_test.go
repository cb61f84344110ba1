package sessions

import (
	"context"
	"database/sql"
	"net/netip"
	"path/filepath"
	"testing"
)

// TestOpenDoesNotHoldTheManagerLock holds SQLite's write lock from another connection, so that opening a session
// (its row insert) waits. Meanwhile a request to another, already open session must be served, and concurrent first
// requests of the waiting key must end up in one session once the lock is released. With the store I/O under the
// manager's lock, the open session's request would wait until the blocked insert timed out and failed.
func TestOpenDoesNotHoldTheManagerLock(t *testing.T) {
	dir := t.TempDir()
	m, _, _, _ := newManagerIn(t, dir)
	ctx := context.Background()
	other := netip.MustParseAddrPort("127.0.0.9:1000")
	octx, r, err := m.Begin(ctx, grant(false), other)
	if err != nil {
		t.Fatal(err)
	}
	r.End(0, 0, 200)
	open := sessionOf(t, octx)

	raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "s.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}

	type result struct {
		s   *Session
		err error
	}
	const n = 4
	results := make(chan result, n)
	for range n {
		go func() {
			rctx, r, err := m.Begin(ctx, grant(false), client)
			if err != nil {
				results <- result{err: err}
				return
			}
			r.End(0, 0, 200)
			results <- result{s: sessionOf(t, rctx)}
		}()
	}
	// Wait (bounded by the loop, not a clock) until the first of them is opening, with the insert blocked.
	for opening := false; !opening; {
		m.mu.Lock()
		opening = m.opening[keyOf(grant(false), client)] != nil
		m.mu.Unlock()
	}

	octx, r, err = m.Begin(ctx, grant(false), other)
	if err != nil {
		t.Fatal(err)
	}
	r.End(0, 0, 200)
	if sessionOf(t, octx) != open {
		t.Fatal("the open session was not reused")
	}
	select {
	case res := <-results:
		t.Fatalf("a first request of the blocked key returned before its insert could run: %+v", res)
	default:
	}

	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	var first *Session
	for range n {
		res := <-results
		if res.err != nil {
			t.Fatalf("opening the session failed: %v", res.err)
		}
		if first == nil {
			first = res.s
		} else if res.s != first {
			t.Fatal("concurrent first requests of one key opened more than one session")
		}
	}
	if got := len(m.Active()); got != 2 {
		t.Errorf("%d open sessions, want 2", got)
	}
}
