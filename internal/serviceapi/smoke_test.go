package serviceapi_test

import (
	"net/http"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestWalkthrough is the README's path: admin logs in, creates a role, a user, a target and a credential, and
// everything is still there after a restart.
func TestWalkthrough(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := map[bool]string{false: "sqlite", true: "postgres"}[pg]
		t.Run(name, func(t *testing.T) {
			gh := testserver.Start(t, testserver.Options{Postgres: pg})
			adm := gh.AdminToken()
			role := gh.Create("/role-store/api/v1/roles", adm, map[string]any{"name": "devs", "permissions": []string{"api-proxy-credentials-own"}})
			user := gh.Create("/local-user-store/api/v1/users", adm, map[string]any{"username": "alice", "password": "Alice-pass-1"})
			gh.JSON("PUT", "/role-store/api/v1/users/"+user+"/roles", adm, []map[string]string{{"id": role}}, http.StatusOK, nil)
			target := gh.Create("/api-proxy/api/v1/api-targets", adm, map[string]any{
				"name": "k8s", "roles": []map[string]string{{"id": role}},
				"authorized_endpoints": []map[string]any{{"host": "kube.example.com:6443", "protocols": []string{"https"}, "methods": []string{"GET"}, "paths": []string{"/api/**"}}},
				"target_credential":    map[string]any{"type": "token", "bearer_token": "upstream-secret-123"},
			})
			alice := gh.Token("alice", "Alice-pass-1")
			cred := gh.Create("/api-proxy/api/v1/users/current/client-credentials", alice, map[string]any{"name": "laptop", "target": map[string]string{"id": target}})
			status, secret := gh.Do("GET", "/api-proxy/api/v1/users/current/client-credentials/"+cred+"/secret", alice, nil)
			if status != 200 || len(secret) < 20 {
				t.Fatalf("secret: %d %q", status, secret)
			}

			gh.Restart()
			adm = gh.AdminToken()
			var got struct {
				Name       string `json:"name"`
				Credential struct {
					Type           string `json:"type"`
					BearerTokenSet bool   `json:"bearer_token_set"`
				} `json:"target_credential"`
			}
			gh.JSON("GET", "/api-proxy/api/v1/api-targets/"+target, adm, nil, http.StatusOK, &got)
			if got.Name != "k8s" || got.Credential.Type != "token" || !got.Credential.BearerTokenSet {
				t.Errorf("target after restart: %+v", got)
			}
			status, again := gh.Do("GET", "/api-proxy/api/v1/users/current/client-credentials/"+cred+"/secret", gh.Token("alice", "Alice-pass-1"), nil)
			if status != 200 || string(again) != string(secret) {
				t.Errorf("secret after restart: %d, same=%v", status, string(again) == string(secret))
			}
		})
	}
}
