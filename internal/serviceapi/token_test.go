package serviceapi_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

const tokenPath = "/auth/api/v1/oauth/token"

// tokReq is one request to the token endpoint.
type tokReq struct {
	form        url.Values
	body        string // sent instead of form when set
	contentType string // defaults to form encoding
	basic       []string
	from        string // source address on loopback, e.g. "127.0.0.2"; default 127.0.0.1
}

// tokAnswer is what the token endpoint said.
type tokAnswer struct {
	Status       int
	Header       http.Header
	Raw          string
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Error        string `json:"error"`
}

// tokPost sends r over HTTPS, from the loopback source address r.from so that tests can act as several clients:
// Linux accepts any 127/8 address as a local source.
func tokPost(t *testing.T, gh *testserver.Instance, r tokReq) tokAnswer {
	t.Helper()
	body, ct := r.form.Encode(), "application/x-www-form-urlencoded"
	if r.body != "" {
		body = r.body
	}
	if r.contentType != "" {
		ct = r.contentType
	}
	req, err := http.NewRequest("POST", gh.URL+tokenPath, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	if r.basic != nil {
		req.SetBasicAuth(r.basic[0], r.basic[1])
	}
	client := gh.Client
	if r.from != "" {
		tr := gh.Client.Transport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(r.from)}}).DialContext
		client = &http.Client{Transport: tr, Timeout: 30 * time.Second}
		defer tr.CloseIdleConnections()
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := tokAnswer{Status: resp.StatusCode, Header: resp.Header, Raw: string(b)}
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("token answer is not JSON: %d %s", resp.StatusCode, b)
	}
	return a
}

func tokPasswordForm(user, pw string, extra ...string) url.Values {
	f := url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return f
}

// tokClientCreds are the four credential values of an API client, as GET /api-clients/{id} shows them.
type tokClientCreds struct {
	ID                string `json:"id"`
	Secret            string `json:"secret"`
	OAuthClientID     string `json:"oauth_client_id"`
	OAuthClientSecret string `json:"oauth_client_secret"`
}

// tokAPIClient creates a role with perms and an API client holding it, and reads the client's credentials.
func tokAPIClient(t *testing.T, gh *testserver.Instance, adm, name string, perms ...string) tokClientCreds {
	t.Helper()
	role := gh.Create("/role-store/api/v1/roles", adm, map[string]any{"name": name + "-role", "permissions": perms})
	id := gh.Create("/local-user-store/api/v1/api-clients", adm, map[string]any{"name": name, "roles": []map[string]string{{"id": role}}})
	var c tokClientCreds
	gh.JSON("GET", "/local-user-store/api/v1/api-clients/"+id, adm, nil, http.StatusOK, &c)
	if c.ID != id || c.Secret == "" || c.OAuthClientID == "" || c.OAuthClientSecret == "" {
		t.Fatalf("api client credentials incomplete: %+v", c)
	}
	return c
}

// tokUser creates a user holding a new role with perms and returns the user's id and the role's id.
func tokUser(t *testing.T, gh *testserver.Instance, adm, name, pw string, perms ...string) (userID, roleID string) {
	t.Helper()
	roleID = gh.Create("/role-store/api/v1/roles", adm, map[string]any{"name": name + "-role", "permissions": perms})
	userID = gh.Create("/local-user-store/api/v1/users", adm, map[string]any{"username": name, "password": pw})
	gh.JSON("PUT", "/role-store/api/v1/users/"+userID+"/roles", adm, []map[string]string{{"id": roleID}}, http.StatusOK, nil)
	return userID, roleID
}

func tokWant(t *testing.T, gh *testserver.Instance, method, path, token string, want int) {
	t.Helper()
	if status, body := gh.Do(method, path, token, nil); status != want {
		t.Errorf("%s %s: %d, want %d: %s", method, path, status, want, body)
	}
}

func TestTokenPasswordGrantForUsers(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	for _, tt := range []struct {
		name string
		req  tokReq
	}{
		{"client_id form parameter", tokReq{form: tokPasswordForm("admin", testserver.AdminPassword, "client_id", "gatehouse-cli")}},
		{"client_id in Basic with empty secret", tokReq{form: tokPasswordForm("admin", testserver.AdminPassword), basic: []string{"gatehouse-cli", ""}}},
		{"content type with charset", tokReq{form: tokPasswordForm("admin", testserver.AdminPassword, "client_id", "gatehouse-cli"),
			contentType: "application/x-www-form-urlencoded; charset=utf-8"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := tokPost(t, gh, tt.req)
			if a.Status != 200 || a.AccessToken == "" || a.RefreshToken == "" || a.TokenType != "bearer" || a.ExpiresIn != 1800 {
				t.Fatalf("answer: %d %s", a.Status, a.Raw)
			}
			if cc := a.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", cc)
			}
			var me struct {
				Username string `json:"username"`
				Type     string `json:"type"`
			}
			gh.JSON("GET", "/auth/api/v1/users/current", a.AccessToken, nil, http.StatusOK, &me)
			if me.Username != "admin" || me.Type != "user" {
				t.Errorf("token is for %+v", me)
			}
		})
	}
}

func TestTokenErrors(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	good := tokPasswordForm("admin", testserver.AdminPassword, "client_id", "gatehouse-cli")
	tests := []struct {
		name      string
		req       tokReq
		tokWant   int
		wantError string
	}{
		{"JSON body", tokReq{body: `{"grant_type":"password","username":"admin","password":"` + testserver.AdminPassword + `","client_id":"gatehouse-cli"}`,
			contentType: "application/json"}, 400, "invalid_request"},
		{"no content type", tokReq{form: good, contentType: "text/plain"}, 400, "invalid_request"},
		{"no grant type", tokReq{form: url.Values{"username": {"admin"}, "password": {"x"}, "client_id": {"gatehouse-cli"}}}, 400, "invalid_request"},
		{"no username", tokReq{form: tokPasswordForm("", "x", "client_id", "gatehouse-cli")}, 400, "invalid_request"},
		{"no password", tokReq{form: tokPasswordForm("admin", "", "client_id", "gatehouse-cli")}, 400, "invalid_request"},
		{"unknown grant", tokReq{form: url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {"x"}}}, 400, "unsupported_grant_type"},
		{"code of no OIDC login", tokReq{form: url.Values{"grant_type": {"authorization_code"}, "client_id": {"gatehouse-cli"},
			"code": {"x"}, "code_verifier": {"y"}, "redirect_uri": {"http://127.0.0.1:9/cb"}}}, 400, "invalid_grant"},
		{"code without the public client", tokReq{form: url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}}, 401, "invalid_client"},
		{"unknown public client", tokReq{form: tokPasswordForm("admin", testserver.AdminPassword, "client_id", "someone-else")}, 401, "invalid_client"},
		{"no client", tokReq{form: tokPasswordForm("admin", testserver.AdminPassword)}, 401, "invalid_client"},
		{"wrong password", tokReq{form: tokPasswordForm("admin", "Wrong-pass-1", "client_id", "gatehouse-cli"), from: "127.0.0.2"}, 401, "invalid_grant"},
		{"unknown user", tokReq{form: tokPasswordForm("nobody", "Wrong-pass-1", "client_id", "gatehouse-cli"), from: "127.0.0.3"}, 401, "invalid_grant"},
		{"client_credentials without client authentication", tokReq{form: url.Values{"grant_type": {"client_credentials"}}}, 401, "invalid_client"},
		{"bad refresh token", tokReq{form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nope"}}}, 400, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tokPost(t, gh, tt.req)
			if a.Status != tt.tokWant || a.Error != tt.wantError || a.AccessToken != "" {
				t.Errorf("answer %d %s, want %d %s", a.Status, a.Raw, tt.tokWant, tt.wantError)
			}
		})
	}
	// The failures above came from other addresses or were refused before any password check, so the admin can
	// still log in from the default address.
	if a := tokPost(t, gh, tokReq{form: good}); a.Status != 200 {
		t.Errorf("admin login after the refused requests: %d %s", a.Status, a.Raw)
	}
}

// TestTokenAPIClientPasswordGrant is the reference document's flow: HTTP Basic with oauth_client_id and
// oauth_client_secret, username = API client id, password = API client secret.
func TestTokenAPIClientPasswordGrant(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	c := tokAPIClient(t, gh, adm, "ci", "users-view")
	ok := tokPost(t, gh, tokReq{form: tokPasswordForm(c.ID, c.Secret), basic: []string{c.OAuthClientID, c.OAuthClientSecret}})
	if ok.Status != 200 || ok.TokenType != "bearer" || ok.ExpiresIn != 1800 || ok.AccessToken == "" {
		t.Fatalf("reference flow: %d %s", ok.Status, ok.Raw)
	}
	tokWant(t, gh, "GET", "/local-user-store/api/v1/users", ok.AccessToken, 200)
	tokWant(t, gh, "GET", "/role-store/api/v1/roles", ok.AccessToken, 403)

	other := tokAPIClient(t, gh, adm, "other", "users-view")
	wrong := []struct {
		name                         string
		oauthID, oauthSecret, id, pw string
	}{
		{"oauth_client_id", "gh-wrong", c.OAuthClientSecret, c.ID, c.Secret},
		{"oauth_client_id of another client", other.OAuthClientID, c.OAuthClientSecret, c.ID, c.Secret},
		{"oauth_client_secret", c.OAuthClientID, c.OAuthClientSecret + "x", c.ID, c.Secret},
		{"api client id", c.OAuthClientID, c.OAuthClientSecret, other.ID, c.Secret},
		{"api client secret", c.OAuthClientID, c.OAuthClientSecret, c.ID, other.Secret},
	}
	for i, w := range wrong {
		t.Run("wrong "+w.name, func(t *testing.T) {
			a := tokPost(t, gh, tokReq{form: tokPasswordForm(w.id, w.pw), basic: []string{w.oauthID, w.oauthSecret},
				from: "127.0.1." + strconv.Itoa(i+1)})
			if a.Status != 401 || a.Error != "invalid_grant" || a.AccessToken != "" {
				t.Errorf("answer %d %s, want 401 invalid_grant", a.Status, a.Raw)
			}
		})
	}

	t.Run("client_credentials", func(t *testing.T) {
		a := tokPost(t, gh, tokReq{form: url.Values{"grant_type": {"client_credentials"}}, basic: []string{c.OAuthClientID, c.OAuthClientSecret}})
		if a.Status != 200 || a.TokenType != "bearer" {
			t.Fatalf("client_credentials: %d %s", a.Status, a.Raw)
		}
		var me struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		}
		gh.JSON("GET", "/auth/api/v1/users/current", a.AccessToken, nil, 200, &me)
		if me.ID != c.ID || me.Type != "api-client" {
			t.Errorf("client_credentials token is for %+v", me)
		}
		bad := tokPost(t, gh, tokReq{form: url.Values{"grant_type": {"client_credentials"}}, basic: []string{c.OAuthClientID, c.Secret}, from: "127.0.2.1"})
		if bad.Status != 401 || bad.AccessToken != "" {
			t.Errorf("client_credentials with the wrong secret: %d %s", bad.Status, bad.Raw)
		}
	})

	t.Run("deleting the client kills its token", func(t *testing.T) {
		tokWant(t, gh, "DELETE", "/local-user-store/api/v1/api-clients/"+c.ID, adm, 200)
		tokWant(t, gh, "GET", "/local-user-store/api/v1/users", ok.AccessToken, 401)
		a := tokPost(t, gh, tokReq{form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ok.RefreshToken}}})
		if a.Status != 400 || a.Error != "invalid_grant" {
			t.Errorf("refresh of a deleted client: %d %s", a.Status, a.Raw)
		}
	})
}

func TestTokenRefreshRotation(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	first := tokPost(t, gh, tokReq{form: tokPasswordForm("admin", testserver.AdminPassword, "client_id", "gatehouse-cli")})
	refresh := func(tok string) tokAnswer {
		return tokPost(t, gh, tokReq{form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}}})
	}
	second := refresh(first.RefreshToken)
	if second.Status != 200 || second.AccessToken == "" || second.RefreshToken == "" || second.RefreshToken == first.RefreshToken {
		t.Fatalf("refresh: %d %s", second.Status, second.Raw)
	}
	tokWant(t, gh, "GET", "/auth/api/v1/users/current", second.AccessToken, 200)
	if again := refresh(first.RefreshToken); again.Status != 400 || again.Error != "invalid_grant" {
		t.Errorf("second use of a refresh token: %d %s, want 400 invalid_grant", again.Status, again.Raw)
	}
	if third := refresh(second.RefreshToken); third.Status != 200 {
		t.Errorf("the rotated refresh token does not work: %d %s", third.Status, third.Raw)
	}
}

func TestTokenLifetimeIsConfigurable(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{Configure: func(c *config.Config) { c.TokenTTL = 10 * time.Minute }})
	a := tokPost(t, gh, tokReq{form: tokPasswordForm("admin", testserver.AdminPassword, "client_id", "gatehouse-cli")})
	if a.Status != 200 || a.ExpiresIn != 600 {
		t.Errorf("expires_in with --token-ttl 10m: %d %s", a.Status, a.Raw)
	}
}

// TestTokenRateLimit pins the limiter of failed logins: five failures per source address, and five per username
// from any number of addresses, within a minute; the next attempt gets 429 with Retry-After even with the right
// password.
func TestTokenRateLimit(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	tokUser(t, gh, adm, "alice", "Alice-pass-1")
	tokUser(t, gh, adm, "bob", "Bob-pass-1")
	login := func(user, pw, from string) tokAnswer {
		return tokPost(t, gh, tokReq{form: tokPasswordForm(user, pw, "client_id", "gatehouse-cli"), from: from})
	}
	want429 := func(t *testing.T, a tokAnswer) {
		t.Helper()
		if a.Status != http.StatusTooManyRequests || a.AccessToken != "" {
			t.Fatalf("answer %d %s, want 429", a.Status, a.Raw)
		}
		if s, err := strconv.Atoi(a.Header.Get("Retry-After")); err != nil || s < 1 || s > 61 {
			t.Errorf("Retry-After = %q, want 1..61 seconds", a.Header.Get("Retry-After"))
		}
	}

	t.Run("per source address", func(t *testing.T) {
		const src = "127.0.3.1"
		for i := range 20 {
			if a := login("guess"+strconv.Itoa(i), "Wrong-pass-1", src); a.Status != 401 {
				t.Fatalf("failure %d: %d %s", i+1, a.Status, a.Raw)
			}
		}
		want429(t, login("guess-new", "Wrong-pass-1", src))
		want429(t, login("bob", "Bob-pass-1", src))
		if a := login("bob", "Bob-pass-1", "127.0.3.2"); a.Status != 200 {
			t.Errorf("another address is limited too: %d %s", a.Status, a.Raw)
		}
	})

	t.Run("per username and source", func(t *testing.T) {
		const src = "127.0.3.9"
		for i := range 5 {
			if a := login("bob", "Wrong-pass-1", src); a.Status != 401 {
				t.Fatalf("failure %d: %d %s", i+1, a.Status, a.Raw)
			}
		}
		want429(t, login("bob", "Bob-pass-1", src))
		if a := login("bob2-unknown", "Wrong-pass-1", src); a.Status != 401 {
			t.Errorf("another name from the same address is blocked: %d %s", a.Status, a.Raw)
		}
	})

	// Failures for one name from many addresses only slow it: blocking it everywhere would let anyone lock its
	// owner out.
	t.Run("per username slows but does not block", func(t *testing.T) {
		for i := range 6 {
			if a := login("alice", "Wrong-pass-1", "127.0.4."+strconv.Itoa(i+1)); a.Status != 401 {
				t.Fatalf("failure %d: %d %s", i+1, a.Status, a.Raw)
			}
		}
		if a := login("alice", "Alice-pass-1", "127.0.4.99"); a.Status != 200 {
			t.Errorf("the owner from a clean address is locked out: %d %s", a.Status, a.Raw)
		}
		if a := login("bob", "Bob-pass-1", "127.0.4.99"); a.Status != 200 {
			t.Errorf("another user from the same fresh address is limited: %d %s", a.Status, a.Raw)
		}
	})

	t.Run("failures are audited", func(t *testing.T) {
		var events struct {
			Count int `json:"count"`
			Items []struct {
				Actor         string `json:"actor"`
				Outcome       string `json:"outcome"`
				SourceAddress string `json:"source_address"`
			} `json:"items"`
		}
		gh.JSON("GET", "/audit/api/v1/events?action=login&actor=alice&limit=100", adm, nil, 200, &events)
		failures := 0
		for _, e := range events.Items {
			if e.Outcome == "failure" && strings.HasPrefix(e.SourceAddress, "127.0.4.") {
				failures++
			}
		}
		if failures < 6 {
			t.Errorf("audit shows %d failed logins for alice, want at least 6: %+v", failures, events.Items)
		}
	})
}

// TestTokenPrincipalChangesApplyAtOnce pins that tokens are not snapshots of permissions: a gained permission
// applies on the next request made with a token issued before, and losing a role or a permission, or being
// disabled, ends the token.
func TestTokenPrincipalChangesApplyAtOnce(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	userID, roleID := tokUser(t, gh, adm, "alice", "Alice-pass-1", "users-view")
	viewRoles := gh.Create("/role-store/api/v1/roles", adm, map[string]any{"name": "role-viewers", "permissions": []string{"roles-view"}})
	tok := gh.Token("alice", "Alice-pass-1")
	const users, roles = "/local-user-store/api/v1/users", "/role-store/api/v1/roles"
	tokWant(t, gh, "GET", users, tok, 200)
	tokWant(t, gh, "GET", roles, tok, 403)

	gh.JSON("PUT", "/role-store/api/v1/users/"+userID+"/roles", adm, []map[string]string{{"id": roleID}, {"id": viewRoles}}, 200, nil)
	tokWant(t, gh, "GET", users, tok, 200)
	tokWant(t, gh, "GET", roles, tok, 200)

	gh.JSON("PUT", "/role-store/api/v1/users/"+userID+"/roles", adm, []map[string]string{{"id": viewRoles}}, 200, nil)
	tokWant(t, gh, "GET", roles, tok, 401)
	tok = gh.Token("alice", "Alice-pass-1")
	tokWant(t, gh, "GET", users, tok, 403)
	tokWant(t, gh, "GET", roles, tok, 200)

	gh.JSON("PUT", "/role-store/api/v1/roles/"+viewRoles, adm, map[string]any{"name": "role-viewers", "permissions": []string{"users-view"}}, 200, nil)
	tokWant(t, gh, "GET", users, tok, 401)
	tok = gh.Token("alice", "Alice-pass-1")
	tokWant(t, gh, "GET", users, tok, 200)
	tokWant(t, gh, "GET", roles, tok, 403)

	gh.JSON("PUT", "/role-store/api/v1/users/"+userID+"/roles", adm, []map[string]string{{"id": roleID}}, 200, nil)
	first := tokPost(t, gh, tokReq{form: tokPasswordForm("alice", "Alice-pass-1", "client_id", "gatehouse-cli")})
	gh.JSON("PUT", "/local-user-store/api/v1/users/"+userID, adm, map[string]any{"enabled": false}, 200, nil)
	tokWant(t, gh, "GET", users, tok, 401)
	tokWant(t, gh, "GET", "/auth/api/v1/users/current", tok, 401)
	if a := tokPost(t, gh, tokReq{form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}}); a.Status == 200 {
		t.Errorf("a disabled user refreshed a token: %s", a.Raw)
	}
	if a := tokPost(t, gh, tokReq{form: tokPasswordForm("alice", "Alice-pass-1", "client_id", "gatehouse-cli"), from: "127.0.5.1"}); a.Status != 401 {
		t.Errorf("a disabled user logged in: %d %s", a.Status, a.Raw)
	}

	// Deleting works the same way, on a token of an enabled user.
	bobID, _ := tokUser(t, gh, adm, "bob", "Bob-pass-1", "users-view")
	bob := gh.Token("bob", "Bob-pass-1")
	tokWant(t, gh, "GET", users, bob, 200)
	tokWant(t, gh, "DELETE", "/local-user-store/api/v1/users/"+bobID, adm, 200)
	tokWant(t, gh, "GET", users, bob, 401)
}
