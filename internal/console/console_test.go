package console_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/console"
	"github.com/gatehouse-dev/gatehouse/internal/serviceapi"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// web is a browser-like client of the console: a cookie jar, no redirects followed, and the Origin and
// Sec-Fetch-Site a same-origin form post carries.
type web struct {
	t      testing.TB
	base   string
	client *http.Client
}

func newWeb(t testing.TB, base string, roots *x509.CertPool) *web {
	jar, _ := cookiejar.New(nil)
	return &web{t: t, base: base, client: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (w *web) get(path string) (int, string, http.Header) {
	w.t.Helper()
	resp, err := w.client.Get(w.base + path)
	if err != nil {
		w.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// post sends a form with the given extra headers (nil: a same-origin form post).
func (w *web) post(path string, form url.Values, hdr map[string]string) (int, string, http.Header) {
	w.t.Helper()
	req, _ := http.NewRequest("POST", w.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", w.base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := w.client.Do(req)
	if err != nil {
		w.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the form token of a page.
func (w *web) csrf(path string) string {
	w.t.Helper()
	_, body, _ := w.get(path)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		w.t.Fatalf("no csrf field on %s: %.300s", path, body)
	}
	return m[1]
}

func (w *web) signIn(user, password string) {
	w.t.Helper()
	tok := w.csrf("/login")
	st, body, hdr := w.post("/login", url.Values{"csrf": {tok}, "username": {user}, "password": {password}}, nil)
	if st != http.StatusSeeOther || hdr.Get("Location") != "/access" {
		w.t.Fatalf("sign in as %s: %d %s %.300s", user, st, hdr.Get("Location"), body)
	}
}

// signedIn reports whether /access opens (true) or sends the browser to the sign-in page (false).
func (w *web) signedIn() bool {
	w.t.Helper()
	st, _, hdr := w.get("/access")
	switch {
	case st == http.StatusOK:
		return true
	case st == http.StatusSeeOther && strings.HasPrefix(hdr.Get("Location"), "/login"):
		return false
	}
	w.t.Fatalf("GET /access = %d %s", st, hdr.Get("Location"))
	return false
}

func roots(gh *testserver.Instance) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(gh.Server.CA().Root())
	return p
}

func newUser(t *testing.T, gh *testserver.Instance, adm, name, password string, perms ...string) string {
	if perms == nil {
		perms = []string{}
	}
	role := gh.Create("/role-store/api/v1/roles", adm, map[string]any{"name": "role-" + name, "permissions": perms})
	id := gh.Create("/local-user-store/api/v1/users", adm, map[string]any{"username": name, "password": password})
	gh.JSON("PUT", "/role-store/api/v1/users/"+id+"/roles", adm, []map[string]string{{"id": role}}, http.StatusOK, nil)
	return id
}

// TestSessionEnds pins that a console session ends like the API's tokens: on a password change, when the user is
// disabled, and on sign-out, whose cookie value is useless afterwards.
func TestSessionEnds(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	id := newUser(t, gh, adm, "bob", "Bob-pass-12345")
	w := newWeb(t, gh.URL, roots(gh))

	w.signIn("bob", "Bob-pass-12345")
	if !w.signedIn() {
		t.Fatal("not signed in after sign-in")
	}
	gh.JSON("PUT", "/local-user-store/api/v1/users/"+id+"/password", adm, map[string]string{"password": "Bob-new-pass-678"}, http.StatusOK, nil)
	if w.signedIn() {
		t.Error("the console session survived a password change")
	}

	w.signIn("bob", "Bob-new-pass-678")
	gh.JSON("PUT", "/local-user-store/api/v1/users/"+id, adm, map[string]any{"enabled": false}, http.StatusOK, nil)
	if w.signedIn() {
		t.Error("the console session survived disabling the user")
	}
	gh.JSON("PUT", "/local-user-store/api/v1/users/"+id, adm, map[string]any{"enabled": true}, http.StatusOK, nil)

	w.signIn("bob", "Bob-new-pass-678")
	u, _ := url.Parse(gh.URL)
	var old *http.Cookie
	for _, c := range w.client.Jar.Cookies(u) {
		if c.Name == "gatehouse_console" {
			old = c
		}
	}
	if old == nil {
		t.Fatal("no gatehouse_console cookie")
	}
	if st, _, hdr := w.post("/logout", url.Values{"csrf": {w.csrf("/access")}}, nil); st != http.StatusSeeOther || hdr.Get("Location") != "/login" {
		t.Fatalf("logout = %d %s", st, hdr.Get("Location"))
	}
	w.client.Jar.SetCookies(u, []*http.Cookie{old})
	if w.signedIn() {
		t.Error("the cookie of a signed-out session still works")
	}
}

// TestCookieAndHeaders pins the session cookie's attributes and the headers of every page.
func TestCookieAndHeaders(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	w := newWeb(t, gh.URL, roots(gh))
	tok := w.csrf("/login")
	_, _, hdr := w.post("/login", url.Values{"csrf": {tok}, "username": {"admin"}, "password": {testserver.AdminPassword}}, nil)
	var cookie string
	for _, c := range hdr.Values("Set-Cookie") {
		if strings.HasPrefix(c, "gatehouse_console=") {
			cookie = c
		}
	}
	for _, attr := range []string{"HttpOnly", "Secure", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(cookie, attr) {
			t.Errorf("session cookie %q lacks %s", cookie, attr)
		}
	}
	for _, path := range []string{"/login", "/access", "/monitor/connections", "/admin/targets/new", "/static/app.js"} {
		_, _, h := w.get(path)
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "require-trusted-types-for 'script'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %s", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q allows unsafe sources", path, csp)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: framing or sniffing headers missing: %v", path, h)
		}
	}
}

// TestForgedPostsRefused pins the anti-forgery checks: a state change needs the session's form token and must not
// come from another origin or site; a refused post changes nothing.
func TestForgedPostsRefused(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	w := newWeb(t, gh.URL, roots(gh))
	w.signIn("admin", testserver.AdminPassword)
	tok := w.csrf("/admin/users")
	form := func(name, csrf string) url.Values {
		return url.Values{"username": {name}, "password": {"Some-pass-12345"}, "csrf": {csrf}}
	}
	cases := []struct {
		name string
		form url.Values
		hdr  map[string]string
	}{
		{"no token", form("u1", ""), nil},
		{"wrong token", form("u2", tok+"x"), nil},
		{"another session's token", form("u3", newWeb(t, gh.URL, roots(gh)).csrf("/login")), nil},
		{"cross-origin", form("u4", tok), map[string]string{"Origin": "https://evil.example"}},
		{"same-site, other origin", form("u5", tok), map[string]string{"Origin": "https://127.0.0.1:1", "Sec-Fetch-Site": "same-site"}},
		{"cross-site fetch", form("u6", tok), map[string]string{"Origin": "", "Sec-Fetch-Site": "cross-site"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, body, _ := w.post("/admin/users", c.form, c.hdr)
			if st != http.StatusForbidden || !strings.Contains(body, "cross-site request refused") {
				t.Errorf("= %d %.200s, want 403", st, body)
			}
			if _, b := gh.Do("GET", "/local-user-store/api/v1/users?filter="+c.form.Get("username"), adm, nil); strings.Contains(string(b), `"`+c.form.Get("username")+`"`) {
				t.Errorf("the refused post created %s", c.form.Get("username"))
			}
		})
	}
	if st, body, hdr := w.post("/admin/users", form("u7", tok), nil); st != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), "/admin/users/") {
		t.Fatalf("a genuine post = %d %s %.300s", st, hdr.Get("Location"), body)
	}
	// The sign-in form is protected too: without the cookie its token came with, it is refused.
	other := newWeb(t, gh.URL, roots(gh))
	if st, _, _ := other.post("/login", url.Values{"csrf": {w.csrf("/admin/users")}, "username": {"admin"}, "password": {testserver.AdminPassword}}, nil); st != http.StatusForbidden {
		t.Errorf("sign-in without its cookie = %d, want 403", st)
	}
}

// TestMenusAndPagesFollowPermissions pins that the menu shows only what the user may do and that a page beyond the
// user's permissions is refused by the API's own check.
func TestMenusAndPagesFollowPermissions(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	newUser(t, gh, adm, "carol", "Carol-pass-1234", auth.APIProxyCredentialsOwn, auth.ConnectionsView)
	w := newWeb(t, gh.URL, roots(gh))
	w.signIn("carol", "Carol-pass-1234")
	_, body, _ := w.get("/access")
	for _, want := range []string{`href="/access"`, `href="/monitor/connections"`} {
		if !strings.Contains(body, want) {
			t.Errorf("carol's menu lacks %s", want)
		}
	}
	for _, hidden := range []string{`href="/admin/targets"`, `href="/admin/users"`, `href="/monitor/audit"`, `href="/admin/policies"`} {
		if strings.Contains(body, hidden) {
			t.Errorf("carol's menu shows %s", hidden)
		}
	}
	for _, path := range []string{"/admin/targets", "/admin/users", "/monitor/audit", "/admin/policies", "/admin/clients",
		"/admin/sources", "/admin/hosts", "/settings/api-proxy", "/admin/policies/changes"} {
		if st, body, _ := w.get(path); st != http.StatusForbidden || !strings.Contains(body, "permission") {
			t.Errorf("carol GET %s = %d, want 403", path, st)
		}
	}
	if st, _, _ := w.get("/monitor/connections"); st != http.StatusOK {
		t.Errorf("carol GET /monitor/connections = %d", st)
	}
}

// fakeClock is a settable clock for the idle-expiry test.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestIdleExpiry pins that a session unused for IdleTimeout ends, and that use keeps it alive.
func TestIdleExpiry(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	clock := &fakeClock{now: time.Now()}
	api := &serviceapi.API{Store: gh.Server.Store(), Tokens: auth.NewTokenIssuer([]byte("test-signing-key-0123456789abcdef"), time.Hour), CA: gh.Server.CA()}
	mux := http.NewServeMux()
	api.Routes(mux)
	con := &console.Console{Service: api, Backend: mux, Store: gh.Server.Store(), CSRFKey: []byte("csrf-key"), IdleTimeout: time.Minute, Now: clock.Now}
	if err := con.Routes(mux); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	w := newWeb(t, srv.URL, pool)
	w.signIn("admin", testserver.AdminPassword)
	for i := 0; i < 3; i++ {
		clock.advance(50 * time.Second)
		if !w.signedIn() {
			t.Fatalf("session ended after %d uses 50 s apart", i+1)
		}
	}
	clock.advance(61 * time.Second)
	if w.signedIn() {
		t.Error("session still valid after 61 s idle with a 60 s idle timeout")
	}
}

// TestCredentialLifecycle pins the own-credential pages: create (the API's message next to the field on error),
// show the secret, narrow, rotate (a new secret), revoke.
func TestCredentialLifecycle(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	newUser(t, gh, adm, "erin", "Erin-pass-12345", auth.APIProxyCredentialsOwn)
	var roles struct {
		Items []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"items"`
	}
	gh.JSON("GET", "/role-store/api/v1/roles?filter=role-erin", adm, nil, http.StatusOK, &roles)
	tid := gh.Create("/api-proxy/api/v1/api-targets", adm, map[string]any{"name": "t1", "roles": []map[string]string{{"id": roles.Items[0].ID}},
		"authorized_endpoints": []map[string]any{{"host": "api.example.com", "protocols": []string{"https"}, "methods": []string{"*"}, "paths": []string{"/**"}}},
		"target_credential":    map[string]any{"type": "token", "bearer_token": "x"}})
	w := newWeb(t, gh.URL, roots(gh))
	w.signIn("erin", "Erin-pass-12345")
	tok := w.csrf("/access")
	if st, page, _ := w.get("/access/targets/" + tid); st != http.StatusOK || !strings.Contains(page, `<code id="connect-command">gatehouse connect t1 --listen 127.0.0.1:8080</code>`) {
		t.Errorf("the connection info does not offer the local connector: %d %.300s", st, page)
	}

	st, body, _ := w.post("/access/credentials", url.Values{"csrf": {tok}, "target.id": {tid}, "name": {"laptop"}, "source_address": {"not-an-address"}}, nil)
	if st != http.StatusBadRequest || !regexp.MustCompile(`class="field-error" id="err-source_address">[^<]+<`).MatchString(body) {
		t.Errorf("bad source address = %d, want 400 with the error next to the field: %.2000s", st, body)
	}
	st, _, hdr := w.post("/access/credentials", url.Values{"csrf": {tok}, "target.id": {tid}, "name": {"laptop"}}, nil)
	loc := hdr.Get("Location")
	if st != http.StatusSeeOther || !strings.HasSuffix(loc, "?show=1") {
		t.Fatalf("create = %d %s", st, loc)
	}
	secretOf := func() string {
		_, body, _ := w.get(loc)
		m := regexp.MustCompile(`<code id="secret">(ghp_[A-Za-z0-9_-]+)</code>`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no secret on %s", loc)
		}
		return m[1]
	}
	first := secretOf()
	credPath := strings.TrimSuffix(loc, "?show=1")

	// Narrow: a later start is accepted, a later end is refused with the API's message at the field.
	_, page, _ := w.get(credPath)
	was := func(name string) string {
		return regexp.MustCompile(`name="` + name + `_was" value="([^"]+)"`).FindStringSubmatch(page)[1]
	}
	nb, na := was("not_before"), was("not_after")
	later, _ := time.Parse("2006-01-02T15:04", na)
	st, body, _ = w.post(credPath, url.Values{"csrf": {tok}, "name": {"laptop"}, "enabled": {"on"}, "not_before": {nb}, "not_before_was": {nb},
		"not_after": {later.Add(time.Hour).Format("2006-01-02T15:04")}, "not_after_was": {na}}, nil)
	if st != http.StatusBadRequest || !strings.Contains(body, `id="err-not_after"`) {
		t.Errorf("widening not_after = %d, want 400 at the field", st)
	}
	st, body, _ = w.post(credPath, url.Values{"csrf": {tok}, "name": {"laptop-2"}, "enabled": {"on"}, "not_before": {nb}, "not_before_was": {nb},
		"not_after": {later.Add(-time.Hour).Format("2006-01-02T15:04")}, "not_after_was": {na}}, nil)
	if st != http.StatusOK || !strings.Contains(body, "Saved.") || !strings.Contains(body, `value="laptop-2"`) {
		t.Errorf("narrowing = %d %.300s", st, body)
	}

	if st, _, hdr := w.post(credPath+"/rotate", url.Values{"csrf": {tok}}, nil); st != http.StatusSeeOther || hdr.Get("Location") != loc {
		t.Fatalf("rotate = %d %s", st, hdr.Get("Location"))
	}
	if second := secretOf(); second == first {
		t.Error("rotating kept the secret")
	}
	if st, _, _ := w.post(credPath+"/revoke", url.Values{"csrf": {tok}}, nil); st != http.StatusSeeOther {
		t.Fatalf("revoke = %d", st)
	}
	if st, _, _ := w.get(credPath); st != http.StatusNotFound {
		t.Errorf("a revoked credential's page = %d, want 404", st)
	}
}

// TestSignInSharesTheLoginLimiter pins that the console's sign-in is the APIs' login: its failures count in the same
// limiter, so after the allowed failures both the console and the token endpoint refuse the name from this source.
func TestSignInSharesTheLoginLimiter(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{LoginLimiter: &auth.MemoryLoginLimiter{PairBurst: 3, NameSlowAfter: 100}})
	newUser(t, gh, gh.AdminToken(), "frank", "Frank-pass-1234")
	w := newWeb(t, gh.URL, roots(gh))
	for i := 0; i < 3; i++ {
		tok := w.csrf("/login")
		if st, body, _ := w.post("/login", url.Values{"csrf": {tok}, "username": {"frank"}, "password": {"wrong"}}, nil); st != http.StatusUnauthorized || !strings.Contains(body, "Wrong username or password") {
			t.Fatalf("failure %d = %d", i+1, st)
		}
	}
	tok := w.csrf("/login")
	st, body, hdr := w.post("/login", url.Values{"csrf": {tok}, "username": {"frank"}, "password": {"Frank-pass-1234"}}, nil)
	if st != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed attempts") || hdr.Get("Retry-After") == "" {
		t.Errorf("sign-in after the allowed failures = %d (Retry-After %q), want 429", st, hdr.Get("Retry-After"))
	}
	resp, err := gh.Client.PostForm(gh.URL+"/auth/api/v1/oauth/token", url.Values{"grant_type": {"password"}, "client_id": {"gatehouse-cli"},
		"username": {"frank"}, "password": {"Frank-pass-1234"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("token endpoint after the console's failures = %d, want 429", resp.StatusCode)
	}
}
