package e2e_test

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// The management-plane attack corpus: each class an outside attack run broke (issue 9), tried against the full
// server through its public APIs, checking both the refusal and that nothing it aimed at changed.

// apiFrom is an HTTPS client of the management API whose connections come from the loopback address src.
func apiFrom(gh *testserver.Instance, src string) *http.Client {
	tr := gh.Client.Transport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext
	tr.DisableKeepAlives = true
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func tokenFrom(t *testing.T, gh *testserver.Instance, src, user, pass string) int {
	t.Helper()
	resp, err := apiFrom(gh, src).PostForm(gh.URL+"/auth/api/v1/oauth/token", url.Values{"grant_type": {"password"},
		"client_id": {"gatehouse-cli"}, "username": {user}, "password": {pass}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// delegate makes a user holding exactly perms and returns its id and token.
func delegate(t *testing.T, f *fixture, name string, perms ...string) (string, string) {
	t.Helper()
	role := f.gh.Create(rolesAPI+"/roles", f.adm, map[string]any{"name": "role-" + name, "permissions": perms})
	id := f.gh.Create(usersAPI+"/users", f.adm, map[string]any{"username": name, "password": userPassword})
	f.gh.JSON("PUT", rolesAPI+"/users/"+id+"/roles", f.adm, []map[string]string{{"id": role}}, http.StatusOK, nil)
	return id, f.gh.Token(name, userPassword)
}

func TestManagementAttackCorpus(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	gh := f.gh
	var me struct {
		ID    string `json:"id"`
		Roles []struct {
			ID string `json:"id"`
		} `json:"roles"`
	}
	gh.JSON("GET", "/auth/api/v1/users/current", f.adm, nil, http.StatusOK, &me)
	superRole := me.Roles[0].ID

	t.Run("OIDC code sent to another site", func(t *testing.T) {
		start := func(redirect string) (int, string) {
			q := url.Values{"redirect_uri": {redirect}, "state": {"s"}, "code_challenge_method": {"S256"},
				"code_challenge": {strings.Repeat("a", 43)}}
			s, b := gh.Do("GET", "/auth/api/v1/oidc/no-such-source/login?"+q.Encode(), "", nil)
			return s, string(b)
		}
		// A browser deletes tabs and newlines and reads backslash as slash: each of these lands on evil.example.
		for _, bad := range []string{"/\t/evil.example/cb", "/\n/evil.example/cb", "\t//evil.example/cb", "/\\evil.example/cb",
			"http:evil.example/cb", "http://127.0.0.1:80@evil.example/callback", "http://127.0.0.1.evil.example:80/callback",
			"//evil.example/cb", "http://0x7f.1:80/callback", "/auth/api/v1/users/current"} {
			if s, b := start(bad); s != http.StatusBadRequest || !strings.Contains(b, "redirect_uri") {
				t.Errorf("redirect_uri %q: %d %s, want 400 naming redirect_uri", bad, s, b)
			}
		}
		// The CLI's loopback callback passes the check (and then finds no such source).
		if s, b := start("http://127.0.0.1:49152/callback"); s != http.StatusNotFound {
			t.Errorf("loopback callback: %d %s, want 404 for the unknown source", s, b)
		}
	})

	t.Run("delegated admins become superuser", func(t *testing.T) {
		_, usersTok := delegate(t, f, "deleg-users", auth.UsersManage)
		rolesID, rolesTok := delegate(t, f, "deleg-roles", auth.RolesManage)
		_, clientsTok := delegate(t, f, "deleg-clients", auth.APIClientsManage)
		superClient := gh.Create(usersAPI+"/api-clients", f.adm, map[string]any{"name": "root-bot", "roles": []map[string]string{{"id": superRole}}})
		for _, a := range []struct {
			name, method, path, token string
			body                      any
		}{
			{"users-manage resets the admin's password", "PUT", usersAPI + "/users/" + me.ID + "/password", usersTok, map[string]any{"password": "Taken-over-pass-1"}},
			{"users-manage disables the admin", "PUT", usersAPI + "/users/" + me.ID, usersTok, map[string]any{"enabled": false}},
			{"roles-manage grants itself the superuser role", "PUT", rolesAPI + "/users/" + rolesID + "/roles", rolesTok, []map[string]string{{"id": superRole}}},
			{"roles-manage widens the superuser role's members by rule", "PUT", rolesAPI + "/roles/" + superRole, rolesTok, map[string]any{"source_rules": []map[string]string{{"tag": "anyone"}}}},
			{"roles-manage creates a role with every permission", "POST", rolesAPI + "/roles", rolesTok, map[string]any{"name": "mine", "permissions": auth.AllPermissions}},
			{"api-clients-manage creates a superuser client", "POST", usersAPI + "/api-clients", clientsTok, map[string]any{"name": "mine", "roles": []map[string]string{{"id": superRole}}}},
			{"api-clients-manage reads a superuser client's secret", "GET", usersAPI + "/api-clients/" + superClient, clientsTok, nil},
		} {
			if s, b := gh.Do(a.method, a.path, a.token, a.body); s != http.StatusForbidden || strings.Contains(string(b), "oauth_client_secret") {
				t.Errorf("%s: %d %s, want 403", a.name, s, b)
			}
		}
		if s := tokenFrom(t, gh, "127.0.0.1", "admin", testserver.AdminPassword); s != http.StatusOK {
			t.Errorf("the admin cannot log in after the attempts: %d", s)
		}
	})

	t.Run("owner lifts admin restrictions", func(t *testing.T) {
		c := f.credential(f.alpha, "restricted", nil)
		gh.JSON("PUT", c.path(f.userID), f.adm, map[string]any{"enabled": false, "source_address": []string{"192.0.2.0/24"}}, http.StatusOK, nil)
		alice := gh.Token("alice", userPassword)
		own := proxyAPI + "/users/current/client-credentials/" + c.ID
		for _, body := range []map[string]any{{"enabled": true, "source_address": []string{}}, {"enabled": true},
			{"source_address": []string{}}, {"source_address": []string{"0.0.0.0/0"}}, {"source_address": []string{"127.0.0.1"}}} {
			if s, b := gh.Do("PUT", own, alice, body); s != http.StatusForbidden {
				t.Errorf("owner PUT %v: %d %s, want 403", body, s, b)
			}
		}
		if s, _ := f.do(f.client(false), "GET", "https://"+f.https.HostPort+"/api/items/1", c.Secret, ""); s == http.StatusOK {
			t.Errorf("the admin-disabled credential still works at the proxy")
		}
	})

	t.Run("sessions outlive a password change", func(t *testing.T) {
		id, _ := delegate(t, f, "sess-victim", auth.ConfigView)
		req, _ := http.NewRequest("GET", gh.URL+"/api/authentication", nil)
		req.SetBasicAuth("sess-victim", userPassword)
		resp, err := gh.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var sid string
		for _, ck := range resp.Cookies() {
			if ck.Name == "session_id" {
				sid = ck.Value
			}
		}
		gh.JSON("PUT", usersAPI+"/users/"+id+"/password", f.adm, map[string]any{"password": "Reset-pass-12345"}, http.StatusOK, nil)
		req, _ = http.NewRequest("GET", gh.URL+"/api/configuration", nil)
		req.Header.Set("session_id", sid)
		resp, err = gh.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if sid == "" || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("old configuration-API session after a password reset: %d (session %q), want 401", resp.StatusCode, sid)
		}
	})

	t.Run("anonymous attacker keeps the admin out", func(t *testing.T) {
		for i := range 8 {
			tokenFrom(t, gh, "127.0.9.2", "admin", "Wrong-pass-"+string(rune('a'+i)))
		}
		if s := tokenFrom(t, gh, "127.0.9.2", "admin", testserver.AdminPassword); s != http.StatusTooManyRequests {
			t.Errorf("the attacker's address is not blocked: %d", s)
		}
		if s := tokenFrom(t, gh, "127.0.0.1", "admin", testserver.AdminPassword); s != http.StatusOK {
			t.Errorf("the admin is locked out by another address's failures: %d", s)
		}
	})

	t.Run("admin reads a user's proxy secret", func(t *testing.T) {
		c := f.credential(f.alpha, "owned", nil)
		// A rotation ends the creator's handover (serviceapi.TestProxySecretOnlyForOwner): from then on only the
		// owner reads the secret, superuser or not.
		gh.JSON("POST", c.path(f.userID)+"/rotate", f.adm, nil, http.StatusOK, nil)
		if s, b := gh.Do("GET", c.path(f.userID)+"/secret", f.adm, nil); s != http.StatusForbidden || strings.Contains(string(b), c.Secret) {
			t.Errorf("superuser read alice's secret: %d", s)
		}
		if s, _ := f.do(f.client(false), "GET", "https://"+f.https.HostPort+"/api/items/1", c.Secret, ""); s == http.StatusOK {
			t.Errorf("the rotated-away secret still works at the proxy")
		}
		_, fresh := gh.Do("GET", c.path(f.userID)+"/secret", gh.Token("alice", userPassword), nil)
		if s, _ := f.do(f.client(false), "GET", "https://"+f.https.HostPort+"/api/items/1", string(fresh), ""); s != http.StatusOK {
			t.Errorf("the owner's new secret does not work: %d", s)
		}
	})

	// Provider errors echoed into status_text: TestOIDCDiscoveryErrorNotEchoed (internal/directory). It is not run
	// here because the server's OIDC client reads the proxy environment once per process, which
	// TestGoProxyFromEnvironment sets later.
}
