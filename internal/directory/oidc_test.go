package directory_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/directory/oidctest"
	"github.com/gatehouse-dev/gatehouse/internal/testpg"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

const (
	sourcesPath  = "/role-store/api/v1/sources"
	rolesPath    = "/role-store/api/v1/roles"
	tokenPath    = "/auth/api/v1/oauth/token"
	callbackPath = "/auth/api/v1/oidc/callback"
)

// oidcEnv is a Gatehouse with an OIDC source pointing at a real provider, and a role granted by a group rule.
type oidcEnv struct {
	t                *testing.T
	gh               *testserver.Instance
	prov             *oidctest.Provider
	adm              string
	source           string
	opsRole, tagRole string
}

func newOIDCEnv(t *testing.T, pg bool) *oidcEnv {
	t.Helper()
	prov := oidctest.Start(t)
	prov.AddUser(oidctest.User{Subject: "sub-alice", Username: "alice", Email: "alice@example.com", Name: "Alice A",
		Groups: []string{"Ops", "dev"}, Tags: []string{"team-a"}})
	prov.AddUser(oidctest.User{Subject: "sub-bob", Username: "bob", Email: "bob@example.com", Name: "Bob B", Groups: []string{"dev"}})
	prov.LoginAs("alice")
	gh := testserver.Start(t, testserver.Options{Postgres: pg})
	prov.AllowRedirect(gh.URL + callbackPath)
	e := &oidcEnv{t: t, gh: gh, prov: prov, adm: gh.AdminToken()}
	e.source = gh.Create(sourcesPath, e.adm, e.sourceBody(prov.Issuer, prov.CAPEM, true))
	e.opsRole = gh.Create(rolesPath, e.adm, map[string]any{"name": "ops", "permissions": []string{"api-targets-view"},
		"source_rules": []any{map[string]any{"source": map[string]any{"id": e.source}, "group_dn": "ops"}}})
	e.tagRole = gh.Create(rolesPath, e.adm, map[string]any{"name": "team-a", "permissions": []string{"hosts-view"},
		"source_rules": []any{map[string]any{"tag": "team-a"}}})
	return e
}

func (e *oidcEnv) sourceBody(issuer, anchors string, enabled bool) map[string]any {
	return map[string]any{"name": "corp-idp", "enabled": enabled, "ttl": 0, "connection": map[string]any{
		"type": "OIDC", "oidc_issuer": issuer, "oidc_client_id": e.prov.ClientID,
		"oidc_client_secret": e.prov.ClientSecret, "oidc_additional_scopes": []string{"groups"},
		"oidc_tags_attribute_name": "gatehouse_tags", "oidc_button_title": "Corp SSO", "tls_trust_anchors": anchors}}
}

// browser is a cookie-keeping client that trusts Gatehouse and the provider and follows redirects, except to
// hosts in stopAt (a loopback client's redirect URI), where it stops and returns the redirect.
func (e *oidcEnv) browser(stopAt ...string) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(e.gh.Server.CA().Root())
	pool.AppendCertsFromPEM([]byte(e.prov.CAPEM))
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:       jar,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if slices.Contains(stopAt, req.URL.Host) || slices.Contains(stopAt, req.URL.Path) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// webLogin runs the flow without a client redirect: the callback answers the tokens.
func (e *oidcEnv) webLogin(c *http.Client) (int, map[string]any) {
	e.t.Helper()
	resp, b := get(e.t, c, e.gh.URL+"/auth/api/v1/oidc/"+e.source+"/login")
	out := map[string]any{}
	json.Unmarshal(b, &out)
	if resp.Request.URL.Path != callbackPath {
		e.t.Fatalf("flow ended at %s, not the callback: %d %s", resp.Request.URL, resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

type currentUser struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Roles    []struct {
		Name string `json:"name"`
	} `json:"roles"`
}

func (e *oidcEnv) whoami(token string) currentUser {
	e.t.Helper()
	var u currentUser
	e.gh.JSON("GET", "/auth/api/v1/users/current", token, nil, http.StatusOK, &u)
	return u
}

func roleNames(u currentUser) []string {
	var out []string
	for _, r := range u.Roles {
		out = append(out, r.Name)
	}
	slices.Sort(out)
	return out
}

func TestOIDCLoginProvisionsUserWithGroupsAndTags(t *testing.T) {
	for _, pg := range []bool{false, true} {
		t.Run(map[bool]string{false: "sqlite", true: "postgres"}[pg], func(t *testing.T) {
			e := newOIDCEnv(t, pg)
			var buttons struct {
				Items []map[string]string `json:"items"`
			}
			e.gh.JSON("GET", "/auth/api/v1/oidc/sources", "", nil, http.StatusOK, &buttons)
			want := []map[string]string{{"id": e.source, "name": "corp-idp", "button_title": "Corp SSO"}}
			if d := cmp.Diff(want, buttons.Items); d != "" {
				t.Errorf("login buttons (-want +got):\n%s", d)
			}

			status, tok := e.webLogin(e.browser())
			if status != http.StatusOK || tok["access_token"] == nil || tok["refresh_token"] == nil {
				t.Fatalf("first login: %d %v", status, tok)
			}
			me := e.whoami(tok["access_token"].(string))
			if me.Username != "alice" {
				t.Errorf("logged in as %q, want alice", me.Username)
			}
			if d := cmp.Diff([]string{"ops", "team-a"}, roleNames(me)); d != "" {
				t.Errorf("roles from group and tag rules (-want +got):\n%s", d)
			}
			var user struct {
				Email    string `json:"email"`
				FullName string `json:"full_name"`
				Source   any    `json:"source"`
			}
			e.gh.JSON("GET", "/local-user-store/api/v1/users/"+me.ID, e.adm, nil, http.StatusOK, &user)
			if user.Email != "alice@example.com" || user.FullName != "Alice A" {
				t.Errorf("provisioned user = %+v", user)
			}
			if scopes := e.prov.Scopes(); len(scopes) == 0 || !slices.Contains(scopes[0], "groups") || !slices.Contains(scopes[0], "openid") {
				t.Errorf("scopes asked for = %v, want openid and the additional groups", scopes)
			}

			// The provider drops alice from Ops: the next login takes the role away and keeps the same user.
			e.prov.AddUser(oidctest.User{Subject: "sub-alice", Username: "alice", Email: "alice@example.org", Name: "Alice A",
				Groups: []string{"dev"}, Tags: []string{"team-a"}})
			status, tok = e.webLogin(e.browser())
			if status != http.StatusOK {
				t.Fatalf("second login: %d %v", status, tok)
			}
			again := e.whoami(tok["access_token"].(string))
			if again.ID != me.ID {
				t.Errorf("second login made user %s, want the same %s", again.ID, me.ID)
			}
			if d := cmp.Diff([]string{"team-a"}, roleNames(again)); d != "" {
				t.Errorf("roles after the group change (-want +got):\n%s", d)
			}
			var members struct {
				Items []map[string]any `json:"items"`
			}
			e.gh.JSON("GET", rolesPath+"/"+e.opsRole+"/members", e.adm, nil, http.StatusOK, &members)
			if len(members.Items) != 0 {
				t.Errorf("ops members after alice left the group: %v", members.Items)
			}
			// The old access token follows the change too: roles are looked up per request.
			if d := cmp.Diff([]string{"team-a"}, roleNames(e.whoami(tok["access_token"].(string)))); d != "" {
				t.Errorf("roles of the first token now (-want +got):\n%s", d)
			}

			// An OIDC user has no password to log in with.
			form := url.Values{"grant_type": {"password"}, "client_id": {"gatehouse-cli"}, "username": {"alice"}, "password": {"anything"}}
			resp, err := e.gh.Client.PostForm(e.gh.URL+tokenPath, form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("password login of an OIDC user: %d, want 401", resp.StatusCode)
			}
		})
	}
}

// loopback stands in for the CLI: a listener on 127.0.0.1 that the login redirects to with a Gatehouse code.
type loopback struct {
	redirect, state, verifier string
}

func newLoopback(t *testing.T) *loopback {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // the browser stops before calling it; only the address matters
	return &loopback{redirect: "http://" + ln.Addr().String() + "/callback", state: "cli-state-1", verifier: oauth2.GenerateVerifier()}
}

func (l *loopback) startURL(base, source string) string {
	return base + "/auth/api/v1/oidc/" + source + "/login?" + url.Values{"redirect_uri": {l.redirect}, "state": {l.state},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(l.verifier)}, "code_challenge_method": {"S256"}}.Encode()
}

// cliLogin runs the flow up to the redirect to the loopback client and returns the Gatehouse code.
func (e *oidcEnv) cliLogin(l *loopback) string {
	e.t.Helper()
	u, _ := url.Parse(l.redirect)
	resp, b := get(e.t, e.browser(u.Host), l.startURL(e.gh.URL, e.source))
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("flow did not end in a redirect to the client: %d %s", resp.StatusCode, b)
	}
	to, _ := url.Parse(resp.Header.Get("Location"))
	if to.Host != u.Host || to.Query().Get("state") != l.state || to.Query().Get("code") == "" {
		e.t.Fatalf("redirect to the client = %s", to)
	}
	return to.Query().Get("code")
}

func (e *oidcEnv) redeem(code, verifier, redirect string) (int, map[string]any) {
	e.t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {"gatehouse-cli"}, "code": {code},
		"code_verifier": {verifier}, "redirect_uri": {redirect}}
	resp, err := e.gh.Client.PostForm(e.gh.URL+tokenPath, form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestOIDCLoopbackClientRedeemsCodeWithPKCE(t *testing.T) {
	e := newOIDCEnv(t, false)
	l := newLoopback(t)

	code := e.cliLogin(l)
	for _, tc := range []struct {
		name, verifier, redirect string
	}{
		{"wrong verifier", oauth2.GenerateVerifier(), l.redirect},
		{"other redirect_uri", l.verifier, "http://127.0.0.1:1/callback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, out := e.redeem(code, tc.verifier, tc.redirect); status != http.StatusBadRequest || out["error"] != "invalid_grant" {
				t.Errorf("redeem: %d %v, want 400 invalid_grant", status, out)
			}
		})
	}
	status, out := e.redeem(code, l.verifier, l.redirect)
	if status != http.StatusOK {
		t.Fatalf("redeem with the right verifier: %d %v", status, out)
	}
	if me := e.whoami(out["access_token"].(string)); me.Username != "alice" {
		t.Errorf("code redeemed for %q, want alice", me.Username)
	}
	if status, out := e.redeem(code, l.verifier, l.redirect); status != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Errorf("second redeem of one code: %d %v, want 400 invalid_grant", status, out)
	}
	if status, out := e.redeem("not-a-code", l.verifier, l.redirect); status != http.StatusBadRequest {
		t.Errorf("made-up code: %d %v, want 400", status, out)
	}

	// Only loopback and same-origin redirects may receive a code.
	// Browsers delete tabs and newlines and read backslashes as slashes (WHATWG URL parsing), so each of these
	// lands on evil.example; the check must refuse them, not normalize them.
	for _, bad := range []string{"https://evil.example/cb", "http://evil.example/cb", "//evil.example/cb", "http://127.0.0.1.evil.example/cb",
		"/\t/evil.example/cb", "/\n/evil.example/cb", "\t//evil.example/cb", "/\\evil.example/cb", "http://127.0.0.1:80@evil.example/callback",
		"http:evil.example/cb", "/auth/api/v1/users/current", "http://127.0.0.1:1/callback?next=//evil.example"} {
		l := &loopback{redirect: bad, state: "s", verifier: oauth2.GenerateVerifier()}
		resp, b := get(t, e.browser(), l.startURL(e.gh.URL, e.source))
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("redirect_uri %s: %d %s, want 400", bad, resp.StatusCode, b)
		}
	}
}

// stopAtCallback runs the flow until the provider sends the browser to Gatehouse's callback, and returns that URL.
func (e *oidcEnv) stopAtCallback(c *http.Client) *url.URL {
	e.t.Helper()
	stop := e.browser(callbackPath)
	stop.Jar = c.Jar
	resp, b := get(e.t, stop, e.gh.URL+"/auth/api/v1/oidc/"+e.source+"/login")
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("flow did not stop at the callback: %d %s", resp.StatusCode, b)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || u.Path != callbackPath {
		e.t.Fatalf("redirect to %s, want the callback", resp.Header.Get("Location"))
	}
	return u
}

func TestOIDCLoginRefusals(t *testing.T) {
	e := newOIDCEnv(t, false)
	tests := []struct {
		name  string
		setup func(t *testing.T) // runs before the login starts
		// callback turns the provider's callback URL into the one fetched, and with which client
		callback func(t *testing.T, u *url.URL, c *http.Client) (*url.URL, *http.Client)
		want     int
	}{
		{name: "wrong state", want: http.StatusBadRequest, callback: func(t *testing.T, u *url.URL, c *http.Client) (*url.URL, *http.Client) {
			q := u.Query()
			q.Set("state", q.Get("state")+"x")
			u.RawQuery = q.Encode()
			return u, c
		}},
		{name: "callback in another browser (login CSRF)", want: http.StatusBadRequest,
			callback: func(_ *testing.T, u *url.URL, _ *http.Client) (*url.URL, *http.Client) { return u, e.browser() }},
		{name: "code replayed", want: http.StatusBadRequest, callback: func(t *testing.T, u *url.URL, c *http.Client) (*url.URL, *http.Client) {
			if resp, b := get(t, c, u.String()); resp.StatusCode != http.StatusOK {
				t.Fatalf("first use of the callback: %d %s", resp.StatusCode, b)
			}
			return u, c
		}},
		{name: "code from the provider tampered with", want: http.StatusUnauthorized, callback: func(t *testing.T, u *url.URL, c *http.Client) (*url.URL, *http.Client) {
			q := u.Query()
			q.Set("code", q.Get("code")+"x")
			u.RawQuery = q.Encode()
			return u, c
		}},
		{name: "nonce in the id token differs", want: http.StatusUnauthorized,
			setup: func(t *testing.T) { e.prov.SpoilNonce(true); t.Cleanup(func() { e.prov.SpoilNonce(false) }) }},
		{name: "userinfo about another subject", want: http.StatusUnauthorized,
			setup: func(t *testing.T) {
				e.prov.SpoilUserinfoSubject(true)
				t.Cleanup(func() { e.prov.SpoilUserinfoSubject(false) })
			}},
		{name: "username Gatehouse cannot hold", want: http.StatusUnauthorized, setup: func(t *testing.T) {
			e.prov.AddUser(oidctest.User{Subject: "sub-odd", Username: "alice smith", Groups: []string{"Ops"}})
			e.prov.LoginAs("alice smith")
			t.Cleanup(func() { e.prov.LoginAs("alice") })
		}},
		{name: "provider error", want: http.StatusUnauthorized, callback: func(t *testing.T, u *url.URL, c *http.Client) (*url.URL, *http.Client) {
			q := u.Query()
			q.Del("code")
			q.Set("error", "access_denied")
			u.RawQuery = q.Encode()
			return u, c
		}},
		{name: "username held by a local user", want: http.StatusUnauthorized, setup: func(t *testing.T) {
			e.prov.AddUser(oidctest.User{Subject: "sub-mallory", Username: "admin", Groups: []string{"Ops"}})
			e.prov.LoginAs("admin")
			t.Cleanup(func() { e.prov.LoginAs("alice") })
		}},
		{name: "source disabled while the login was under way", want: http.StatusUnauthorized,
			callback: func(t *testing.T, u *url.URL, c *http.Client) (*url.URL, *http.Client) {
				e.gh.JSON("PUT", sourcesPath+"/"+e.source, e.adm, e.sourceBody(e.prov.Issuer, e.prov.CAPEM, false), http.StatusOK, nil)
				t.Cleanup(func() {
					e.gh.JSON("PUT", sourcesPath+"/"+e.source, e.adm, e.sourceBody(e.prov.Issuer, e.prov.CAPEM, true), http.StatusOK, nil)
				})
				return u, c
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			c := e.browser()
			u := e.stopAtCallback(c)
			if tc.callback != nil {
				u, c = tc.callback(t, u, c)
			}
			resp, b := get(t, c, u.String())
			if resp.StatusCode != tc.want {
				t.Errorf("callback: %d %s, want %d", resp.StatusCode, b, tc.want)
			}
			if strings.Contains(string(b), "access_token") {
				t.Errorf("refused login answered tokens: %s", b)
			}
		})
	}

	t.Run("a different subject cannot take over a provisioned name", func(t *testing.T) {
		if status, _ := e.webLogin(e.browser()); status != http.StatusOK {
			t.Fatalf("alice's login: %d", status)
		}
		e.prov.AddUser(oidctest.User{Subject: "sub-impostor", Username: "alice", Groups: []string{"Ops"}})
		t.Cleanup(func() {
			e.prov.AddUser(oidctest.User{Subject: "sub-alice", Username: "alice", Groups: []string{"Ops"}})
		})
		if status, out := e.webLogin(e.browser()); status != http.StatusUnauthorized {
			t.Errorf("impostor's login: %d %v, want 401", status, out)
		}
	})

	t.Run("disabled source refuses to start a login", func(t *testing.T) {
		e.gh.JSON("PUT", sourcesPath+"/"+e.source, e.adm, e.sourceBody(e.prov.Issuer, e.prov.CAPEM, false), http.StatusOK, nil)
		defer e.gh.JSON("PUT", sourcesPath+"/"+e.source, e.adm, e.sourceBody(e.prov.Issuer, e.prov.CAPEM, true), http.StatusOK, nil)
		resp, b := get(t, e.browser(), e.gh.URL+"/auth/api/v1/oidc/"+e.source+"/login")
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("login through a disabled source: %d %s, want 404", resp.StatusCode, b)
		}
		var buttons struct{ Count int }
		e.gh.JSON("GET", "/auth/api/v1/oidc/sources", "", nil, http.StatusOK, &buttons)
		if buttons.Count != 0 {
			t.Errorf("a disabled source is offered on the login page")
		}
	})
}

// TestOIDCUntrustedIssuerRejected points a source at an impostor whose discovery names itself as issuer but
// sends logins to the real provider: the ID token comes back issued by the real provider, which is not the
// source's issuer, and must be refused although its signature is good.
func TestOIDCUntrustedIssuerRejected(t *testing.T) {
	e := newOIDCEnv(t, false)
	var fake *httptest.Server
	fake = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		real := e.prov.Issuer
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": fake.URL, "authorization_endpoint": real + "/authorize", "token_endpoint": real + "/oauth/token",
			"jwks_uri": real + "/keys", "userinfo_endpoint": real + "/userinfo", "id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"}})
	}))
	t.Cleanup(fake.Close)
	fakePEM := string(pemCert(fake.Certificate().Raw))
	body := e.sourceBody(fake.URL, e.prov.CAPEM+fakePEM, true)
	body["name"] = "impostor"
	impostor := e.gh.Create(sourcesPath, e.adm, body)

	c := e.browser()
	resp, b := get(t, c, e.gh.URL+"/auth/api/v1/oidc/"+impostor+"/login")
	if resp.StatusCode != http.StatusUnauthorized || strings.Contains(string(b), "access_token") {
		t.Fatalf("login with an ID token from another issuer: %d %s, want 401", resp.StatusCode, b)
	}
	if _, audit := e.gh.Do("GET", "/audit/api/v1/events", e.adm, nil); !strings.Contains(string(audit), "issued by a different provider") {
		t.Errorf("the audit trail does not say the issuer was wrong: %s", audit)
	}
	var users struct{ Items []struct{ Username string } }
	e.gh.JSON("GET", "/local-user-store/api/v1/users", e.adm, nil, http.StatusOK, &users)
	for _, u := range users.Items {
		if u.Username == "alice" {
			t.Errorf("the refused login provisioned alice")
		}
	}
}

func TestOIDCSourceStatusAndSecret(t *testing.T) {
	e := newOIDCEnv(t, false)
	unreachable := e.sourceBody("https://127.0.0.1:1", e.prov.CAPEM, true)
	unreachable["name"] = "unreachable"
	bad := e.gh.Create(sourcesPath, e.adm, unreachable)
	e.gh.Server.Directory().Wait()
	for id, want := range map[string]string{e.source: "OK", bad: "CONNECTION_FAILED"} {
		var src map[string]any
		e.gh.JSON("GET", sourcesPath+"/"+id, e.adm, nil, http.StatusOK, &src)
		if src["status_code"] != want {
			t.Errorf("source %s status %v (%v), want %s", id, src["status_code"], src["status_text"], want)
		}
	}
	if status, _ := e.webLogin(e.browser()); status != http.StatusOK {
		t.Fatalf("login: %d", status)
	}
	resp, b := get(t, e.browser(), e.gh.URL+"/auth/api/v1/oidc/"+bad+"/login")
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("login through an unreachable provider: %d %s, want 502", resp.StatusCode, b)
	}

	secret := e.prov.ClientSecret
	for _, path := range []string{sourcesPath, sourcesPath + "/" + e.source, "/audit/api/v1/events", "/auth/api/v1/oidc/sources"} {
		if _, b := e.gh.Do("GET", path, e.adm, nil); strings.Contains(string(b), secret) {
			t.Errorf("GET %s shows the client secret", path)
		}
	}
	if strings.Contains(e.gh.Logs.String(), secret) {
		t.Error("the log holds the client secret")
	}
	db, err := os.ReadFile(filepath.Join(e.gh.Cfg.DataDir, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	wal, _ := os.ReadFile(filepath.Join(e.gh.Cfg.DataDir, "gatehouse.db-wal"))
	if strings.Contains(string(db)+string(wal), secret) {
		t.Error("the database holds the client secret in clear")
	}
	// A PUT without the secret keeps it: logins still work.
	body := e.sourceBody(e.prov.Issuer, e.prov.CAPEM, true)
	delete(body["connection"].(map[string]any), "oidc_client_secret")
	e.gh.JSON("PUT", sourcesPath+"/"+e.source, e.adm, body, http.StatusOK, nil)
	if status, out := e.webLogin(e.browser()); status != http.StatusOK {
		t.Errorf("login after a PUT without the secret: %d %v", status, out)
	}
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestMain(m *testing.M) { testpg.Main(m) }

// TestOIDCDiscoveryErrorNotEchoed: a provider's discovery error (here an HTML page quoting a marker) was copied
// into the source's status_text, which every sources-view holder reads. The status now says what kind of
// failure it was; the cause is in the log.
func TestOIDCDiscoveryErrorNotEchoed(t *testing.T) {
	e := newOIDCEnv(t, false)
	const marker = "provider-says-7f3a"
	broken := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte("<html><script>alert(1)</script>" + marker + "</html>"))
	}))
	t.Cleanup(broken.Close)
	body := e.sourceBody(broken.URL, string(pemCert(broken.Certificate().Raw)), true)
	body["name"] = "broken"
	id := e.gh.Create(sourcesPath, e.adm, body)
	e.gh.Server.Directory().Wait()
	var src map[string]any
	e.gh.JSON("GET", sourcesPath+"/"+id, e.adm, nil, http.StatusOK, &src)
	text, _ := src["status_text"].(string)
	if src["status_code"] != "CONNECTION_FAILED" || text == "" || strings.Contains(text, marker) || strings.Contains(text, "<") ||
		strings.Contains(text, broken.URL) {
		t.Errorf("status %v %q: want CONNECTION_FAILED with a generic text", src["status_code"], text)
	}
	if _, b := e.gh.Do("GET", sourcesPath, e.adm, nil); strings.Contains(string(b), marker) {
		t.Errorf("the source list quotes the provider: %s", b)
	}
	if !strings.Contains(e.gh.Logs.String(), marker) {
		t.Error("the log lacks the provider's answer")
	}
}

// TestOIDCEnabledFalseRemovesLoginChoice: oidc_enabled false takes an enabled source off the login buttons and
// refuses to start a login through it; true (or absent) puts it back.
func TestOIDCEnabledFalseRemovesLoginChoice(t *testing.T) {
	e := newOIDCEnv(t, false)
	buttons := func() int {
		var b struct{ Count int }
		e.gh.JSON("GET", "/auth/api/v1/oidc/sources", "", nil, http.StatusOK, &b)
		return b.Count
	}
	if n := buttons(); n != 1 {
		t.Fatalf("buttons with oidc_enabled absent: %d, want 1", n)
	}
	var got struct {
		Connection struct {
			OIDCEnabled *bool `json:"oidc_enabled"`
		} `json:"connection"`
	}
	e.gh.JSON("GET", sourcesPath+"/"+e.source, e.adm, nil, http.StatusOK, &got)
	if got.Connection.OIDCEnabled == nil || !*got.Connection.OIDCEnabled {
		t.Fatalf("oidc_enabled of a new OIDC source reads %v, want true", got.Connection.OIDCEnabled)
	}
	body := e.sourceBody(e.prov.Issuer, e.prov.CAPEM, true)
	body["connection"].(map[string]any)["oidc_enabled"] = false
	e.gh.JSON("PUT", sourcesPath+"/"+e.source, e.adm, body, http.StatusOK, nil)
	if n := buttons(); n != 0 {
		t.Errorf("buttons with oidc_enabled false: %d, want 0", n)
	}
	if resp, b := get(t, e.browser(), e.gh.URL+"/auth/api/v1/oidc/"+e.source+"/login"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("login start with oidc_enabled false: %d %s, want 404", resp.StatusCode, b)
	}
	body["connection"].(map[string]any)["oidc_enabled"] = true
	e.gh.JSON("PUT", sourcesPath+"/"+e.source, e.adm, body, http.StatusOK, nil)
	if status, _ := e.webLogin(e.browser()); status != http.StatusOK {
		t.Errorf("login with oidc_enabled true again: %d", status)
	}
}
