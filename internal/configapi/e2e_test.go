package configapi_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-dev/gatehouse/internal/configapi"
	"github.com/gatehouse-dev/gatehouse/internal/testca"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// client is a cookie-jar client of a test server, like curl --cookie-jar.
type client struct {
	t  *testing.T
	gh *testserver.Instance
	c  *http.Client
}

func newClient(t *testing.T, gh *testserver.Instance, cert *tls.Certificate) *client {
	jar, _ := cookiejar.New(nil)
	tr := gh.Client.Transport.(*http.Transport).Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	return &client{t: t, gh: gh, c: &http.Client{Jar: jar, Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) do(method, path string, body any, edit func(*http.Request)) (*http.Response, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.gh.URL+path, rd)
	if edit != nil {
		edit(req)
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (c *client) must(method, path string, body any, want int) []byte {
	c.t.Helper()
	resp, b := c.do(method, path, body, nil)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	return b
}

func (c *client) login(user, pw string) {
	c.t.Helper()
	resp, b := c.do("GET", "/api/authentication", nil, func(r *http.Request) { r.SetBasicAuth(user, pw) })
	if resp.StatusCode != 200 {
		c.t.Fatalf("login %s: %d %s", user, resp.StatusCode, b)
	}
}

func code(t *testing.T, b []byte) string {
	t.Helper()
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Details struct {
				Field string `json:"field"`
			} `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("not an error body: %s", b)
	}
	return e.Error.Code
}

// golden compares b (JSON) with testdata/name.json, after replacing volatile values, or rewrites it with -update.
func golden(t *testing.T, name string, b []byte, volatile ...string) {
	t.Helper()
	s := string(b)
	for i, v := range volatile {
		s = strings.ReplaceAll(s, v, "<volatile-"+string(rune('a'+i))+">")
	}
	// Every error carries the request's id, new each time.
	s = regexp.MustCompile(`"request_id":\s*"[^"]*"`).ReplaceAllString(s, `"request_id":"<request-id>"`)
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, []byte(s), "", "  "); err != nil {
		t.Fatalf("%s: %v: %s", name, err, s)
	}
	path := filepath.Join("testdata", name+".json")
	if *update {
		os.WriteFile(path, pretty.Bytes(), 0o644)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if d := cmp.Diff(strings.TrimSpace(string(want)), strings.TrimSpace(pretty.String())); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", name, d)
	}
}

func TestPasswordLoginAndShapes(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	c := newClient(t, gh, nil)

	resp, b := c.do("GET", "/api/configuration", nil, nil)
	if resp.StatusCode != 401 || code(t, b) != configapi.CodeUnauthenticated {
		t.Fatalf("before login: %d %s", resp.StatusCode, b)
	}
	resp, b = c.do("GET", "/api/authentication", nil, func(r *http.Request) { r.SetBasicAuth("admin", "wrong") })
	if resp.StatusCode != 401 || code(t, b) != configapi.CodeAuthenticationFailure {
		t.Fatalf("bad password: %d %s", resp.StatusCode, b)
	}
	resp, b = c.do("POST", "/api/authentication", nil, func(r *http.Request) { r.SetBasicAuth("admin", testserver.AdminPassword) })
	if resp.StatusCode != 405 || code(t, b) != configapi.CodeUnsupportedMethod {
		t.Fatalf("POST authentication: %d %s", resp.StatusCode, b)
	}
	resp, b = c.do("GET", "/api/authentication", nil, func(r *http.Request) { r.SetBasicAuth("admin", testserver.AdminPassword) })
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d %s", resp.StatusCode, b)
	}
	golden(t, "login", b)
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "session_id" {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || !cookie.Secure || cookie.Path != "/api" {
		t.Fatalf("session cookie = %+v", cookie)
	}

	golden(t, "types", c.must("GET", "/api/authentication/types", nil, 200))
	golden(t, "root", c.must("GET", "/api", nil, 200))
	golden(t, "configuration", c.must("GET", "/api/configuration", nil, 200))
	golden(t, "http", c.must("GET", "/api/configuration/http", nil, 200))
	golden(t, "userlists", c.must("GET", "/api/configuration/policies/userlists", nil, 200))
	golden(t, "userlist-4", c.must("GET", "/api/configuration/policies/userlists/-4", nil, 200))
	golden(t, "connection-default", c.must("GET", "/api/configuration/http/connections/-1", nil, 200))
	golden(t, "aaa-settings", c.must("GET", "/api/configuration/aaa/settings", nil, 200))

	// The session id also works as a header, without the cookie.
	bare := newClient(t, gh, nil)
	resp, b = bare.do("GET", "/api/configuration", nil, func(r *http.Request) { r.Header.Set("session_id", cookie.Value) })
	if resp.StatusCode != 200 {
		t.Fatalf("session_id header: %d %s", resp.StatusCode, b)
	}
	// Service API bearer tokens are accepted too.
	resp, b = bare.do("GET", "/api/configuration", nil, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+gh.AdminToken()) })
	if resp.StatusCode != 200 {
		t.Fatalf("bearer token: %d %s", resp.StatusCode, b)
	}

	// Errors: one shape naming the field.
	resp, b = c.do("POST", "/api/configuration/policies/userlists", map[string]any{"name": "x", "allow": "some"}, nil)
	if resp.StatusCode != 400 {
		t.Fatalf("bad allow: %d %s", resp.StatusCode, b)
	}
	golden(t, "error-semantic", b)
	resp, b = c.do("POST", "/api/configuration/http/connections", map[string]any{"name": "x", "network": map[string]any{"clients": "10.0.0.0/8"}}, nil)
	if resp.StatusCode != 400 || code(t, b) != configapi.CodeSyntacticError || !strings.Contains(string(b), `"field": "network.clients"`) {
		t.Fatalf("wrong type: %d %s", resp.StatusCode, b)
	}
	resp, b = c.do("DELETE", "/api/configuration/policies/userlists/-1", nil, nil)
	if resp.StatusCode != 400 || code(t, b) != configapi.CodeSemanticError {
		t.Fatalf("delete a default: %d %s", resp.StatusCode, b)
	}
	resp, b = c.do("GET", "/api/configuration/policies/userlists/nope", nil, nil)
	if resp.StatusCode != 404 || code(t, b) != configapi.CodeNotFound {
		t.Fatalf("missing object: %d %s", resp.StatusCode, b)
	}

	// Logout ends the session.
	c.must("DELETE", "/api/authentication", nil, 200)
	resp, _ = bare.do("GET", "/api/configuration", nil, func(r *http.Request) { r.Header.Set("session_id", cookie.Value) })
	if resp.StatusCode != 401 {
		t.Fatalf("after logout: %d", resp.StatusCode)
	}
}

func TestTransactionFlowAndLock(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	a, b := newClient(t, gh, nil), newClient(t, gh, nil)
	a.login("admin", testserver.AdminPassword)
	b.login("admin", testserver.AdminPassword)

	var created struct {
		Key  string            `json:"key"`
		Meta map[string]string `json:"meta"`
	}
	json.Unmarshal(a.must("POST", "/api/configuration/policies/userlists", map[string]any{"name": "ops", "allow": "no_user", "except": []string{"alice"}}, 201), &created)
	golden(t, "created", mustJSON(created), created.Key)
	golden(t, "changes", a.must("GET", "/api/transaction/changes", nil, 200), created.Key)

	// The staged object is visible to its session only.
	if resp, _ := b.do("GET", "/api/configuration/policies/userlists/"+created.Key, nil, nil); resp.StatusCode != 404 {
		t.Fatalf("other session sees a staged object: %d", resp.StatusCode)
	}
	// The other session's writes are refused, naming the holder.
	resp, body := b.do("POST", "/api/configuration/policies/userlists", map[string]any{"name": "x", "allow": "all_users"}, nil)
	if resp.StatusCode != 409 || code(t, body) != configapi.CodeTransactionLocked || !strings.Contains(string(body), "admin") {
		t.Fatalf("write while locked: %d %s", resp.StatusCode, body)
	}
	if resp, body := b.do("PUT", "/api/transaction", map[string]string{"status": "commit"}, nil); resp.StatusCode != 409 {
		t.Fatalf("commit by a non-holder: %d %s", resp.StatusCode, body)
	}
	var st struct {
		Body map[string]any `json:"body"`
	}
	json.Unmarshal(b.must("GET", "/api/transaction", nil, 200), &st)
	if st.Body["status"] != "closed" || st.Body["locked_by"] != "admin" {
		t.Fatalf("other session's status: %v", st.Body)
	}

	a.must("PUT", "/api/transaction", map[string]string{"status": "commit"}, 200)
	b.must("GET", "/api/configuration/policies/userlists/"+created.Key, nil, 200)

	// Now b can write; its rollback discards.
	b.must("POST", "/api/transaction", nil, 200)
	b.must("DELETE", "/api/configuration/policies/userlists/"+created.Key, nil, 200)
	b.must("DELETE", "/api/transaction", nil, 200)
	a.must("GET", "/api/configuration/policies/userlists/"+created.Key, nil, 200)

	events := struct {
		Items []struct {
			Action string         `json:"action"`
			Diff   map[string]any `json:"diff"`
		} `json:"items"`
	}{}
	gh.JSON("GET", "/audit/api/v1/events?filter=&limit=100", gh.AdminToken(), nil, 200, &events)
	found := false
	for _, e := range events.Items {
		if e.Action == "commit" && strings.Contains(string(mustJSON(e.Diff)), created.Key) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no commit audit event with the change: %+v", events.Items)
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// TestUserInfoMatchesPermissionTable checks user_info against the table and the table against the guard: every
// URL user_info lists for a user with only config-view answers that method with something other than 401/403, and
// every row the user lacks is refused with 403.
func TestUserInfoMatchesPermissionTable(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	roleID := gh.Create("/role-store/api/v1/roles", adm, map[string]any{"name": "config-viewers", "permissions": []string{"config-view"}})
	userID := gh.Create("/local-user-store/api/v1/users", adm, map[string]any{"username": "carol", "password": "Carol-pass-123", "enabled": true})
	gh.JSON("PUT", "/role-store/api/v1/users/"+userID+"/roles", adm, []map[string]string{{"id": roleID}}, 200, nil)
	c := newClient(t, gh, nil)
	c.login("carol", "Carol-pass-123")

	var info struct {
		User      map[string]string `json:"user"`
		Endpoints []struct {
			Methods []string `json:"methods"`
			URL     string   `json:"url"`
		} `json:"endpoints"`
	}
	json.Unmarshal(c.must("GET", "/api/user_info", nil, 200), &info)
	if info.User["name"] != "carol" || info.User["login_method"] != "password" {
		t.Fatalf("user = %v", info.User)
	}
	want := map[string][]string{}
	for _, row := range configapi.PermissionTable() {
		if row.Perm == configapi.Public || row.Perm == "" || row.Perm == "config-view" {
			want[row.URL] = append(want[row.URL], row.Method)
		}
	}
	got := map[string][]string{}
	for _, e := range info.Endpoints {
		got[e.URL] = e.Methods
	}
	for u := range want {
		slices.Sort(want[u])
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("user_info differs from the permission table (-table +user_info):\n%s", d)
	}
	for _, row := range configapi.PermissionTable() {
		if row.Perm == configapi.Public || row.URL == "/api/active-sessions" {
			continue
		}
		resp, b := c.do(row.Method, row.URL, nil, nil)
		allowed := slices.Contains(got[row.URL], row.Method)
		if allowed && (resp.StatusCode == 401 || resp.StatusCode == 403) {
			t.Errorf("%s %s listed as allowed but answered %d: %s", row.Method, row.URL, resp.StatusCode, b)
		}
		if !allowed && resp.StatusCode != 403 {
			t.Errorf("%s %s not listed but answered %d: %s", row.Method, row.URL, resp.StatusCode, b)
		}
	}
}

// testCA makes a CA and a client certificate for cn signed by it.
func testCA(t *testing.T, cn string) (caPEM string, cert tls.Certificate) {
	t.Helper()
	ca := testca.New(t, "test auth CA")
	leaf, err := ca.Issue(x509.ExtKeyUsageClientAuth, cn)
	if err != nil {
		t.Fatal(err)
	}
	return string(ca.PEM), leaf.TLS
}

func TestCertificateLogin(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	caPEM, adminCert := testCA(t, "admin")
	_, strangerCert := testCA(t, "admin") // same name, other CA

	withCert := newClient(t, gh, &adminCert)
	resp, b := withCert.do("GET", "/api/authentication?type=x509", nil, nil)
	if resp.StatusCode != 401 || code(t, b) != configapi.CodeAuthenticationFailure {
		t.Fatalf("x509 before a CA is configured: %d %s", resp.StatusCode, b)
	}

	admin := newClient(t, gh, nil)
	admin.login("admin", testserver.AdminPassword)
	admin.must("PUT", "/api/configuration/aaa/settings", map[string]any{"x509": map[string]any{"authentication_ca": caPEM}}, 200)
	admin.must("PUT", "/api/transaction", map[string]string{"status": "commit"}, 200)
	if !strings.Contains(string(admin.must("GET", "/api/authentication/types", nil, 200)), "x509") {
		t.Fatal("types does not list x509 once a CA is set")
	}

	resp, b = withCert.do("GET", "/api/authentication?type=x509", nil, nil)
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "/api/" {
		t.Fatalf("x509 login: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	var info struct {
		User map[string]string `json:"user"`
	}
	json.Unmarshal(withCert.must("GET", "/api/user_info", nil, 200), &info)
	if info.User["name"] != "admin" || info.User["login_method"] != "x509" {
		t.Fatalf("x509 session user = %v", info.User)
	}

	stranger := newClient(t, gh, &strangerCert)
	resp, b = stranger.do("GET", "/api/authentication?type=x509", nil, nil)
	if resp.StatusCode != 401 || code(t, b) != configapi.CodeAuthenticationFailure {
		t.Fatalf("certificate of another CA: %d %s", resp.StatusCode, b)
	}
	resp, b = newClient(t, gh, nil).do("GET", "/api/authentication?type=x509", nil, nil)
	if resp.StatusCode != 400 || code(t, b) != configapi.CodeInvalidAuthentication {
		t.Fatalf("x509 without a certificate: %d %s", resp.StatusCode, b)
	}
}
