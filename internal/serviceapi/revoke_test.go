package serviceapi_test

import (
	"net/http"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestDisableAndPasswordChangeRevokeTokens pins that access tokens, which are stateless, do not outlive the event
// that should end them: a token issued before a user was disabled stays dead after the user is enabled again, and a
// password change ends the sessions of the old password.
func TestDisableAndPasswordChangeRevokeTokens(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	const users = "/local-user-store/api/v1/users"
	id := gh.Create(users, adm, map[string]any{"username": "carol", "password": "Carol-pass-1"})
	old := gh.Token("carol", "Carol-pass-1")
	gh.JSON("GET", "/auth/api/v1/users/current", old, nil, http.StatusOK, nil)

	gh.JSON("PUT", users+"/"+id, adm, map[string]any{"enabled": false}, http.StatusOK, nil)
	gh.JSON("PUT", users+"/"+id, adm, map[string]any{"enabled": true}, http.StatusOK, nil)
	if status, _ := gh.Do("GET", "/auth/api/v1/users/current", old, nil); status != http.StatusUnauthorized {
		t.Fatalf("token issued before the user was disabled, after re-enabling: %d, want 401", status)
	}
	fresh := gh.Token("carol", "Carol-pass-1")
	gh.JSON("GET", "/auth/api/v1/users/current", fresh, nil, http.StatusOK, nil)

	// Renaming or other profile changes leave tokens alone.
	gh.JSON("PUT", users+"/"+id, adm, map[string]any{"full_name": "Carol C."}, http.StatusOK, nil)
	gh.JSON("GET", "/auth/api/v1/users/current", fresh, nil, http.StatusOK, nil)

	gh.JSON("PUT", users+"/"+id+"/password", adm, map[string]any{"password": "Carol-pass-2"}, http.StatusOK, nil)
	if status, _ := gh.Do("GET", "/auth/api/v1/users/current", fresh, nil); status != http.StatusUnauthorized {
		t.Fatalf("token of the old password after a password change: %d, want 401", status)
	}
	gh.JSON("GET", "/auth/api/v1/users/current", gh.Token("carol", "Carol-pass-2"), nil, http.StatusOK, nil)
	// The admin's own token is untouched by changes to another user.
	gh.JSON("GET", "/auth/api/v1/users/current", adm, nil, http.StatusOK, nil)
}
