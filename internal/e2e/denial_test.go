package e2e_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestDenialTraced pins issue 9's neutral refusals end to end: the client learns only a request id, and an admin
// finds the request behind it, with the user, the credential, the target and the precise reason, in the session's
// trail and in the audit log.
func TestDenialTraced(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	c := f.credential(f.alpha, "denied-laptop", nil)
	hc := f.client(false)
	if st, _ := f.do(hc, "GET", f.https.URL+"/api/items/1", c.Secret, ""); st != http.StatusOK {
		t.Fatalf("allowed request: %d", st)
	}
	req, _ := http.NewRequest("GET", f.https.URL+"/api/ADMIN/users", nil)
	req.Header.Set("Authorization", "Bearer "+c.Secret)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var refusal struct {
		Code      string `json:"error_code"`
		Message   string `json:"error_message"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(body, &refusal); err != nil || resp.StatusCode != http.StatusForbidden || refusal.RequestID == "" ||
		resp.Header.Get("X-Request-Id") != refusal.RequestID || strings.Contains(refusal.Message, "endpoint") {
		t.Fatalf("refusal %d %s (X-Request-Id %q)", resp.StatusCode, body, resp.Header.Get("X-Request-Id"))
	}
	for _, r := range f.https.Requests() {
		if strings.Contains(strings.ToLower(r.Path), "admin") {
			t.Errorf("origin got the denied request %s", r.Path)
		}
	}

	// The trail of the credential's session has the denial, by request id.
	id := f.session(c.ID)
	var trail struct {
		Items []struct {
			ID       string `json:"id"`
			Method   string `json:"method"`
			URL      string `json:"url"`
			Status   int    `json:"status"`
			Decision string `json:"decision"`
		} `json:"items"`
	}
	var found bool
	for deadline := time.Now().Add(10 * time.Second); !found && time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
		f.gh.JSON("GET", connsAPI+"/connections/"+id+"/trail", f.adm, nil, http.StatusOK, &trail)
		for _, x := range trail.Items {
			if x.ID == refusal.RequestID {
				found = true
				if x.Decision != "denied: unauthorized endpoint matches" || x.Status != http.StatusForbidden || !strings.HasSuffix(x.URL, "/api/ADMIN/users") {
					t.Errorf("trail exchange of the denial: %+v", x)
				}
			}
		}
	}
	if !found {
		t.Fatalf("request id %s not in the trail: %+v", refusal.RequestID, trail.Items)
	}
	if trail.Items[0].Decision != "allowed" || trail.Items[0].ID == "" {
		t.Errorf("allowed exchange recorded as %+v", trail.Items[0])
	}

	// The audit log has it too, with who was refused and why.
	var events struct {
		Items []struct {
			Actor    string         `json:"actor"`
			ActorID  string         `json:"actor_id"`
			ObjectID string         `json:"object_id"`
			Outcome  string         `json:"outcome"`
			Diff     map[string]any `json:"diff"`
		} `json:"items"`
	}
	found = false
	for deadline := time.Now().Add(10 * time.Second); !found && time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
		f.gh.JSON("GET", "/audit/api/v1/events?action=proxy-request-denied", f.adm, nil, http.StatusOK, &events)
		for _, e := range events.Items {
			if e.Diff["request_id"] == refusal.RequestID {
				found = true
				if e.Actor != "alice" || e.ActorID != f.userID || e.ObjectID != f.alpha || e.Outcome != "failure" ||
					e.Diff["reason"] != "unauthorized endpoint matches" || e.Diff["credential"] != "denied-laptop" || e.Diff["target"] != "alpha" {
					t.Errorf("audit event of the denial: %+v", e)
				}
			}
		}
	}
	if !found {
		t.Errorf("request id %s not in the audit log: %+v", refusal.RequestID, events.Items)
	}
}

// TestTraceAndReflection: on a target whose endpoint allows every method, TRACE (which would echo the injected
// credential) is still refused, and an origin that reflects the request headers shows the client the token masked.
func TestTraceAndReflection(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	o := startOrigin(t, nil)
	const gammaToken = "gamma-upstream-token-55aa55aa55"
	gamma := f.gh.Create(proxyAPI+"/api-targets", f.adm, map[string]any{
		"name": "gamma", "roles": []map[string]string{{"id": f.roleID}},
		"authorized_endpoints": []map[string]any{{"host": o.HostPort, "protocols": []string{"http"}, "methods": []string{"*"}, "paths": []string{"/**"}}},
		"target_credential":    map[string]any{"type": "token", "bearer_token": gammaToken},
	})
	c := f.credential(gamma, "gamma-laptop", nil)
	hc := f.client(false)
	if st, body := f.do(hc, "TRACE", o.URL+"/api/headers", c.Secret, ""); st != http.StatusForbidden {
		t.Errorf("TRACE through a \"*\" endpoint: %d %s", st, body)
	}
	if n := len(o.Requests()); n != 0 {
		t.Errorf("origin got %d requests, want none", n)
	}
	st, body := f.do(hc, "DELETE", o.URL+"/api/headers", c.Secret, "")
	if st != http.StatusOK || !strings.Contains(body, strings.Repeat("*", len(gammaToken))) {
		t.Fatalf("reflecting origin: %d %s", st, body)
	}
	noSecret(t, "the reflected headers", body, gammaToken, c.Secret)
	if got := only(t, o).Header.Get("Authorization"); got != "Bearer "+gammaToken {
		t.Errorf("origin got Authorization %q", got)
	}
}
