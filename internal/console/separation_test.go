package console_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestConsoleAndConfigAPISessionsAreSeparate pins that the console's cookie and the configuration API's session_id
// are not interchangeable although both live in one session table: a console cookie value sent as session_id (header
// or cookie) is refused by the configuration API, and a configuration API session_id sent as the console cookie
// does not sign the console in.
func TestConsoleAndConfigAPISessionsAreSeparate(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	w := newWeb(t, gh.URL, roots(gh))
	w.signIn("admin", testserver.AdminPassword)
	base, _ := url.Parse(gh.URL)
	consoleID := ""
	for _, ck := range w.client.Jar.Cookies(base) {
		if ck.Name == "gatehouse_console" {
			consoleID = ck.Value
		}
	}
	if consoleID == "" {
		t.Fatal("no console cookie after sign-in")
	}
	client := newWeb(t, gh.URL, roots(gh)).client
	ask := func(header, cookie string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", gh.URL+"/api/user_info", nil)
		if header != "" {
			req.Header.Set("session_id", header)
		}
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: "session_id", Value: cookie})
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := ask(consoleID, ""); st != http.StatusUnauthorized {
		t.Errorf("configuration API with the console cookie as the session_id header = %d, want 401", st)
	}
	if st := ask("", consoleID); st != http.StatusUnauthorized {
		t.Errorf("configuration API with the console cookie as the session_id cookie = %d, want 401", st)
	}
	if !w.signedIn() {
		t.Error("the console session ended")
	}

	// The other way: a configuration API login's session_id is no console cookie.
	req, _ := http.NewRequest("GET", gh.URL+"/api/authentication", nil)
	req.SetBasicAuth("admin", testserver.AdminPassword)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	configID := ""
	for _, ck := range resp.Cookies() {
		if ck.Name == "session_id" {
			configID = ck.Value
		}
	}
	if resp.StatusCode != http.StatusOK || configID == "" {
		t.Fatalf("configuration API login = %d, session_id %q", resp.StatusCode, configID)
	}
	if st := ask(configID, ""); st != http.StatusOK {
		t.Fatalf("configuration API with its own session_id = %d", st)
	}
	other := newWeb(t, gh.URL, roots(gh))
	other.client.Jar.SetCookies(base, []*http.Cookie{{Name: "gatehouse_console", Value: configID, Path: "/"}})
	if other.signedIn() {
		t.Error("a configuration API session_id signed the console in")
	}

	// A console session written under the configuration API's scope (as before the scopes were separated; migration
	// 00032 deletes such rows) is still refused by that API for its login method.
	var admin struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	gh.JSON("GET", "/local-user-store/api/v1/users?username=admin", gh.AdminToken(), nil, http.StatusOK, &admin)
	if err := gh.Server.Store().CreateConfigSession(context.Background(), time.Now(), "old-console-row", store.ConfigSession{
		PrincipalKind: auth.KindUser, PrincipalID: admin.Items[0].ID, Name: "admin", Method: "console"}); err != nil {
		t.Fatal(err)
	}
	if st := ask("old-console-row", ""); st != http.StatusUnauthorized {
		t.Errorf("configuration API with an old console row = %d, want 401", st)
	}
}
