package e2e_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestTrailStreamEndsWithAccess pins a live trail outliving the access it was opened with: a watcher (a user or
// an API client) following a session's trail kept receiving its exchanges after losing the role that let it
// read trails, since the stream was authorized once. The watcher is now judged again before every event: right
// after the role is gone the stream says "revoked" and sends no further exchange.
func TestTrailStreamEndsWithAccess(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	hc := f.client(true)
	watchers := f.gh.Create(rolesAPI+"/roles", f.adm, map[string]any{"name": "watchers", "permissions": []string{"connections-view", "connections-trails"}})

	userID := f.gh.Create(usersAPI+"/users", f.adm, map[string]any{"username": "watcher", "password": "Watcher-pass-12", "enabled": true})
	clientID := f.gh.Create(usersAPI+"/api-clients", f.adm, map[string]any{"name": "watcher-bot", "roles": []map[string]string{{"id": watchers}}})
	var client struct {
		Secret            string `json:"secret"`
		OAuthClientID     string `json:"oauth_client_id"`
		OAuthClientSecret string `json:"oauth_client_secret"`
	}
	f.gh.JSON("GET", usersAPI+"/api-clients/"+clientID, f.adm, nil, http.StatusOK, &client)

	for _, w := range []struct {
		name  string
		token func() string
		lose  func()
	}{
		{"user", func() string {
			f.gh.JSON("PUT", rolesAPI+"/users/"+userID+"/roles", f.adm, []map[string]string{{"id": watchers}}, http.StatusOK, nil)
			return f.gh.Token("watcher", "Watcher-pass-12")
		}, func() {
			f.gh.JSON("PUT", rolesAPI+"/users/"+userID+"/roles", f.adm, []map[string]string{}, http.StatusOK, nil)
		}},
		{"api client", func() string {
			form := url.Values{"grant_type": {"password"}, "username": {clientID}, "password": {client.Secret}}
			req, _ := http.NewRequest("POST", f.gh.URL+"/auth/api/v1/oauth/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(client.OAuthClientID, client.OAuthClientSecret)
			resp, err := f.gh.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
				t.Fatalf("API client token: %d %v", resp.StatusCode, err)
			}
			return tok.AccessToken
		}, func() {
			f.gh.JSON("PUT", usersAPI+"/api-clients/"+clientID, f.adm, map[string]any{"name": "watcher-bot", "roles": []map[string]string{}}, http.StatusOK, nil)
		}},
	} {
		t.Run(w.name, func(t *testing.T) {
			c := f.credential(f.alpha, "watched-"+strings.ReplaceAll(w.name, " ", "-"), nil)
			if st, _ := f.do(hc, "GET", f.https.URL+"/api/items", c.Secret, ""); st != 200 {
				t.Fatalf("first request: %d", st)
			}
			id := f.session(c.ID)
			events := followAs(t, f, id, w.token())
			if st, _ := f.do(hc, "GET", f.https.URL+"/api/items?before=1", c.Secret, ""); st != 200 {
				t.Fatalf("request while followed: %d", st)
			}
			if ev := nextEvent(t, events); ev.Event != "exchange" || !strings.Contains(ev.Data, "before=1") {
				t.Fatalf("live event before the loss: %+v", ev)
			}
			w.lose()
			if st, _ := f.do(hc, "GET", f.https.URL+"/api/items?after=1", c.Secret, ""); st != 200 {
				t.Fatalf("request after the watcher's loss: %d", st)
			}
			ev := nextEvent(t, events)
			if ev.Event != "revoked" || strings.Contains(ev.Data, "after=1") {
				t.Fatalf("after the watcher lost its role the stream sent %+v, want revoked", ev)
			}
			for ev := range events {
				t.Errorf("the stream went on after revoked: %+v", ev)
			}
		})
	}
}
