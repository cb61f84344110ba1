package sessions

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/proxy"
	"github.com/gatehouse-dev/gatehouse/internal/recording"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/storetest"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newManager(t *testing.T) (*Manager, *store.Store, *recording.Store, *clock) {
	t.Helper()
	return newManagerIn(t, t.TempDir())
}

// newManagerIn is newManager with its database at dir/s.db and trails under dir/trails.
func newManagerIn(t *testing.T, dir string) (*Manager, *store.Store, *recording.Store, *clock) {
	t.Helper()
	keys := storetest.Keys(t)
	st := storetest.Open(t, filepath.Join(dir, "s.db"), keys)
	rec, err := recording.Open(filepath.Join(dir, "trails"), keys.SigningKey("trail"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	m := New(st, rec, nil)
	m.Now = c.now
	set := model.DefaultSettings()
	set.IdleSessionTimeout, set.MaxSessionLifetime, set.SessionCooldown = 60, 3600, 300
	m.Settings = func() model.Settings { return set }
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m, st, rec, c
}

func grant(audit bool) *proxy.Grant {
	return &proxy.Grant{
		Target:  &proxy.Target{ID: "t1", Name: "api", AuditEnabled: audit, Credential: proxy.TargetCredential{Type: proxy.CredentialToken, Token: "target-token-xyz"}},
		Secret:  "ghp_user_secret_abc",
		Session: proxy.SessionInfo{UserID: "u1", UserName: "alice", CredentialID: "c1", CredentialName: "laptop", TargetName: "api"},
	}
}

var client = netip.MustParseAddrPort("127.0.0.1:5555")

func sessionOf(t *testing.T, ctx context.Context) *Session {
	t.Helper()
	s, _ := ctx.Value(sessionCtxKey{}).(*Session)
	if s == nil {
		t.Fatal("no session in context")
	}
	return s
}

func TestOneSessionPerCredentialAndClient(t *testing.T) {
	m, _, _, c := newManager(t)
	ctx1, r1, err := m.Begin(context.Background(), grant(false), client)
	if err != nil {
		t.Fatal(err)
	}
	r1.End(10, 20, 200)
	c.advance(time.Second)
	ctx2, r2, _ := m.Begin(context.Background(), grant(false), netip.MustParseAddrPort("127.0.0.1:6666"))
	r2.End(1, 2, 200)
	if sessionOf(t, ctx1) != sessionOf(t, ctx2) {
		t.Error("same credential and client address (other port) opened a second session")
	}
	ctx3, r3, _ := m.Begin(context.Background(), grant(false), netip.MustParseAddrPort("127.0.0.2:5555"))
	r3.End(0, 0, 200)
	if sessionOf(t, ctx3) == sessionOf(t, ctx1) {
		t.Error("another client address shared the session")
	}
	live, ok := m.Live(sessionOf(t, ctx1).row.ID)
	if !ok || live.Requests != 2 || live.BytesIn != 11 || live.BytesOut != 22 {
		t.Errorf("live counters = %+v", live)
	}
}

func TestIdleTimeoutAndLifetime(t *testing.T) {
	m, st, _, c := newManager(t)
	ctx := context.Background()
	rctx, r, _ := m.Begin(ctx, grant(false), client)
	r.End(0, 0, 200)
	first := sessionOf(t, rctx).row.ID
	c.advance(61 * time.Second)
	m.Tick(ctx)
	if _, ok := m.Live(first); ok {
		t.Fatal("idle session still open after the idle timeout")
	}
	waitStatus(t, st, first, store.SessionDisconnected, "idle timeout")

	// Lifetime: keep the session busy; it still closes at the maximum lifetime.
	rctx, r, _ = m.Begin(ctx, grant(false), client)
	second := sessionOf(t, rctx).row.ID
	for i := 0; i < 70; i++ {
		c.advance(55 * time.Second)
		r.End(0, 0, 200)
		rctx, r, _ = m.Begin(ctx, grant(false), client)
	}
	r.End(0, 0, 200)
	if sessionOf(t, rctx).row.ID == second {
		t.Fatal("session outlived the maximum lifetime")
	}
	waitStatus(t, st, second, store.SessionDisconnected, "maximum session lifetime reached")
}

func waitStatus(t *testing.T, st *store.Store, id, status, reason string) {
	t.Helper()
	// Closing is stored off the proxy's lock; poll briefly for it.
	for i := 0; i < 200; i++ {
		s, err := st.Session(context.Background(), id)
		if err == nil && s.Status == status && strings.Contains(s.TerminationReason, reason) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	s, err := st.Session(context.Background(), id)
	t.Fatalf("session %s: %+v %v; want %s (%s)", id, s, err, status, reason)
}

func TestTerminateAbortsInFlightAndCoolsDown(t *testing.T) {
	m, st, _, c := newManager(t)
	ctx := context.Background()
	rctx, r, err := m.Begin(ctx, grant(false), client)
	if err != nil {
		t.Fatal(err)
	}
	id := sessionOf(t, rctx).row.ID
	if err := m.Terminate(ctx, id, "by admin"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight request not cancelled by termination")
	}
	if cause := context.Cause(rctx); cause == nil || !strings.Contains(cause.Error(), "by admin") {
		t.Errorf("cancelled request's cause = %v, want the termination", cause)
	}
	r.End(0, 0, 499)
	waitStatus(t, st, id, store.SessionTerminated, "by admin")
	_, _, err = m.Begin(ctx, grant(false), client)
	var de *proxy.DeniedError
	if !errors.As(err, &de) || !strings.Contains(de.Reason, "cool-down") {
		t.Fatalf("request during cool-down: %v", err)
	}
	if de.RetryAfter != 300*time.Second {
		t.Errorf("cool-down refusal says retry after %v, want the 300s cool-down", de.RetryAfter)
	}
	c.advance(301 * time.Second)
	if _, r, err := m.Begin(ctx, grant(false), client); err != nil {
		t.Fatalf("after cool-down: %v", err)
	} else {
		r.End(0, 0, 200)
	}
	if err := m.Terminate(ctx, "no-such", "x"); !errors.Is(err, ErrNotActive) {
		t.Errorf("terminate unknown: %v", err)
	}
}

func TestRecheckMarksUnauthorized(t *testing.T) {
	m, st, _, _ := newManager(t)
	ctx := context.Background()
	rctx, r, _ := m.Begin(ctx, grant(false), client)
	r.End(0, 0, 200)
	id := sessionOf(t, rctx).row.ID
	m.Recheck(func(string, netip.Addr) (string, bool) { return "user no longer holds a role of the target", false })
	waitStatus(t, st, id, store.SessionUnauthorized, "no longer holds a role")
	if _, _, err := m.Begin(ctx, grant(false), client); err == nil {
		t.Fatal("request admitted during the cool-down after losing the role")
	}
}

func TestRecordingRedactsAndSeals(t *testing.T) {
	m, st, rec, _ := newManager(t)
	ctx := context.Background()
	g := grant(true)
	rctx, r, err := m.Begin(ctx, g, client)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Authorization": {"Bearer " + g.Secret}, "X-Note": {"token is target-token-xyz"}}
	ex := &proxy.Exchange{Start: time.Now(), Method: "GET", URL: "https://api.example.com/x?k=" + g.Secret, RequestHeader: h,
		Status: 200, ResponseBody: []byte("echo ghp_user_secret_abc"), ResponseBytes: 24}
	if err := m.Record(rctx, g, ex); err != nil {
		t.Fatal(err)
	}
	r.End(0, 24, 200)
	id := sessionOf(t, rctx).row.ID
	m.CloseAll(context.Background(), "test over")
	waitStatus(t, st, id, store.SessionDisconnected, "test over")
	b, err := os.ReadFile(filepath.Join(rec.Dir(), id+".trail"))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{g.Secret, "target-token-xyz"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("trail contains %q", secret)
		}
	}
	rep, err := rec.Verify(ctx, id)
	if err != nil || !rep.OK || !rep.Closed {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	s, _ := st.Session(ctx, id)
	if s.TrailRecords != rep.Records || s.TrailHead != rep.Head {
		t.Errorf("stored seal %d/%s does not match the trail %d/%s", s.TrailRecords, s.TrailHead, rep.Records, rep.Head)
	}
}

func TestRecordingFailureClosesAuditedTargets(t *testing.T) {
	m, _, rec, _ := newManager(t)
	ctx := context.Background()
	// Replace the trail directory with a file: creating a trail now fails, even as root.
	dir := rec.Dir()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a dir"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Begin(ctx, grant(true), client); err == nil {
		t.Fatal("audited request admitted while recording is broken")
	}
	if m.Healthy() == nil {
		t.Fatal("Healthy reports nil after a recording failure")
	}
	// Unaudited targets are unaffected.
	if _, r, err := m.Begin(ctx, grant(false), netip.MustParseAddrPort("127.0.0.9:1")); err != nil {
		t.Fatalf("unaudited request: %v", err)
	} else {
		r.End(0, 0, 200)
	}
}

func TestStartMarksInterrupted(t *testing.T) {
	m, st, _, _ := newManager(t)
	ctx := context.Background()
	rctx, r, _ := m.Begin(ctx, grant(true), client)
	r.End(0, 0, 200)
	id := sessionOf(t, rctx).row.ID
	// Simulate a crash: a new manager starts on the same store and trails without the old one closing anything.
	m2 := New(st, m.rec, nil)
	if err := m2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	s, _ := st.Session(ctx, id)
	if s.Status != store.SessionDisconnected || !strings.Contains(s.TerminationReason, "interrupted") {
		t.Fatalf("after restart: %+v", s)
	}
}

// TestTerminatedInFlightExchangeIsRecorded pins that a request aborted by a termination is still in the trail: it
// may have reached the target, so the audit record must not lose it.
func TestTerminatedInFlightExchangeIsRecorded(t *testing.T) {
	m, st, rec, _ := newManager(t)
	ctx := context.Background()
	g := grant(true)
	rctx, r, err := m.Begin(ctx, g, client)
	if err != nil {
		t.Fatal(err)
	}
	id := sessionOf(t, rctx).row.ID
	if err := m.Terminate(ctx, id, "by admin"); err != nil {
		t.Fatal(err)
	}
	if err := m.Record(rctx, g, &proxy.Exchange{Start: time.Now(), Method: "DELETE", URL: "https://api.example.com/x", Status: 499, Error: "aborted"}); err != nil {
		t.Fatalf("recording the aborted exchange: %v", err)
	}
	r.End(0, 0, 499)
	waitStatus(t, st, id, store.SessionTerminated, "by admin")
	page, err := rec.Read(ctx, id, 0, 0)
	if err != nil || page.Total != 1 || page.Items[0].Method != "DELETE" || page.Close == nil {
		t.Fatalf("trail after termination: %+v %v", page, err)
	}
	if m.Healthy() != nil {
		t.Errorf("recorder unhealthy after a termination: %v", m.Healthy())
	}
}

// TestConnectionPolicyOnlyTightens: a connection policy's idle timeout, lifetime and body limit apply only where
// they are stricter than the global settings (idle 60 s, lifetime 3600 s here); a looser one changes nothing, so
// neither dialect can loosen what the other set.
func TestConnectionPolicyOnlyTightens(t *testing.T) {
	for _, tc := range []struct {
		name           string
		policy         proxy.SessionPolicy
		idleOpen       time.Duration // the session is still open this long after its last request
		idleClosed     time.Duration // and closed by now
		lifetimeClosed time.Duration // a busy session is closed by now
	}{
		{"looser idle and lifetime", proxy.SessionPolicy{Name: "loose", IdleTimeout: time.Hour, MaxLifetime: 48 * time.Hour}, 59 * time.Second, 61 * time.Second, 3600 * time.Second},
		{"stricter idle", proxy.SessionPolicy{Name: "strict", IdleTimeout: 20 * time.Second}, 19 * time.Second, 21 * time.Second, 3600 * time.Second},
		{"stricter lifetime", proxy.SessionPolicy{Name: "short", MaxLifetime: 10 * time.Minute}, 59 * time.Second, 61 * time.Second, 10 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, st, _, c := newManager(t)
			ctx := context.Background()
			g := grant(false)
			g.Policy = &tc.policy
			rctx, r, err := m.Begin(ctx, g, client)
			if err != nil {
				t.Fatal(err)
			}
			r.End(0, 0, 200)
			id := sessionOf(t, rctx).row.ID
			c.advance(tc.idleOpen)
			m.Tick(ctx)
			if _, ok := m.Live(id); !ok {
				t.Fatalf("session closed %v after its last request, before the stricter idle timeout", tc.idleOpen)
			}
			c.advance(tc.idleClosed - tc.idleOpen)
			m.Tick(ctx)
			if _, ok := m.Live(id); ok {
				t.Fatalf("session still open %v after its last request: the policy loosened the idle timeout", tc.idleClosed)
			}
			waitStatus(t, st, id, store.SessionDisconnected, "idle timeout")

			// A busy session (a request every 15 s) ends at the stricter lifetime.
			rctx, r, err = m.Begin(ctx, g, client)
			if err != nil {
				t.Fatal(err)
			}
			busy := sessionOf(t, rctx).row.ID
			for elapsed := time.Duration(0); elapsed < tc.lifetimeClosed; elapsed += 15 * time.Second {
				c.advance(15 * time.Second)
				r.End(0, 0, 200)
				rctx, r, err = m.Begin(ctx, g, client)
				if err != nil {
					t.Fatal(err)
				}
			}
			r.End(0, 0, 200)
			if sessionOf(t, rctx).row.ID == busy {
				t.Fatalf("busy session outlived %v", tc.lifetimeClosed)
			}
			waitStatus(t, st, busy, store.SessionDisconnected, "maximum session lifetime reached")
		})
	}
}

// TestTerminateEndsTheCredentialsOtherSessions: one credential used from two client addresses has two sessions;
// terminating one cools the credential down, so the other's next request is refused and ends that session too,
// as terminated, instead of leaving it open and refusing every request it gets.
func TestTerminateEndsTheCredentialsOtherSessions(t *testing.T) {
	m, st, _, _ := newManager(t)
	ctx := context.Background()
	other := netip.MustParseAddrPort("127.0.0.2:6000")
	ctxA, rA, err := m.Begin(ctx, grant(false), client)
	if err != nil {
		t.Fatal(err)
	}
	rA.End(0, 0, 200)
	ctxB, rB, err := m.Begin(ctx, grant(false), other)
	if err != nil {
		t.Fatal(err)
	}
	rB.End(0, 0, 200)
	a, b := sessionOf(t, ctxA).row.ID, sessionOf(t, ctxB).row.ID
	if a == b {
		t.Fatal("two client addresses share a session")
	}
	if err := m.Terminate(ctx, a, "by admin"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Begin(ctx, grant(false), other); err == nil {
		t.Fatal("the credential's other address was admitted during the cool-down")
	}
	if _, ok := m.Live(b); ok {
		t.Fatal("the other session is still open after a refused request")
	}
	waitStatus(t, st, b, store.SessionTerminated, "cool-down")
}

// TestIdleTimeoutEdge: a session idle for exactly the idle timeout has timed out.
func TestIdleTimeoutEdge(t *testing.T) {
	m, st, _, c := newManager(t)
	ctx := context.Background()
	rctx, r, _ := m.Begin(ctx, grant(false), client)
	r.End(0, 0, 200)
	id := sessionOf(t, rctx).row.ID
	c.advance(60*time.Second - time.Nanosecond)
	m.Tick(ctx)
	if _, ok := m.Live(id); !ok {
		t.Fatal("session closed before the idle timeout")
	}
	c.advance(time.Nanosecond)
	m.Tick(ctx)
	if _, ok := m.Live(id); ok {
		t.Fatal("session still open at exactly the idle timeout")
	}
	waitStatus(t, st, id, store.SessionDisconnected, "idle timeout")
}
