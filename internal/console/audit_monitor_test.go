package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// cfgCall is one configuration API call on a session (cookie) client; it fails unless the answer is want.
func cfgCall(t *testing.T, gh *testserver.Instance, c *http.Client, method, path string, body any, want int) []byte {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, gh.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	return b
}

// TestMonitoringShowsAuditorsTheirConnections: Monitoring → Connections is in the menu of an auditor (an
// access_control audit rule names their role) and lists the sessions of the audited policy only, through the same
// API rule; a user who audits nothing has no such menu item and is refused the page.
func TestMonitoringShowsAuditorsTheirConnections(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	newUser(t, gh, adm, "wendy", "Wendy-pass-1234", auth.APIProxyCredentialsOwn)
	newUser(t, gh, adm, "nora", "Nora-pass-12345", auth.APIProxyCredentialsOwn)

	// The built-in connection policy (key -1) gets an audit rule for wendy's role.
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: gh.Client.Transport, Timeout: 30 * time.Second}
	req, _ := http.NewRequest("GET", gh.URL+"/api/authentication", nil)
	req.SetBasicAuth("admin", testserver.AdminPassword)
	resp, err := c.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("configuration API login: %v %v", resp, err)
	}
	resp.Body.Close()
	const policy = "/api/configuration/http/connections/-1"
	var obj struct {
		Body map[string]any `json:"body"`
	}
	if err := json.Unmarshal(cfgCall(t, gh, c, "GET", policy, nil, http.StatusOK), &obj); err != nil {
		t.Fatal(err)
	}
	obj.Body["access_control"] = []map[string]any{{"authorizer": "role-wendy", "permission": "audit",
		"subject": map[string]any{"selection": "everybody"}}}
	cfgCall(t, gh, c, "PUT", policy, obj.Body, http.StatusOK)
	cfgCall(t, gh, c, "PUT", "/api/transaction", map[string]string{"status": "commit"}, http.StatusOK)

	ctx := context.Background()
	now := time.Now().UTC()
	for _, s := range []*store.APISession{
		{ID: "s-audited", Key: "k1", UserID: "u-x", UserName: "someone", TargetID: "t1", TargetName: "orders", ConnectionPolicy: "-1"},
		{ID: "s-elsewhere", Key: "k2", UserID: "u-x", UserName: "someone", TargetID: "t1", TargetName: "orders", ConnectionPolicy: "7"},
		{ID: "s-none", Key: "k3", UserID: "u-x", UserName: "someone", TargetID: "t1", TargetName: "orders"},
	} {
		s.Status, s.ClientAddress, s.Connected, s.LastActivity = store.SessionDisconnected, "192.0.2.9", now, now
		if err := gh.Server.Store().InsertSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}

	w := newWeb(t, gh.URL, roots(gh))
	w.signIn("wendy", "Wendy-pass-1234")
	st, body, _ := w.get("/monitor/connections")
	var ids []string
	for _, m := range rowID.FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	if st != http.StatusOK || strings.Join(ids, ",") != "s-audited" {
		t.Fatalf("the auditor's connection list: %d rows %v: %.500s", st, ids, body)
	}
	if !strings.Contains(body, `href="/monitor/connections" data-section="Monitoring"`) {
		t.Error("the auditor's menu lacks Connections")
	}

	n := newWeb(t, gh.URL, roots(gh))
	n.signIn("nora", "Nora-pass-12345")
	if _, body, _ := n.get("/approvals"); strings.Contains(body, `href="/monitor/connections" data-section="Monitoring"`) {
		t.Error("a user who audits nothing has Connections in the menu")
	}
	if st, body, _ := n.get("/monitor/connections"); st != http.StatusForbidden || strings.Contains(body, "s-audited") {
		t.Errorf("a user who audits nothing: %d %.300s", st, body)
	}
}
