package serviceapi_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// clientTokens runs the reference password flow for an API client and returns its access and refresh tokens.
func clientTokens(t *testing.T, gh *testserver.Instance, c apiClientView) (access, refresh string) {
	t.Helper()
	status, access, refresh := clientGrant(t, gh, c, url.Values{"grant_type": {"password"}, "username": {c.ID}, "password": {c.Secret}})
	if status != http.StatusOK || access == "" {
		t.Fatalf("API client token: status %d", status)
	}
	return access, refresh
}

// refreshStatus sends a refresh_token grant and returns its status.
func refreshStatus(t *testing.T, gh *testserver.Instance, c apiClientView, refresh string) int {
	t.Helper()
	status, _, _ := clientGrant(t, gh, c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	return status
}

// TestAPIClientTokensEndWithRoles pins that an API client's already-issued tokens do not outlive its roles, as a
// user's do not: when the client loses a role (taken off the client, the role deleted, or the role losing the
// permission) or is deleted, the very next request with its access token is refused, on both API dialects, and
// its refresh tokens are dead. Nothing waits for the token to expire.
func TestAPIClientTokensEndWithRoles(t *testing.T) { forEachDB(t, apiClientTokensEndWithRoles) }

func apiClientTokensEndWithRoles(t *testing.T, gh *testserver.Instance) {
	e := &delegationEnv{t: t, gh: gh, adm: gh.AdminToken()}
	perms := []string{auth.UsersView, auth.ConfigView}
	probes := []struct{ name, path string }{
		{"service API", usersPath},
		{"configuration API", "/api/configuration"},
	}
	for _, c := range []struct {
		name string
		lose func(clientID, roleID string)
	}{
		{"role taken off the client", func(client, _ string) {
			e.gh.JSON("PUT", clientsPath+"/"+client, e.adm, map[string]any{"roles": []map[string]string{}}, http.StatusOK, nil)
		}},
		{"role deleted", func(_, role string) { e.gh.JSON("DELETE", rolesPath+"/"+role, e.adm, nil, http.StatusOK, nil) }},
		{"role loses the permissions", func(_, role string) {
			e.gh.JSON("PUT", rolesPath+"/"+role, e.adm, map[string]any{"permissions": []string{}}, http.StatusOK, nil)
		}},
		{"client deleted", func(client, _ string) { e.gh.JSON("DELETE", clientsPath+"/"+client, e.adm, nil, http.StatusOK, nil) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			role := e.role(perms...)
			id := gh.Create(clientsPath, e.adm, map[string]any{"name": e.unique("bot"), "roles": []map[string]string{{"id": role}}})
			var cl apiClientView
			gh.JSON("GET", clientsPath+"/"+id, e.adm, nil, http.StatusOK, &cl)
			access, refresh := clientTokens(t, gh, cl)
			spare, _ := clientTokens(t, gh, cl)
			for _, p := range probes {
				if status, b := gh.Do("GET", p.path, access, nil); status != http.StatusOK {
					t.Fatalf("%s before the loss: status %d: %s", p.name, status, b)
				}
			}
			c.lose(id, role)
			for _, p := range probes {
				if status, _ := gh.Do("GET", p.path, access, nil); status != http.StatusUnauthorized {
					t.Errorf("%s right after the loss: status %d, want 401", p.name, status)
				}
			}
			if status := refreshStatus(t, gh, cl, refresh); status == http.StatusOK {
				t.Errorf("refresh token still works after the loss")
			}
			if c.name == "client deleted" {
				return
			}
			// A token is cut off, not the client: it logs in again and is judged on what it holds now.
			fresh, _ := clientTokens(t, gh, cl)
			if status, _ := gh.Do("GET", usersPath, fresh, nil); status != http.StatusForbidden {
				t.Errorf("fresh token without the role: status %d, want 403", status)
			}
			if status, _ := gh.Do("GET", "/auth/api/v1/users/current", spare, nil); status != http.StatusUnauthorized {
				t.Errorf("another token issued before the loss: status %d, want 401", status)
			}
		})
	}

	// Changes that take nothing away leave the tokens alone.
	role := e.role(perms...)
	id := gh.Create(clientsPath, e.adm, map[string]any{"name": e.unique("bot"), "roles": []map[string]string{{"id": role}}})
	var cl apiClientView
	gh.JSON("GET", clientsPath+"/"+id, e.adm, nil, http.StatusOK, &cl)
	access, refresh := clientTokens(t, gh, cl)
	gh.JSON("PUT", clientsPath+"/"+id, e.adm, map[string]any{"name": e.unique("renamed"), "roles": []map[string]string{{"id": role}, {"id": e.role(auth.AuditView)}}}, http.StatusOK, nil)
	gh.JSON("PUT", rolesPath+"/"+role, e.adm, map[string]any{"permissions": append(perms, auth.HostsView)}, http.StatusOK, nil)
	gh.JSON("GET", usersPath, access, nil, http.StatusOK, nil)
	if status := refreshStatus(t, gh, cl, refresh); status != http.StatusOK {
		t.Errorf("refresh after changes that take nothing away: status %d", status)
	}
}
