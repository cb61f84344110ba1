package configapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/configapi"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestX509LoginRefusesPasswords: once aaa/settings sets an authentication CA, password logins are refused for
// every user but the fallback admin, through the configuration API's login and the service API's token endpoint
// alike; the certificate login works; removing the CA brings password logins back.
func TestX509LoginRefusesPasswords(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	gh.Create("/local-user-store/api/v1/users", gh.AdminToken(), map[string]any{"username": "alice", "password": "Alice-pass-1"})
	caPEM, aliceCert := testCA(t, "alice")
	token := func(user, pw string) (int, string) {
		resp, err := gh.Client.PostForm(gh.URL+"/auth/api/v1/oauth/token", url.Values{"grant_type": {"password"},
			"client_id": {"gatehouse-cli"}, "username": {user}, "password": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	passwordLogin := func(user, pw string) (int, []byte) {
		resp, b := newClient(t, gh, nil).do("GET", "/api/authentication", nil, func(r *http.Request) { r.SetBasicAuth(user, pw) })
		return resp.StatusCode, b
	}
	if st, b := passwordLogin("alice", "Alice-pass-1"); st != 200 {
		t.Fatalf("alice's password login before x509: %d %s", st, b)
	}

	admin := newClient(t, gh, nil)
	admin.login("admin", testserver.AdminPassword)
	admin.must("PUT", "/api/configuration/aaa/settings", map[string]any{"x509": map[string]any{"authentication_ca": caPEM}}, 200)
	admin.must("PUT", "/api/transaction", map[string]string{"status": "commit"}, 200)

	st, b := passwordLogin("alice", "Alice-pass-1")
	if st != 400 || code(t, b) != configapi.CodeInvalidAuthentication || !strings.Contains(string(b), "x509") {
		t.Fatalf("alice's password login with x509 on: %d %s", st, b)
	}
	if st, b := token("alice", "Alice-pass-1"); st != 400 || !strings.Contains(b, "invalid_grant") || strings.Contains(b, "access_token") {
		t.Fatalf("alice's password grant with x509 on: %d %s", st, b)
	}
	if st, b := passwordLogin("admin", testserver.AdminPassword); st != 200 {
		t.Fatalf("the fallback admin's password login: %d %s", st, b)
	}
	if st, b := token("admin", testserver.AdminPassword); st != 200 {
		t.Fatalf("the fallback admin's password grant: %d %s", st, b)
	}
	resp, b := newClient(t, gh, &aliceCert).do("GET", "/api/authentication?type=x509", nil, nil)
	if resp.StatusCode != 302 {
		t.Fatalf("alice's certificate login: %d %s", resp.StatusCode, b)
	}
	var types struct {
		Types map[string]any `json:"types"`
	}
	json.Unmarshal(admin.must("GET", "/api/authentication/types", nil, 200), &types)
	if types.Types["x509"] == nil || types.Types["basic"] == nil {
		t.Fatalf("types with x509 on and the admin's fallback: %v", types.Types)
	}

	admin.must("PUT", "/api/configuration/aaa/settings", map[string]any{"x509": map[string]any{"authentication_ca": nil}}, 200)
	admin.must("PUT", "/api/transaction", map[string]string{"status": "commit"}, 200)
	if st, b := passwordLogin("alice", "Alice-pass-1"); st != 200 {
		t.Fatalf("alice's password login after x509 is off: %d %s", st, b)
	}
	if st, b := token("alice", "Alice-pass-1"); st != 200 {
		t.Fatalf("alice's password grant after x509 is off: %d %s", st, b)
	}
}
