package proxy

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// reasonAuthorizer refuses each path with its own precise reason, naming who was refused, the way the gate does.
type reasonAuthorizer struct{ target *Target }

func (a *reasonAuthorizer) Authorize(_ context.Context, r *AuthRequest) (*Grant, error) {
	if r.Method == http.MethodConnect {
		return nil, nil
	}
	g := &Grant{Target: a.target, Secret: r.Secret,
		Session: SessionInfo{UserID: "u1", UserName: "alice", CredentialID: "c1", CredentialName: "laptop", TargetName: a.target.Name}}
	switch {
	case r.Secret != userSecret:
		return nil, ErrUnauthenticated
	case strings.HasPrefix(r.Path, "/api/admin"):
		return nil, &DeniedError{Reason: "unauthorized endpoint matches", Grant: g}
	case strings.HasPrefix(r.Path, "/other"):
		return nil, &DeniedError{Reason: "no authorized endpoint matches", Grant: g}
	case strings.HasPrefix(r.Path, "/expired"):
		return nil, &DeniedError{Reason: "credential has expired", Grant: &Grant{Session: g.Session}}
	}
	return g, nil
}

// fakeSessions opens no real session; it counts what it was asked to account.
type fakeSessions struct {
	mu    sync.Mutex
	begun int
}

func (s *fakeSessions) Begin(ctx context.Context, _ *Grant, _ netip.AddrPort) (context.Context, ActiveRequest, error) {
	s.mu.Lock()
	s.begun++
	s.mu.Unlock()
	return ctx, nopActive{}, nil
}

type nopActive struct{}

func (nopActive) End(int64, int64, int) {}

// TestNeutralDenial pins issue 9's "proxy messages map the deny list": every policy denial answers the same 403
// and body but for a request id (also in X-Request-Id), while the precise reason, with who was refused, is in the
// access log line, the Denied hook (the audit event) and, for an audited target, the trail; none of it reaches the
// target.
func TestNeutralDenial(t *testing.T) {
	rec := &fakeRecorder{}
	sess := &fakeSessions{}
	var mu sync.Mutex
	var denied []DeniedRequest
	st := newSetup(t, false, nil, func(s *Server, tg *Target) {
		tg.AuditEnabled = true
		s.Recorder, s.Sessions = rec, sess
		s.Denied = func(d DeniedRequest) { mu.Lock(); denied = append(denied, d); mu.Unlock() }
	})
	st.srv.Authorizer = &reasonAuthorizer{target: st.target}
	host := st.origin.hostPort()
	conn, br := plainTunnel(t, st.addr, host)
	var bodies []string
	ids := map[string]bool{}
	for _, path := range []string{"/api/admin/users", "/other", "/expired"} {
		resp := rawExchange(t, conn, br, "GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\nAuthorization: Bearer "+userSecret+"\r\n\r\n")
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
		var e struct {
			ErrorCode, ErrorMessage, RequestID string
		}
		if err := json.Unmarshal(b, &struct {
			ErrorCode    *string `json:"error_code"`
			ErrorMessage *string `json:"error_message"`
			RequestID    *string `json:"request_id"`
		}{&e.ErrorCode, &e.ErrorMessage, &e.RequestID}); err != nil {
			t.Fatalf("%s: body %q: %v", path, b, err)
		}
		if e.RequestID == "" || resp.Header.Get("X-Request-Id") != e.RequestID || resp.Header.Get(RequestIDHeader) != e.RequestID {
			t.Errorf("%s: request id %q in the body, %q and %q in the headers", path, e.RequestID,
				resp.Header.Get("X-Request-Id"), resp.Header.Get(RequestIDHeader))
		}
		if ids[e.RequestID] {
			t.Errorf("request id %q minted twice", e.RequestID)
		}
		ids[e.RequestID] = true
		if strings.Contains(string(b), "endpoint") || strings.Contains(string(b), "expired") {
			t.Errorf("%s: the answer tells the reason: %s", path, b)
		}
		bodies = append(bodies, strings.Replace(string(b), e.RequestID, "ID", 1))
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Errorf("denials differ: %q vs %q", b, bodies[0])
		}
	}
	if n := st.origin.hits.Load(); n != 0 {
		t.Errorf("origin saw %d denied requests", n)
	}
	logs := st.logs.String()
	for _, want := range []string{`"reason":"unauthorized endpoint matches"`, `"reason":"no authorized endpoint matches"`,
		`"reason":"credential has expired"`, `"user":"alice"`, `"credential":"laptop"`, `"request_id":"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("access log lacks %s:\n%s", want, logs)
		}
	}
	mu.Lock()
	if len(denied) != 3 || denied[0].Reason != "unauthorized endpoint matches" || denied[0].Session.UserName != "alice" ||
		denied[0].TargetID != st.target.ID || denied[2].Session.CredentialName != "laptop" || !ids[denied[1].RequestID] {
		t.Errorf("Denied hook got %+v", denied)
	}
	mu.Unlock()
	// The two request-level denials are in the trail with their reasons and ids; the credential-level one is not,
	// as it has no session.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.exchanges) != 2 {
		t.Fatalf("trail has %d exchanges, want the 2 request-level denials", len(rec.exchanges))
	}
	for i, want := range []string{"denied: unauthorized endpoint matches", "denied: no authorized endpoint matches"} {
		ex := rec.exchanges[i]
		if ex.Decision != want || ex.Status != http.StatusForbidden || !ids[ex.ID] || !strings.HasSuffix(ex.URL, []string{"/api/admin/users", "/other"}[i]) {
			t.Errorf("trail exchange %d: decision %q status %d id %q url %q", i, ex.Decision, ex.Status, ex.ID, ex.URL)
		}
	}
}

// TestRequestIDOnForwardedAnswers: allowed requests carry their id too, and it is the one in the trail.
func TestRequestIDOnForwardedAnswers(t *testing.T) {
	rec := &fakeRecorder{}
	st := newSetup(t, false, nil, func(s *Server, tg *Target) { s.Recorder = rec; tg.AuditEnabled = true })
	conn, br := plainTunnel(t, st.addr, st.origin.hostPort())
	resp := rawExchange(t, conn, br, "GET /ok HTTP/1.1\r\nHost: "+st.origin.hostPort()+"\r\nAuthorization: Bearer "+userSecret+"\r\n\r\n")
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	id := resp.Header.Get(RequestIDHeader)
	if resp.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("status %d, request id %q", resp.StatusCode, id)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.exchanges) != 1 || rec.exchanges[0].ID != id || rec.exchanges[0].Decision != "allowed" {
		t.Errorf("trail: %+v, want id %q allowed", rec.exchanges, id)
	}
}
