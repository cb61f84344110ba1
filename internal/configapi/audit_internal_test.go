package configapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/sessions"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func TestAuditSessionsAndTerminate(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	for i := range 3 {
		at := h.clock.Now().Add(time.Duration(i) * time.Minute)
		if err := h.st.InsertSession(ctx, &store.APISession{ID: fmt.Sprintf("s%d", i), Key: "k", UserName: "alice", ClientAddress: "10.0.0.1",
			Status: store.SessionConnected, Connected: at, LastActivity: at, AuditEnabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	var terminated []string
	h.svc.Terminate = func(_ context.Context, id, reason string) error {
		if id != "s1" {
			return sessions.ErrNotActive
		}
		terminated = append(terminated, id)
		return nil
	}
	sid := h.login("admin")
	var out struct {
		Items []struct {
			Key  string         `json:"key"`
			Body map[string]any `json:"body"`
		} `json:"items"`
		Meta struct {
			MatchCount int `json:"match_count"`
		} `json:"meta"`
	}
	_, b := h.do("GET", "/api/audit/sessions?limit=2&offset=0&fields=status,user", sid, nil)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Meta.MatchCount != 3 || len(out.Items) != 2 || out.Items[0].Key != "s2" || len(out.Items[0].Body) != 2 || out.Items[0].Body["status"] != "CONNECTED" {
		t.Fatalf("sessions page: %s", b)
	}
	for _, q := range []string{"limit=x", "offset=-1", "fields=nope"} {
		if status, b := h.do("GET", "/api/audit/sessions?"+q, sid, nil); status != 400 || errorCode(t, b) != CodeInvalidQuery {
			t.Errorf("%s: %d %s", q, status, b)
		}
	}
	h.must("DELETE", "/api/active-sessions?id=s1", sid, nil, http.StatusOK)
	if status, _ := h.do("DELETE", "/api/active-sessions?id=s0", sid, nil); status != http.StatusNotFound {
		t.Fatalf("terminating a closed session: %d", status)
	}
	if len(terminated) != 1 {
		t.Fatalf("terminated = %v", terminated)
	}
	viewer := h.login("viewer")
	if status, b := h.do("DELETE", "/api/active-sessions?id=s1", viewer, nil); status != http.StatusForbidden || errorCode(t, b) != CodeUnauthorized {
		t.Fatalf("terminate without permission: %d %s", status, b)
	}
}

func TestLoginRateLimited(t *testing.T) {
	h := newHarness(t)
	for range 5 {
		req, _ := http.NewRequest("GET", h.srv.URL+"/api/authentication", nil)
		req.SetBasicAuth("admin", "wrong")
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failed login answered %d", resp.StatusCode)
		}
	}
	req, _ := http.NewRequest("GET", h.srv.URL+"/api/authentication", nil)
	req.SetBasicAuth("admin", testPassword)
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("sixth attempt: %d, want 429 with Retry-After", resp.StatusCode)
	}
}
