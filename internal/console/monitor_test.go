package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

var rowID = regexp.MustCompile(`<tr data-id="([^"]+)">`)

// TestConnectionFilters pins the server-side filters and pages of Monitoring → Connections: only the matching rows
// are rendered, a page holds at most 50, and a bad time is shown next to its field.
func TestConnectionFilters(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	statuses := []string{store.SessionConnected, store.SessionDisconnected, store.SessionTerminated}
	for i := 0; i < 120; i++ {
		at := t0.Add(time.Duration(i) * time.Hour)
		s := &store.APISession{ID: fmt.Sprintf("s%03d", i), Key: fmt.Sprintf("k%03d", i), UserID: fmt.Sprintf("u%d", i%4), UserName: fmt.Sprintf("user%d", i%4),
			TargetID: fmt.Sprintf("t%d", i%5), TargetName: fmt.Sprintf("target%d", i%5), ClientAddress: "192.0.2.9", Status: statuses[i%3],
			Connected: at, LastActivity: at}
		if err := gh.Server.Store().InsertSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	w := newWeb(t, gh.URL, roots(gh))
	w.signIn("admin", testserver.AdminPassword)
	rows := func(q string) []string {
		t.Helper()
		st, body, _ := w.get("/monitor/connections?" + q)
		if st != http.StatusOK {
			t.Fatalf("?%s = %d %.300s", q, st, body)
		}
		var ids []string
		for _, m := range rowID.FindAllStringSubmatch(body, -1) {
			ids = append(ids, m[1])
		}
		return ids
	}
	want := func(keep func(i int) bool, from, n int) []string {
		var ids []string
		for i := 119; i >= 0; i-- { // newest first
			if keep(i) {
				ids = append(ids, fmt.Sprintf("s%03d", i))
			}
		}
		return ids[min(from, len(ids)):min(from+n, len(ids))]
	}
	for _, c := range []struct {
		q    string
		keep func(int) bool
		from int
	}{
		{"", func(int) bool { return true }, 0},
		{"offset=50", func(int) bool { return true }, 50},
		{"user=u1", func(i int) bool { return i%4 == 1 }, 0},
		{"target=t2&status=TERMINATED", func(i int) bool { return i%5 == 2 && i%3 == 2 }, 0},
		{"status=CONNECTED&from=2026-03-02T00:00&to=2026-03-03T00:00", func(i int) bool { return i%3 == 0 && i >= 12 && i <= 36 }, 0},
		{"keywords=target4", func(i int) bool { return i%5 == 4 }, 0},
	} {
		got, exp := rows(c.q), want(c.keep, c.from, 50)
		if strings.Join(got, ",") != strings.Join(exp, ",") {
			t.Errorf("?%s rows %v, want %v", c.q, got, exp)
		}
	}
	st, body, _ := w.get("/monitor/connections?from=yesterday")
	if st != http.StatusBadRequest || !strings.Contains(body, `id="err-from"`) {
		t.Errorf("bad from = %d, want 400 with the error next to the field", st)
	}
}

// TestTerminateUserConnections pins "terminate all of a user's": a confirmation page, then every open session of the
// user ends and their next request is refused before it reaches the target.
func TestTerminateUserConnections(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	hits := 0
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++; io.WriteString(w, "ok") }))
	defer upstream.Close()
	host := strings.TrimPrefix(upstream.URL, "http://")
	uid := newUser(t, gh, adm, "dora", "Dora-pass-12345", auth.APIProxyCredentialsOwn)
	var roles struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	gh.JSON("GET", "/role-store/api/v1/users/"+uid+"/roles", adm, nil, http.StatusOK, &roles)
	tid := gh.Create("/api-proxy/api/v1/api-targets", adm, map[string]any{"name": "plain", "roles": []map[string]string{{"id": roles.Items[0].ID}},
		"authorized_endpoints": []map[string]any{{"host": host, "protocols": []string{"http"}, "methods": []string{"GET"}, "paths": []string{"/**"}}},
		"target_credential":    map[string]any{"type": "token", "bearer_token": "t"}})
	dora := gh.Token("dora", "Dora-pass-12345")
	cred := gh.Create("/api-proxy/api/v1/users/current/client-credentials", dora, map[string]any{"name": "c", "target": map[string]string{"id": tid}})
	_, secret := gh.Do("GET", "/api-proxy/api/v1/users/current/client-credentials/"+cred+"/secret", dora, nil)
	proxyURL, _ := url.Parse("http://" + gh.Server.ProxyAddr())
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}, Timeout: 10 * time.Second}
	call := func() int {
		req, _ := http.NewRequest("GET", upstream.URL+"/x", nil)
		req.Header.Set("Authorization", "Bearer "+string(secret))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := call(); st != http.StatusOK {
		t.Fatalf("request through the proxy = %d", st)
	}

	w := newWeb(t, gh.URL, roots(gh))
	w.signIn("admin", testserver.AdminPassword)
	st, body, _ := w.get("/monitor/users/" + uid + "/terminate?name=dora")
	if st != http.StatusOK || !strings.Contains(body, "Terminate every open connection of dora?") {
		t.Fatalf("confirmation page = %d %.300s", st, body)
	}
	tok := csrfField.FindStringSubmatch(body)[1]
	if st, _, hdr := w.post("/monitor/users/"+uid+"/terminate", url.Values{"csrf": {tok}}, nil); st != http.StatusSeeOther || !strings.Contains(hdr.Get("Location"), uid) {
		t.Fatalf("terminate = %d %s", st, hdr.Get("Location"))
	}
	before := hits
	if st := call(); st == http.StatusOK || hits != before {
		t.Errorf("after terminating dora's sessions her next request = %d (target hits %d → %d)", st, before, hits)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, body, _ := w.get("/monitor/connections?user=" + uid + "&status=TERMINATED")
		if len(rowID.FindAllString(body, -1)) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TERMINATED session of dora listed: %.500s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTargetEditKeepsSecrets pins the target editor's update: the form as the page renders it, sent back with a
// changed comment and the secret fields left blank, changes the comment and keeps the stored secret and endpoints.
func TestTargetEditKeepsSecrets(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	tid := gh.Create("/api-proxy/api/v1/api-targets", adm, map[string]any{"name": "keep",
		"authorized_endpoints": []map[string]any{{"host": "api.example.com", "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/v1/**"}}},
		"target_credential":    map[string]any{"type": "basicauth", "basic_auth_username": "svc", "basic_auth_password": "pw-123"}})
	w := newWeb(t, gh.URL, roots(gh))
	w.signIn("admin", testserver.AdminPassword)
	st, page, _ := w.get("/admin/targets/" + tid)
	if st != http.StatusOK {
		t.Fatalf("edit page = %d", st)
	}
	// Read back every field the page renders, as a browser would submit it.
	form := url.Values{}
	for _, m := range regexp.MustCompile(`<input ([^>]*)>`).FindAllStringSubmatch(page, -1) {
		attr := func(n string) (string, bool) {
			a := regexp.MustCompile(`\b` + n + `="([^"]*)"`).FindStringSubmatch(m[1])
			if a == nil {
				return "", false
			}
			return a[1], true
		}
		name, ok := attr("name")
		if !ok || strings.Contains(name, "__i__") {
			continue
		}
		value, _ := attr("value")
		if typ, _ := attr("type"); typ == "checkbox" {
			if !strings.Contains(m[1], " checked") {
				continue
			}
			if value == "" {
				value = "on"
			}
		}
		form.Add(name, value)
	}
	form.Set("target_credential.type", "basicauth")
	form.Set("comment", "edited in the console")
	if st, body, hdr := w.post("/admin/targets/"+tid, form, nil); st != http.StatusSeeOther {
		t.Fatalf("save = %d %s %.500s", st, hdr.Get("Location"), body)
	}
	var got struct {
		Comment   string `json:"comment"`
		Endpoints []struct {
			Host  string   `json:"host"`
			Paths []string `json:"paths"`
		} `json:"authorized_endpoints"`
		Credential struct {
			Type     string `json:"type"`
			User     string `json:"basic_auth_username"`
			Password bool   `json:"basic_auth_password_set"`
		} `json:"target_credential"`
	}
	gh.JSON("GET", "/api-proxy/api/v1/api-targets/"+tid, adm, nil, http.StatusOK, &got)
	if got.Comment != "edited in the console" || !got.Credential.Password || got.Credential.User != "svc" ||
		len(got.Endpoints) != 1 || got.Endpoints[0].Host != "api.example.com" || got.Endpoints[0].Paths[0] != "/v1/**" {
		t.Errorf("after the edit: %+v", got)
	}
}

// TestLiveFeedEndsOnShutdown pins that an open live connection list does not hold the server's graceful shutdown:
// the stream says it ended and closes.
func TestLiveFeedEndsOnShutdown(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	w := newWeb(t, gh.URL, roots(gh))
	w.signIn("admin", testserver.AdminPassword)
	resp, err := w.client.Get(gh.URL + "/monitor/connections/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("events = %d %s", resp.StatusCode, ct)
	}
	first := make([]byte, 64)
	if _, err := io.ReadAtLeast(resp.Body, first, len("event: connections")); err != nil || !strings.HasPrefix(string(first), "event: connections") {
		t.Fatalf("first event %q: %v", first, err)
	}
	rest := make(chan string, 1)
	go func() { b, _ := io.ReadAll(resp.Body); rest <- string(b) }()
	gh.Stop() // reports an error through t if the shutdown had to give up on the open stream
	if got := <-rest; !strings.Contains(got, "event: ended") {
		t.Errorf("the stream ended without saying so: %q", got)
	}
}
