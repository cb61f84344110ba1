package e2e_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

const indexAPI = "/trail-index/api/v1/index/search"

type searchHit struct {
	ConnectionID string `json:"connection_id"`
	ChannelID    string `json:"channel_id"`
	Type         string `json:"type"`
	Position     int64  `json:"position"`
	Content      string `json:"content"`
	Method       string `json:"method"`
	Path         string `json:"path"`
	Status       int    `json:"status"`
	User         struct{ Name string }
	Extra        struct {
		HTTPRequest   string `json:"http_request"`
		HTTPTransport string `json:"http_transport"`
	} `json:"extra"`
	Links struct{ Connection, Exchange string }
}

type searchPage struct {
	Count int         `json:"count"`
	Items []searchHit `json:"items"`
}

func (f *fixture) search(body map[string]any) searchPage {
	f.t.Helper()
	var p searchPage
	f.gh.JSON("POST", indexAPI, f.adm, body, http.StatusOK, &p)
	return p
}

// flushIndex waits (bounded) until the asynchronous indexer has written everything recorded so far.
func (f *fixture) flushIndex() {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.gh.Server.TrailIndexer().Flush(ctx); err != nil {
		f.t.Fatalf("trail index did not drain: %v", err)
	}
}

// TestTrailSearch sends real requests through the proxy and finds them across sessions through the service API's
// trail index and the configuration API's session search, with the secrets redacted there as in the trail.
func TestTrailSearch(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	hc := f.client(true)
	c := f.credential(f.alpha, "search", nil)
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/api/apps/v1/namespaces/prod/deployments", ""},
		{"POST", "/api/echo/prod/config", `{"note":"Needle-42 in a haystack"}`},
		{"POST", "/api/echo/dev/config", `{"note":"nothing here"}`},
		{"GET", "/api/headers", ""}, // the origin answers with the request headers: the injected target token
	} {
		if st, body := f.do(hc, r.method, f.https.URL+r.path, c.Secret, r.body); st/100 != 2 {
			t.Fatalf("%s %s: %d %s", r.method, r.path, st, body)
		}
	}
	id := f.session(c.ID)
	f.flushIndex()

	t.Run("method and path prefix in the last week", func(t *testing.T) {
		p := f.in(t).search(map[string]any{"method": "post", "path_prefix": "/api/echo/prod",
			"start_time": time.Now().Add(-7 * 24 * time.Hour).UTC().Format(time.RFC3339)})
		if p.Count != 1 || len(p.Items) != 1 {
			t.Fatalf("got %+v, want the one POST under /api/echo/prod", p)
		}
		h := p.Items[0]
		if h.ConnectionID != id || h.Path != "/api/echo/prod/config" || h.Status != 201 || h.User.Name != "alice" || h.Type != "http" ||
			h.Extra.HTTPTransport != "HTTP/2" || !strings.HasPrefix(h.Extra.HTTPRequest, "POST "+f.https.HostPort+"/api/echo/prod") {
			t.Errorf("hit: %+v", h)
		}
		if h.Links.Connection != connsAPI+"/connections/"+id {
			t.Errorf("connection link %q", h.Links.Connection)
		}
		// The exchange link opens exactly that exchange in its trail.
		var tr struct {
			Items []struct {
				Seq int64  `json:"seq"`
				URL string `json:"url"`
			} `json:"items"`
		}
		f.gh.JSON("GET", h.Links.Exchange, f.adm, nil, http.StatusOK, &tr)
		if len(tr.Items) != 1 || tr.Items[0].Seq != h.Position || !strings.HasSuffix(tr.Items[0].URL, h.Path) {
			t.Errorf("exchange link %s shows %+v, want seq %d", h.Links.Exchange, tr.Items, h.Position)
		}
	})

	t.Run("a response that contained a string", func(t *testing.T) {
		p := f.in(t).search(map[string]any{"response_contains": "needle-42"})
		if p.Count != 1 || !strings.Contains(p.Items[0].Content, "Needle-42") {
			t.Fatalf("got %+v, want one hit showing Needle-42", p)
		}
		if p := f.in(t).search(map[string]any{"request_contains": "haystack", "path_prefix": "/api/echo/dev"}); p.Count != 0 {
			t.Errorf("request text from another path matched: %+v", p)
		}
	})

	t.Run("secrets are not searchable", func(t *testing.T) {
		p := f.in(t).search(map[string]any{"path_prefix": "/api/headers"})
		if p.Count != 1 {
			t.Fatalf("the headers exchange is not indexed: %+v", p)
		}
		for _, s := range []string{alphaToken, c.Secret} {
			if p := f.in(t).search(map[string]any{"keywords": s}); p.Count != 0 {
				t.Errorf("searching for a secret found %d exchanges", p.Count)
			}
		}
		// The proxy masks the injected token in what the target sends back; the masked form is what is indexed.
		if p := f.in(t).search(map[string]any{"response_contains": "Bearer ****", "path_prefix": "/api/headers"}); p.Count != 1 {
			t.Errorf("the masked form is what the index holds: %+v", p)
		}
	})

	t.Run("permissions and bad input", func(t *testing.T) {
		alice := f.gh.Token("alice", userPassword)
		if st, _ := f.gh.Do("POST", indexAPI, alice, map[string]any{}); st != http.StatusForbidden {
			t.Errorf("alice searched trails: %d", st)
		}
		for field, body := range map[string]map[string]any{
			"start_time":  {"start_time": "last week"},
			"protocol":    {"protocol": "ftp"},
			"channel_id":  {"channel_id": "one"},
			"path_prefix": {"path_prefix": "api"},
			"keywords":    {"keywords": "ab"},
			"nonsense":    {"nonsense": 1},
		} {
			st, b := f.gh.Do("POST", indexAPI, f.adm, body)
			var e struct {
				Property string `json:"property"`
			}
			if json.Unmarshal(b, &e); st != http.StatusBadRequest || e.Property != field {
				t.Errorf("%v: %d %s, want 400 naming %s", body, st, b, field)
			}
		}
	})

	t.Run("configuration API session search", func(t *testing.T) {
		a := newCfgAdmin(t, f.gh)
		var out struct {
			Items []struct {
				Key  string         `json:"key"`
				Body map[string]any `json:"body"`
				Meta struct{ Href, Exchange string }
			} `json:"items"`
			Meta struct {
				MatchCount int `json:"match_count"`
			} `json:"meta"`
		}
		q := url.Values{"response_content": {"Needle-42"}, "method": {"POST"}}
		if err := json.Unmarshal(a.call("GET", "/api/audit/sessions?"+q.Encode(), nil, http.StatusOK), &out); err != nil {
			t.Fatal(err)
		}
		if out.Meta.MatchCount != 1 || len(out.Items) != 1 || out.Items[0].Body["session"] != id ||
			out.Items[0].Meta.Href != "/api/audit/sessions/"+id || !strings.Contains(out.Items[0].Body["content"].(string), "Needle-42") {
			t.Errorf("session search: %+v", out)
		}
		a.call("GET", "/api/audit/sessions?start=yesterday", nil, http.StatusBadRequest)

		// Listing sessions needs connections-view; searching their bodies needs connections-trails as well.
		viewer := f.gh.Create(rolesAPI+"/roles", f.adm, map[string]any{"name": "session-viewers", "permissions": []string{"connections-view"}})
		vid := f.gh.Create(usersAPI+"/users", f.adm, map[string]any{"username": "viewer", "password": userPassword, "enabled": true})
		f.gh.JSON("PUT", rolesAPI+"/users/"+vid+"/roles", f.adm, []map[string]string{{"id": viewer}}, http.StatusOK, nil)
		vtok := f.gh.Token("viewer", userPassword)
		if st, b := f.gh.Do("GET", "/api/audit/sessions", vtok, nil); st != http.StatusOK {
			t.Errorf("viewer lists sessions: %d %s", st, b)
		}
		if st, b := f.gh.Do("GET", "/api/audit/sessions?response_content=Needle-42", vtok, nil); st != http.StatusForbidden || strings.Contains(string(b), "Needle-42") {
			t.Errorf("viewer searched trail bodies: %d %s", st, b)
		}
		if st, _ := f.gh.Do("POST", indexAPI, vtok, map[string]any{"response_contains": "Needle-42"}); st != http.StatusForbidden {
			t.Errorf("viewer searched the trail index: %d", st)
		}
		a.call("GET", "/api/audit/sessions?content=ab", nil, http.StatusBadRequest)
		a.call("GET", "/api/audit/sessions?content="+strings.Repeat("x", 10001), nil, http.StatusBadRequest)
	})

	t.Run("every search is audited", func(t *testing.T) {
		var ev struct {
			Count int `json:"count"`
		}
		f.gh.JSON("GET", "/audit/api/v1/events?action=search-trails", f.adm, nil, http.StatusOK, &ev)
		if ev.Count < 5 {
			t.Errorf("%d search-trails events", ev.Count)
		}
	})

	t.Run("indexing disabled by the connection policy", func(t *testing.T) {
		a := newCfgAdmin(t, f.gh)
		// A priority would be stored with no effect: refused, by name, and nothing is staged.
		body := a.body(cfgConnections + "/-1")
		body["indexing"].(map[string]any)["priority"] = 5
		st, b := a.callStatus("PUT", cfgConnections+"/-1", body)
		if st != http.StatusBadRequest || !strings.Contains(string(b), `"NOT_SUPPORTED"`) || !strings.Contains(string(b), `"indexing.priority"`) {
			t.Fatalf("indexing.priority 5: %d %s", st, b)
		}
		if p := a.body(cfgConnections + "/-1")["indexing"].(map[string]any)["priority"]; p != float64(3) {
			t.Fatalf("priority after the refusal: %v", p)
		}
		a.edit(cfgConnections+"/-1", func(b map[string]any) { b["indexing"].(map[string]any)["enabled"] = false })
		a.commit()
		c2 := f.credential(f.alpha, "unindexed", nil)
		if st, _ := f.do(hc, "GET", f.https.URL+"/api/unindexed-marker", c2.Secret, ""); st != 200 {
			t.Fatalf("request: %d", st)
		}
		f.flushIndex()
		if p := f.in(t).search(map[string]any{"keywords": "unindexed-marker"}); p.Count != 0 {
			t.Errorf("an exchange of a policy with indexing off was indexed: %+v", p)
		}
	})
}

// TestRetention runs the retention job of a real server on its own clock: sessions past channel_database_cleanup
// lose their row, trail file and index entries, a session under a legal hold keeps all three, and the run is
// audited. The days come from http/options here; the per-policy rule is covered by the retention package's test.
func TestRetention(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	hc := f.client(false)
	ids := map[string]string{}
	for _, name := range []string{"old", "held"} {
		c := f.credential(f.alpha, name, nil)
		if st, _ := f.do(hc, "GET", f.https.URL+"/api/retention-"+name, c.Secret, ""); st != 200 {
			t.Fatalf("request: %d", st)
		}
		ids[name] = f.session(c.ID)
		f.gh.JSON("POST", connsAPI+"/terminate/connection/"+ids[name], f.adm, nil, http.StatusOK, nil)
		f.waitConnection(c.ID, func(cn connection) bool { return cn.Status == "TERMINATED" })
	}
	hc.CloseIdleConnections()
	f.flushIndex()
	var held struct {
		LegalHold bool   `json:"legal_hold"`
		Reason    string `json:"legal_hold_reason"`
	}
	f.gh.JSON("PUT", connsAPI+"/connections/"+ids["held"]+"/legal-hold", f.adm, map[string]any{"hold": true, "reason": "case 7"}, http.StatusOK, &held)
	if !held.LegalHold || held.Reason != "case 7" {
		t.Fatalf("legal hold: %+v", held)
	}

	job := f.gh.Server.Retention()
	job.Now = func() time.Time { return time.Now().Add(40 * 24 * time.Hour) }
	if res := job.Tick(context.Background()); len(res.Deleted) != 0 {
		t.Fatalf("with no cleanup configured, the job deleted %v", res.Deleted)
	}
	a := newCfgAdmin(t, f.gh)
	a.edit("/api/configuration/http/options", func(b map[string]any) {
		b["channel_database_cleanup"] = map[string]any{"enabled": true, "days": 30}
	})
	a.commit()
	job.Now = func() time.Time { return time.Now().Add(29 * 24 * time.Hour) }
	if res := job.Tick(context.Background()); len(res.Deleted[""]) != 0 || res.Err != nil {
		t.Fatalf("29 days on, the job deleted %v (%v)", res.Deleted, res.Err)
	}
	job.Now = func() time.Time { return time.Now().Add(31 * 24 * time.Hour) }
	res := job.Tick(context.Background())
	if res.Err != nil || len(res.Deleted[""]) != 1 || res.Deleted[""][0] != ids["old"] {
		t.Fatalf("31 days on: deleted %v (%v), want only %s", res.Deleted, res.Err, ids["old"])
	}
	trail := func(id string) string { return filepath.Join(f.gh.Cfg.DataDir, "recordings", id+".trail") }
	if st, _ := f.gh.Do("GET", connsAPI+"/connections/"+ids["old"], f.adm, nil); st != http.StatusNotFound {
		t.Errorf("expired session still listed: %d", st)
	}
	if _, err := os.Stat(trail(ids["old"])); !os.IsNotExist(err) {
		t.Errorf("expired trail file still there: %v", err)
	}
	if p := f.search(map[string]any{"connection_id": ids["old"]}); p.Count != 0 {
		t.Errorf("expired index entries still found: %d", p.Count)
	}
	if st, _ := f.gh.Do("GET", connsAPI+"/connections/"+ids["held"], f.adm, nil); st != http.StatusOK {
		t.Errorf("held session gone: %d", st)
	}
	if _, err := os.Stat(trail(ids["held"])); err != nil {
		t.Errorf("held trail gone: %v", err)
	}
	if p := f.search(map[string]any{"connection_id": ids["held"]}); p.Count != 1 {
		t.Errorf("held session's index entries: %d, want 1", p.Count)
	}
	var ev struct {
		Items []struct {
			Actor string         `json:"actor"`
			Diff  map[string]any `json:"diff"`
		} `json:"items"`
	}
	f.gh.JSON("GET", "/audit/api/v1/events?action=retention-cleanup", f.adm, nil, http.StatusOK, &ev)
	if len(ev.Items) != 1 || ev.Items[0].Actor != "gatehouse" || ev.Items[0].Diff["deleted"] != float64(1) {
		t.Errorf("retention audit events: %+v", ev.Items)
	}
	f.gh.JSON("GET", "/audit/api/v1/events?action=legal-hold", f.adm, nil, http.StatusOK, &ev)
	if len(ev.Items) != 1 {
		t.Errorf("legal hold audit events: %+v", ev.Items)
	}

	// Released, the held session goes at the next run.
	f.gh.JSON("PUT", connsAPI+"/connections/"+ids["held"]+"/legal-hold", f.adm, map[string]any{"hold": false}, http.StatusOK, nil)
	if res := job.Tick(context.Background()); len(res.Deleted[""]) != 1 {
		t.Errorf("after release: deleted %v", res.Deleted)
	}
}

// TestTrailDownloadAuditing: log_audit_trail_downloads=false stops the audit of trail reads for sessions of that
// policy, and switching it is itself an audit event.
func TestTrailDownloadAuditing(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	hc := f.client(false)
	c := f.credential(f.alpha, "downloads", nil)
	if st, _ := f.do(hc, "GET", f.https.URL+"/api/x", c.Secret, ""); st != 200 {
		t.Fatalf("request: %d", st)
	}
	id := f.session(c.ID)
	reads := func() int {
		var ev struct {
			Count int `json:"count"`
		}
		f.gh.JSON("GET", "/audit/api/v1/events?action=read-trail&object_id="+id, f.adm, nil, http.StatusOK, &ev)
		return ev.Count
	}
	read := func() {
		if st, b := f.gh.Do("GET", connsAPI+"/connections/"+id+"/trail?format=har", f.adm, nil); st != 200 {
			t.Fatalf("trail: %d %s", st, b)
		}
	}
	read()
	if n := reads(); n != 1 {
		t.Fatalf("%d read-trail events, want 1", n)
	}
	a := newCfgAdmin(t, f.gh)
	a.edit(cfgConnections+"/-1", func(b map[string]any) { b["log_audit_trail_downloads"] = false })
	a.commit()
	read()
	if n := reads(); n != 1 {
		t.Errorf("with log_audit_trail_downloads off: %d read-trail events, want still 1", n)
	}
	var ev struct {
		Items []struct {
			Actor    string         `json:"actor"`
			ObjectID string         `json:"object_id"`
			Diff     map[string]any `json:"diff"`
		} `json:"items"`
	}
	f.gh.JSON("GET", "/audit/api/v1/events?action=trail-download-auditing", f.adm, nil, http.StatusOK, &ev)
	if len(ev.Items) != 1 || ev.Items[0].Actor != "admin" || ev.Items[0].ObjectID != "-1" {
		t.Fatalf("switch audit events: %+v", ev.Items)
	}
	a.edit(cfgConnections+"/-1", func(b map[string]any) { b["log_audit_trail_downloads"] = true })
	a.commit()
	read()
	if n := reads(); n != 2 {
		t.Errorf("switched back on: %d read-trail events, want 2", n)
	}
	f.gh.JSON("GET", "/audit/api/v1/events?action=trail-download-auditing", f.adm, nil, http.StatusOK, &ev)
	if len(ev.Items) != 2 {
		t.Errorf("switch audit events after switching back: %d", len(ev.Items))
	}
}

// callStatus is call without an expected status: it returns status and body.
func (a *cfgAdmin) callStatus(method, path string, body any) (int, []byte) {
	a.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		a.t.Fatal(err)
	}
	req, _ := http.NewRequest(method, a.gh.URL+path, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.c.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}
