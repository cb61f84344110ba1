package serviceapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
	"github.com/google/go-cmp/cmp"
)

// TestRestartKeepsState builds one of everything, restarts the server on the same data dir and database, and
// checks that every object reads back the same, that the API client's credentials and the user's password still
// work, that the secrets still open and that no audit event was lost.
func TestRestartKeepsState(t *testing.T) {
	for _, pg := range []bool{false, true} {
		t.Run(map[bool]string{false: "sqlite", true: "postgres"}[pg], func(t *testing.T) { testRestartKeepsState(t, pg) })
	}
}

func testRestartKeepsState(t *testing.T, pg bool) {
	gh := testserver.Start(t, testserver.Options{Postgres: pg})
	adm := gh.AdminToken()
	userID, roleID := tokUser(t, gh, adm, "alice", "Alice-pass-1", "api-proxy-credentials-own", "users-view")
	client := tokAPIClient(t, gh, adm, "ci", "users-view")
	target := gh.Create("/api-proxy/api/v1/api-targets", adm, map[string]any{
		"name": "kube", "comment": "cluster", "tags": []string{"prod"}, "roles": []map[string]string{{"id": roleID}},
		"authorized_endpoints":   []map[string]any{{"host": "kube.example.com:6443", "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/api/**"}}},
		"unauthorized_endpoints": []map[string]any{{"host": "kube.example.com:6443", "protocols": []string{"https"}, "methods": []string{"*"}, "paths": []string{"/api/v1/secrets/**"}}},
		"target_credential":      map[string]any{"type": "basicauth", "basic_auth_username": "svc", "basic_auth_password": "Upstream-pw-1"},
		"audit_enabled":          true,
	})
	header := gh.Create("/api-proxy/api/v1/api-targets", adm, map[string]any{
		"name":                 "billing",
		"authorized_endpoints": []map[string]any{{"host": "billing.example.com", "protocols": []string{"https"}, "methods": []string{"*"}, "paths": []string{"/**"}}},
		"target_credential":    map[string]any{"type": "header", "header_name": "X-Api-Key", "header_value": "Upstream-key-1"},
	})
	alice := gh.Token("alice", "Alice-pass-1")
	cred := gh.Create("/api-proxy/api/v1/users/current/client-credentials", alice, map[string]any{"name": "laptop",
		"target": map[string]string{"id": target}, "source_address": []string{"10.0.0.0/8", "192.0.2.7"}})
	_, secret := gh.Do("GET", "/api-proxy/api/v1/users/current/client-credentials/"+cred+"/secret", alice, nil)
	gh.JSON("PUT", "/api-proxy/api/v1/settings", adm, map[string]any{"idle_session_timeout": 321, "public_addresses": []string{"proxy.example.com:20080"}}, 200, nil)

	// Every GET whose answer must be identical after the restart.
	paths := []string{
		"/local-user-store/api/v1/users", "/local-user-store/api/v1/users/" + userID,
		"/role-store/api/v1/roles", "/role-store/api/v1/roles/" + roleID, "/role-store/api/v1/roles/" + roleID + "/members",
		"/role-store/api/v1/users/" + userID + "/roles",
		"/local-user-store/api/v1/api-clients", "/local-user-store/api/v1/api-clients/" + client.ID,
		"/api-proxy/api/v1/api-targets", "/api-proxy/api/v1/api-targets/" + target, "/api-proxy/api/v1/api-targets/" + header,
		"/api-proxy/api/v1/api-targets/tags",
		"/api-proxy/api/v1/users/" + userID + "/client-credentials/" + cred,
		"/api-proxy/api/v1/settings",
	}
	snapshot := func(tok string) map[string]any {
		out := map[string]any{}
		for _, p := range paths {
			var v any
			gh.JSON("GET", p, tok, nil, http.StatusOK, &v)
			out[p] = v
		}
		return out
	}
	before := snapshot(adm)
	var auditBefore struct {
		Count int              `json:"count"`
		Items []map[string]any `json:"items"`
	}
	gh.JSON("GET", "/audit/api/v1/events?limit=1000", adm, nil, 200, &auditBefore)
	if auditBefore.Count < 10 {
		t.Fatalf("only %d audit events before the restart", auditBefore.Count)
	}

	gh.Restart()

	// A token issued before the restart is still valid: the signing key derives from the persistent master key.
	if status, b := gh.Do("GET", "/auth/api/v1/users/current", adm, nil); status != 200 {
		t.Errorf("admin token after restart: %d %s", status, b)
	}
	adm = gh.AdminToken()
	if diff := cmp.Diff(before, snapshot(adm)); diff != "" {
		t.Errorf("state changed across the restart (-before +after):\n%s", diff)
	}
	var auditAfter struct {
		Count int              `json:"count"`
		Items []map[string]any `json:"items"`
	}
	gh.JSON("GET", "/audit/api/v1/events?limit=1000", adm, nil, 200, &auditAfter)
	// The restart's own admin login adds events; everything from before is still there, unchanged.
	if auditAfter.Count < auditBefore.Count {
		t.Fatalf("audit events: %d after, %d before", auditAfter.Count, auditBefore.Count)
	}
	if diff := cmp.Diff(auditBefore.Items, auditAfter.Items[auditAfter.Count-auditBefore.Count:]); diff != "" {
		t.Errorf("audit events changed across the restart (-before +after):\n%s", diff)
	}

	// Credentials still work and secrets still open.
	if a := tokPost(t, gh, tokReq{form: tokPasswordForm(client.ID, client.Secret), basic: []string{client.OAuthClientID, client.OAuthClientSecret}}); a.Status != 200 {
		t.Errorf("api client login after restart: %d %s", a.Status, a.Raw)
	}
	alice = gh.Token("alice", "Alice-pass-1")
	if status, again := gh.Do("GET", "/api-proxy/api/v1/users/current/client-credentials/"+cred+"/secret", alice, nil); status != 200 || string(again) != string(secret) {
		t.Errorf("credential secret after restart: %d, same=%v", status, string(again) == string(secret))
	}
	st := gh.Server.Store()
	for id, want := range map[string]string{target: "Upstream-pw-1", header: "Upstream-key-1"} {
		tg, err := st.Target(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got := tg.Credential.BasicAuthPassword + tg.Credential.HeaderValue; got != want {
			t.Errorf("target %s secret after restart = %q, want %q", tg.Name, got, want)
		}
	}
	found, err := st.CredentialBySecret(context.Background(), string(secret))
	if err != nil || found.ID != cred {
		t.Errorf("credential lookup by secret after restart: %v, %v", found, err)
	}
	b, _ := json.Marshal(before["/api-proxy/api/v1/settings"])
	if !json.Valid(b) || !strings.Contains(string(b), `"idle_session_timeout":321`) {
		t.Errorf("settings before restart did not hold the change: %s", b)
	}
}
