package serviceapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// mgmtSessions are one user's management sessions of every kind.
type mgmtSessions struct {
	access, refresh string // service API bearer and refresh token
	cookie          string // configuration API session_id
}

func openSessions(t *testing.T, gh *testserver.Instance, user, pass string) mgmtSessions {
	t.Helper()
	resp, err := gh.Client.PostForm(gh.URL+"/auth/api/v1/oauth/token", url.Values{"grant_type": {"password"},
		"client_id": {"gatehouse-cli"}, "username": {user}, "password": {pass}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	req, _ := http.NewRequest("GET", gh.URL+"/api/authentication", nil)
	req.SetBasicAuth(user, pass)
	resp, err = gh.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s := mgmtSessions{access: tok.Access, refresh: tok.Refresh}
	for _, c := range resp.Cookies() {
		if c.Name == "session_id" {
			s.cookie = c.Value
		}
	}
	if s.access == "" || s.refresh == "" || s.cookie == "" {
		t.Fatalf("could not open every session kind for %s: %+v", user, s)
	}
	return s
}

// alive reports, per session kind, whether the session still works. The refresh token is checked last, since
// using it consumes it.
func alive(t *testing.T, gh *testserver.Instance, s mgmtSessions) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	status, _ := gh.Do("GET", "/auth/api/v1/users/current", s.access, nil)
	out["bearer"] = status == http.StatusOK
	req, _ := http.NewRequest("GET", gh.URL+"/api", nil)
	req.AddCookie(&http.Cookie{Name: "session_id", Value: s.cookie})
	resp, err := gh.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	out["config cookie"] = resp.StatusCode == http.StatusOK
	resp, err = gh.Client.Post(gh.URL+"/auth/api/v1/oauth/token", "application/x-www-form-urlencoded",
		strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {s.refresh}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	out["refresh"] = resp.StatusCode == http.StatusOK
	return out
}

// TestSessionsEndOnPasswordDisableAndRoleLoss: after a password reset the old configuration-API session_id
// still worked. Each trigger now ends every management session kind of that user at once, and no one else's.
func TestSessionsEndOnPasswordDisableAndRoleLoss(t *testing.T) {
	forEachDB(t, func(t *testing.T, gh *testserver.Instance) {
		adm := gh.AdminToken()
		perms := []string{auth.UsersView, auth.ConfigView}
		triggers := []struct {
			name string
			do   func(uid, role string)
		}{
			{"password reset", func(uid, _ string) {
				gh.JSON("PUT", usersPath+"/"+uid+"/password", adm, map[string]any{"password": "Brand-new-pass-1"}, http.StatusOK, nil)
			}},
			{"disable", func(uid, _ string) {
				gh.JSON("PUT", usersPath+"/"+uid, adm, map[string]any{"enabled": false}, http.StatusOK, nil)
			}},
			{"role removed", func(uid, _ string) {
				gh.JSON("PUT", "/role-store/api/v1/users/"+uid+"/roles", adm, []any{}, http.StatusOK, nil)
			}},
			{"role loses a permission", func(_, role string) {
				gh.JSON("PUT", rolesPath+"/"+role, adm, map[string]any{"permissions": []string{auth.UsersView}}, http.StatusOK, nil)
			}},
			{"role deleted", func(_, role string) {
				gh.JSON("DELETE", rolesPath+"/"+role, adm, nil, http.StatusOK, nil)
			}},
		}
		for i, tr := range triggers {
			t.Run(tr.name, func(t *testing.T) {
				name, bystander := "sess-"+string(rune('a'+i)), "keep-"+string(rune('a'+i))
				uid, _, role := newUserWithRole(t, gh, adm, name, perms...)
				newUserWithRole(t, gh, adm, bystander, perms...)
				victim := openSessions(t, gh, name, "Pass-"+name+"-1")
				other := openSessions(t, gh, bystander, "Pass-"+bystander+"-1")
				tr.do(uid, role)
				for kind, ok := range alive(t, gh, victim) {
					if ok {
						t.Errorf("%s session survived %s", kind, tr.name)
					}
				}
				for kind, ok := range alive(t, gh, other) {
					if !ok {
						t.Errorf("another user's %s session ended by %s", kind, tr.name)
					}
				}
			})
		}
	})
}
