package serviceapi_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/directory/ldaptest"
	"github.com/gatehouse-dev/gatehouse/internal/mfa"
	"github.com/gatehouse-dev/gatehouse/internal/mfa/radiustest"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// oauthAnswer is the token endpoint's answer, success or RFC 6749 error.
type oauthAnswer struct {
	AccessToken string `json:"access_token"`
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// passwordGrant logs in through the token endpoint with an optional otp field.
func passwordGrant(t *testing.T, gh *testserver.Instance, username, password, otp string) (int, oauthAnswer) {
	t.Helper()
	return passwordGrantFrom(t, gh, gh.Client, username, password, otp)
}

// passwordGrantFrom is passwordGrant through client c (bound to another loopback source address, so that the
// failures a test provokes on purpose do not reach the per-address limit).
func passwordGrantFrom(t *testing.T, gh *testserver.Instance, c *http.Client, username, password, otp string) (int, oauthAnswer) {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "client_id": {"gatehouse-cli"}, "username": {username}, "password": {password}}
	if otp != "" {
		form.Set("otp", otp)
	}
	resp, err := c.PostForm(gh.URL+"/auth/api/v1/oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var a oauthAnswer
	json.Unmarshal(b, &a)
	if a.Description == "" {
		a.Description = string(b)
	}
	return resp.StatusCode, a
}

type enrolment struct {
	URI    string `json:"otpauth_uri"`
	Secret string `json:"secret"`
}

func selfEnrol(t *testing.T, gh *testserver.Instance, username, password string, want int) enrolment {
	t.Helper()
	resp, err := gh.Client.PostForm(gh.URL+"/auth/api/v1/mfa/totp/enrol", url.Values{"username": {username}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("self-enrolment of %s: %d %s, want %d", username, resp.StatusCode, b, want)
	}
	var e enrolment
	json.Unmarshal(b, &e)
	return e
}

// codeAt is the TOTP code of an enrolment's secret d steps from now.
func codeAt(t *testing.T, e enrolment, d int) string {
	t.Helper()
	secret, err := mfa.DecodeSecret(e.Secret)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(e.URI)
	if err != nil || u.Query().Get("secret") != e.Secret {
		t.Fatalf("otpauth URI %q does not carry the secret", e.URI)
	}
	return mfa.Code(secret, time.Now().Add(time.Duration(d)*mfa.Period))
}

// configLoginOTP logs in to the configuration API with Basic and an optional {"otp"} body.
func configLoginOTP(t *testing.T, gh *testserver.Instance, c *http.Client, username, password, otp string) (int, string) {
	t.Helper()
	var body io.Reader
	if otp != "" {
		body = strings.NewReader(`{"otp":"` + otp + `"}`)
	}
	req, _ := http.NewRequest("GET", gh.URL+"/api/authentication", body)
	req.SetBasicAuth(username, password)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// setLocalMFA sets mfa_type (and any more connection fields) on the built-in LOCAL source.
func setLocalMFA(t *testing.T, gh *testserver.Instance, adm string, conn map[string]any) {
	t.Helper()
	conn["type"] = "LOCAL"
	gh.JSON("PUT", sourcesPath+"/local", adm, map[string]any{"name": "Local users", "enabled": true, "connection": conn}, http.StatusOK, nil)
}

// TestTOTPSecondFactor follows a local user through TOTP: refused before enrolment, self-enrolment with the
// password, login with a code through the token endpoint and the configuration API, replay refused in either,
// re-enrolment refused once confirmed, admin reset and admin enrolment; the secret is sealed at rest.
func TestTOTPSecondFactor(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	alice := gh.Create(usersPath, adm, map[string]any{"username": "alice", "password": "Alice-pass-1"})
	setLocalMFA(t, gh, adm, map[string]any{"mfa_type": "TOTP"})

	if st, a := passwordGrant(t, gh, "alice", "Alice-pass-1", ""); st != 401 || a.Error != "mfa_enrollment_required" {
		t.Fatalf("login before enrolment: %d %+v, want 401 mfa_enrollment_required", st, a)
	}
	gh.Create(usersPath, adm, map[string]any{"username": "bob", "password": "Bob-pass-12"})
	selfEnrol(t, gh, "bob", "wrong-password", http.StatusUnauthorized)
	enr := selfEnrol(t, gh, "alice", "Alice-pass-1", http.StatusCreated)
	if !strings.HasPrefix(enr.URI, "otpauth://totp/Gatehouse:alice?") {
		t.Fatalf("enrolment URI %q", enr.URI)
	}
	if st, a := passwordGrant(t, gh, "alice", "Alice-pass-1", ""); st != 401 || a.Error != "mfa_required" {
		t.Fatalf("login without a code: %d %+v, want 401 mfa_required", st, a)
	}
	wrong := "000000"
	if codeAt(t, enr, 0) == wrong || codeAt(t, enr, -1) == wrong || codeAt(t, enr, 1) == wrong {
		wrong = "999999"
	}
	if st, a := passwordGrant(t, gh, "alice", "Alice-pass-1", wrong); st != 401 || a.Error != "invalid_grant" {
		t.Fatalf("login with a wrong code: %d %+v", st, a)
	}
	if st, a := passwordGrant(t, gh, "alice", "wrong-password", codeAt(t, enr, 0)); st != 401 || a.Error != "invalid_grant" {
		t.Fatalf("right code, wrong password: %d %+v", st, a)
	}
	code := codeAt(t, enr, 0)
	if st, a := passwordGrant(t, gh, "alice", "Alice-pass-1", code); st != 200 || a.AccessToken == "" {
		t.Fatalf("login with the code: %d %+v", st, a)
	}
	if st, a := passwordGrant(t, gh, "alice", "Alice-pass-1", code); st != 401 || a.Error != "invalid_grant" {
		t.Fatalf("replayed code: %d %+v, want 401 invalid_grant", st, a)
	}
	c2 := fromAddr(gh, "127.0.0.2")
	if st, b := configLoginOTP(t, gh, c2, "alice", "Alice-pass-1", code); st != 401 {
		t.Fatalf("code replayed on the configuration API: %d %s", st, b)
	}
	if st, b := configLoginOTP(t, gh, c2, "alice", "Alice-pass-1", ""); st != 401 || !strings.Contains(b, "MfaRequired") {
		t.Fatalf("configuration login without a code: %d %s", st, b)
	}
	if st, b := configLoginOTP(t, gh, c2, "alice", "Alice-pass-1", codeAt(t, enr, 1)); st != 200 {
		t.Fatalf("configuration login with the next code: %d %s", st, b)
	}
	// Confirmed: a password alone cannot replace the factor.
	selfEnrol(t, gh, "alice", "Alice-pass-1", http.StatusConflict)
	var status map[string]any
	gh.JSON("GET", usersPath+"/"+alice+"/mfa", adm, nil, http.StatusOK, &status)
	if status["mfa_type"] != "TOTP" || status["enrolled"] != true || status["confirmed"] != true {
		t.Fatalf("mfa status: %v", status)
	}

	// The secret is in the data dir only sealed.
	raw, _ := mfa.DecodeSecret(enr.Secret)
	leakCheck(t, gh.Cfg.DataDir, enr.Secret, string(raw), base64.StdEncoding.EncodeToString(raw))

	// Reset: the old authenticator is forgotten, the user enrols again.
	gh.JSON("DELETE", usersPath+"/"+alice+"/mfa", adm, nil, http.StatusOK, nil)
	if st, a := passwordGrant(t, gh, "alice", "Alice-pass-1", codeAt(t, enr, 1)); st != 401 || a.Error != "mfa_enrollment_required" {
		t.Fatalf("login after reset: %d %+v", st, a)
	}
	var byAdmin enrolment
	gh.JSON("POST", usersPath+"/"+alice+"/mfa/totp", adm, nil, http.StatusCreated, &byAdmin)
	if byAdmin.Secret == enr.Secret {
		t.Fatal("admin enrolment reused the old secret")
	}
	if st, a := passwordGrant(t, gh, "alice", "Alice-pass-1", codeAt(t, byAdmin, 0)); st != 200 {
		t.Fatalf("login with the admin-enrolled authenticator: %d %+v", st, a)
	}

	// The admin is a local user too: the second factor applies to them as well.
	if st, a := passwordGrant(t, gh, "admin", testserver.AdminPassword, ""); st != 401 || a.Error != "mfa_enrollment_required" {
		t.Fatalf("admin login without a factor: %d %+v", st, a)
	}
	// Back to no second factor: the password alone works again.
	setLocalMFA(t, gh, adm, map[string]any{"mfa_type": "DISABLED"})
	if st, a := passwordGrant(t, gh, "alice", "Alice-pass-1", ""); st != 200 {
		t.Fatalf("login with mfa_type DISABLED: %d %+v", st, a)
	}
	gh.JSON("POST", usersPath+"/"+alice+"/mfa/totp", adm, nil, http.StatusConflict, nil)
}

// leakCheck fails if any file under dir holds one of the secrets in clear.
func leakCheck(t *testing.T, dir string, secrets ...string) {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		n++
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds a secret in clear", p)
			}
		}
		return nil
	})
	if n == 0 {
		t.Fatalf("no files under %s to check", dir)
	}
}

// TestRADIUSSecondFactor puts a directory user's second factor on a real FreeRADIUS: the LDAP bind checks the
// password, then the code goes to RADIUS in an Access-Request, through both APIs. The shared secret is write-only
// and sealed.
func TestRADIUSSecondFactor(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	ldap := ldaptest.Start(t)
	const shared = "radius-shared-Secret-9"
	rad := radiustest.Start(t, shared, map[string]string{"alice": "424242", "dana": "737373"})
	body := ldapSourceBody(ldap, "corp", ldaptest.ReaderPassword)
	conn := body["connection"].(map[string]any)
	conn["mfa_type"], conn["mfa_address"], conn["mfa_port"], conn["mfa_shared_secret"] = "RADIUS", rad.Address, rad.Port, shared
	id := gh.Create(sourcesPath, adm, body)
	synced(gh)
	src := getSource(t, gh, adm, id)
	if _, ok := src.Connection["mfa_shared_secret"]; ok {
		t.Fatalf("the RADIUS shared secret is shown: %v", src.Connection)
	}
	if src.Connection["mfa_type"] != "RADIUS" || src.Connection["mfa_port"] != float64(rad.Port) {
		t.Fatalf("mfa fields read back as %v", src.Connection)
	}

	if st, a := passwordGrant(t, gh, "alice", "alice-pass-1", ""); st != 401 || a.Error != "mfa_required" {
		t.Fatalf("no code: %d %+v", st, a)
	}
	if st, a := passwordGrant(t, gh, "alice", "alice-pass-1", "111111"); st != 401 || a.Error != "invalid_grant" {
		t.Fatalf("code RADIUS rejects: %d %+v", st, a)
	}
	c2, c3 := fromAddr(gh, "127.0.0.2"), fromAddr(gh, "127.0.0.3")
	if st, a := passwordGrantFrom(t, gh, c2, "alice", "wrong-pass", "424242"); st != 401 || a.Error != "invalid_grant" {
		t.Fatalf("right code, wrong password: %d %+v", st, a)
	}
	if st, a := passwordGrant(t, gh, "alice", "alice-pass-1", "424242"); st != 200 || a.AccessToken == "" {
		t.Fatalf("code RADIUS accepts: %d %+v", st, a)
	}
	if st, b := configLoginOTP(t, gh, c2, "alice", "alice-pass-1", "424242"); st != 200 {
		t.Fatalf("configuration login with the RADIUS code: %d %s", st, b)
	}
	if st, b := configLoginOTP(t, gh, c3, "alice", "alice-pass-1", "111111"); st != 401 {
		t.Fatalf("configuration login with a rejected code: %d %s", st, b)
	}
	// Local users are not affected by the directory's second factor.
	if st, _ := passwordGrant(t, gh, "admin", testserver.AdminPassword, ""); st != 200 {
		t.Fatalf("local admin login: %d", st)
	}
	// On the LOCAL source the same second factor applies to local users.
	gh.Create(usersPath, adm, map[string]any{"username": "dana", "password": "Dana-pass-12"})
	setLocalMFA(t, gh, adm, map[string]any{"mfa_type": "RADIUS", "mfa_address": rad.Address, "mfa_port": rad.Port, "mfa_shared_secret": shared})
	if st, a := passwordGrantFrom(t, gh, c3, "dana", "Dana-pass-12", ""); st != 401 || a.Error != "mfa_required" {
		t.Fatalf("local user without a RADIUS code: %d %+v", st, a)
	}
	if st, a := passwordGrantFrom(t, gh, c3, "dana", "Dana-pass-12", "737373"); st != 200 {
		t.Fatalf("local user with the RADIUS code: %d %+v", st, a)
	}
	setLocalMFA(t, gh, adm, map[string]any{})
	// Requiring a Message-Authenticator in the answers: Debian's FreeRADIUS 3.2.1 sends none, so even the right
	// code is an outage (503), never an accept; turned off again, the code is accepted.
	conn["mfa_require_message_authenticator"] = true
	gh.JSON("PUT", sourcesPath+"/"+id, adm, body, http.StatusOK, nil)
	if src := getSource(t, gh, adm, id); src.Connection["mfa_require_message_authenticator"] != true {
		t.Fatalf("mfa_require_message_authenticator reads back as %v", src.Connection["mfa_require_message_authenticator"])
	}
	if st, a := passwordGrant(t, gh, "alice", "alice-pass-1", "424242"); st != 503 || a.AccessToken != "" {
		t.Fatalf("an answer without Message-Authenticator when one is required: %d %+v, want 503", st, a)
	}
	delete(conn, "mfa_require_message_authenticator")
	gh.JSON("PUT", sourcesPath+"/"+id, adm, body, http.StatusOK, nil)
	if st, a := passwordGrant(t, gh, "alice", "alice-pass-1", "424242"); st != 200 || a.AccessToken == "" {
		t.Fatalf("the requirement turned off: %d %+v", st, a)
	}
	// A wrong shared secret is an outage (503), never an accept.
	conn["mfa_shared_secret"] = "not-the-shared-secret"
	gh.JSON("PUT", sourcesPath+"/"+id, adm, body, http.StatusOK, nil)
	if st, a := passwordGrant(t, gh, "alice", "alice-pass-1", "424242"); st != 503 || a.AccessToken != "" {
		t.Fatalf("wrong shared secret: %d %+v, want 503", st, a)
	}
	leakCheck(t, gh.Cfg.DataDir, shared, "not-the-shared-secret")
}

// TestMFAFieldsValidation: unknown mfa_type values and fields Gatehouse does not act on are refused naming the
// field; nothing is stored.
func TestMFAFieldsValidation(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	ldap := ldaptest.Start(t)
	cases := []struct {
		name      string
		edit      func(body, conn map[string]any)
		wantCode  string
		wantField string
	}{
		{"unknown mfa_type", func(_, c map[string]any) { c["mfa_type"] = "SMS" }, "BAD_REQUEST", "connection.mfa_type"},
		{"radius without address", func(_, c map[string]any) { c["mfa_type"] = "RADIUS"; c["mfa_shared_secret"] = "s" }, "BAD_REQUEST", "connection.mfa_address"},
		{"radius without secret", func(_, c map[string]any) { c["mfa_type"] = "RADIUS"; c["mfa_address"] = "127.0.0.1" }, "BAD_REQUEST", "connection.mfa_shared_secret"},
		{"radius address with totp", func(_, c map[string]any) { c["mfa_type"] = "TOTP"; c["mfa_address"] = "127.0.0.1" }, "NOT_SUPPORTED", "connection.mfa_address"},
		{"message authenticator with totp", func(_, c map[string]any) { c["mfa_type"] = "TOTP"; c["mfa_require_message_authenticator"] = true },
			"NOT_SUPPORTED", "connection.mfa_require_message_authenticator"},
		{"mfa_base_dn", func(_, c map[string]any) { c["mfa_base_dn"] = "dc=example,dc=org" }, "NOT_SUPPORTED", "connection.mfa_base_dn"},
		{"kerberos_ticket", func(_, c map[string]any) { c["kerberos_ticket"] = "ticket" }, "NOT_SUPPORTED", "connection.kerberos_ticket"},
		{"domain_controller_fqdn", func(_, c map[string]any) { c["domain_controller_fqdn"] = "dc.example.org" }, "NOT_SUPPORTED", "connection.domain_controller_fqdn"},
		{"domain_controller_port", func(_, c map[string]any) { c["domain_controller_port"] = 88 }, "NOT_SUPPORTED", "connection.domain_controller_port"},
		{"enable_user_authentication", func(_, c map[string]any) { c["enable_user_authentication"] = true }, "NOT_SUPPORTED", "connection.enable_user_authentication"},
		{"enable_machine_authentication", func(_, c map[string]any) { c["enable_machine_authentication"] = true }, "NOT_SUPPORTED", "connection.enable_machine_authentication"},
		{"oidc_enabled on LDAP", func(_, c map[string]any) { c["oidc_enabled"] = true }, "NOT_SUPPORTED", "connection.oidc_enabled"},
		{"another type's field", func(_, c map[string]any) { c["iam_access_key_id"] = "AKIA" }, "NOT_SUPPORTED", "connection.iam_access_key_id"},
		{"session_password_enabled", func(b, _ map[string]any) { b["session_password_enabled"] = true }, "NOT_SUPPORTED", "session_password_enabled"},
		{"child_session_auto_logout_delay", func(b, _ map[string]any) { b["child_session_auto_logout_delay"] = 900 }, "NOT_SUPPORTED", "child_session_auto_logout_delay"},
		{"session_password_policy", func(b, _ map[string]any) {
			b["session_password_policy"] = map[string]any{"password_min_length": 16}
		}, "NOT_SUPPORTED", "session_password_policy.password_min_length"},
		{"external_user_mapping", func(b, _ map[string]any) {
			b["external_user_mapping"] = []any{map[string]any{"source_id": "local", "source_search_field": "email"}}
		}, "NOT_SUPPORTED", "external_user_mapping"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := ldapSourceBody(ldap, "v-"+strings.ReplaceAll(tc.name, " ", "-"), ldaptest.ReaderPassword)
			tc.edit(body, body["connection"].(map[string]any))
			st, b := gh.Do("POST", sourcesPath, adm, body)
			var e struct {
				Code     string `json:"error_code"`
				Property string `json:"property"`
			}
			json.Unmarshal(b, &e)
			if st != 400 || e.Code != tc.wantCode || e.Property != tc.wantField {
				t.Fatalf("%d %s, want 400 %s naming %s", st, b, tc.wantCode, tc.wantField)
			}
		})
	}
	var list struct{ Count int }
	gh.JSON("GET", sourcesPath, adm, nil, http.StatusOK, &list)
	if list.Count != 1 {
		t.Fatalf("%d sources stored, want only LOCAL", list.Count)
	}
	// On the LOCAL source too, and an OIDC source leaves the second factor to its provider.
	st, b := gh.Do("PUT", sourcesPath+"/local", adm, map[string]any{"name": "Local users", "enabled": true,
		"connection": map[string]any{"type": "LOCAL", "mfa_type": "YUBIKEY"}})
	if st != 400 || !strings.Contains(string(b), "connection.mfa_type") {
		t.Fatalf("unknown mfa_type on LOCAL: %d %s", st, b)
	}
	st, b = gh.Do("POST", sourcesPath, adm, map[string]any{"name": "idp", "enabled": false, "connection": map[string]any{
		"type": "OIDC", "oidc_issuer": "https://idp.example.com", "oidc_client_id": "c", "mfa_type": "TOTP"}})
	if st != 400 || !strings.Contains(string(b), "NOT_SUPPORTED") || !strings.Contains(string(b), "connection.mfa_type") {
		t.Fatalf("mfa_type on an OIDC source: %d %s", st, b)
	}
}

// TestSecondFactorGuessingIsLimited: wrong second-factor codes count as failed logins, so guessing the six digits
// after a stolen password meets the login limiter (429) long before it could succeed.
func TestSecondFactorGuessingIsLimited(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	gh.Create(usersPath, adm, map[string]any{"username": "eve", "password": "Eve-pass-123"})
	setLocalMFA(t, gh, adm, map[string]any{"mfa_type": "TOTP"})
	enr := selfEnrol(t, gh, "eve", "Eve-pass-123", http.StatusCreated)
	valid := map[string]bool{codeAt(t, enr, -1): true, codeAt(t, enr, 0): true, codeAt(t, enr, 1): true}
	c := fromAddr(gh, "127.0.0.9")
	guess := 0
	for i := 0; ; i++ {
		if i == 20 {
			t.Fatal("20 wrong codes in a row were never rate limited")
		}
		code := ""
		for code == "" || valid[code] {
			code = strings.Repeat(string(rune('0'+guess%10)), 6)
			guess++
		}
		st, a := passwordGrantFrom(t, gh, c, "eve", "Eve-pass-123", code)
		if st == http.StatusTooManyRequests {
			break
		}
		if st != http.StatusUnauthorized || a.Error != "invalid_grant" {
			t.Fatalf("wrong code %d: %d %+v", i, st, a)
		}
	}
	if st, a := passwordGrantFrom(t, gh, c, "eve", "Eve-pass-123", codeAt(t, enr, 0)); st != http.StatusTooManyRequests || a.AccessToken != "" {
		t.Fatalf("the right code while limited: %d %+v, want 429", st, a)
	}
}
