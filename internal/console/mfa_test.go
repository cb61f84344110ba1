package console_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/mfa"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestSignInWithTOTP: a user whose source asks for TOTP signs in to the console only with the password and a
// fresh code from the enrolled authenticator; no code, a wrong code and a replayed code are refused.
func TestSignInWithTOTP(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	newUser(t, gh, adm, "carol", "Carol-pass-12345")
	gh.JSON("PUT", "/role-store/api/v1/sources/local", adm, map[string]any{"name": "Local users", "enabled": true,
		"connection": map[string]any{"type": "LOCAL", "mfa_type": "TOTP"}}, http.StatusOK, nil)

	resp, err := gh.Client.PostForm(gh.URL+"/auth/api/v1/mfa/totp/enrol", url.Values{"username": {"carol"}, "password": {"Carol-pass-12345"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var enr struct{ Secret string }
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &enr) != nil {
		t.Fatalf("enrol: %d %s", resp.StatusCode, b)
	}
	secret, err := mfa.DecodeSecret(enr.Secret)
	if err != nil {
		t.Fatal(err)
	}
	code := mfa.Code(secret, time.Now())
	wrong := "000000"
	for _, d := range []time.Duration{-mfa.Period, 0, mfa.Period} {
		if mfa.Code(secret, time.Now().Add(d)) == wrong {
			wrong = "999999"
		}
	}

	w := newWeb(t, gh.URL, roots(gh))
	signIn := func(otp string) (int, string) {
		st, body, hdr := w.post("/login", url.Values{"csrf": {w.csrf("/login")}, "username": {"carol"}, "password": {"Carol-pass-12345"}, "otp": {otp}}, nil)
		return st, hdr.Get("Location") + " " + string(body)
	}
	for _, c := range []struct{ name, otp string }{{"no code", ""}, {"a wrong code", wrong}} {
		if st, out := signIn(c.otp); st == http.StatusSeeOther || w.signedIn() {
			t.Fatalf("signed in with %s: %d %.200s", c.name, st, out)
		}
	}
	if st, out := signIn(code); st != http.StatusSeeOther || !strings.HasPrefix(out, "/access") || !w.signedIn() {
		t.Fatalf("sign in with the code: %d %.300s", st, out)
	}

	other := newWeb(t, gh.URL, roots(gh))
	st, body, _ := other.post("/login", url.Values{"csrf": {other.csrf("/login")}, "username": {"carol"}, "password": {"Carol-pass-12345"}, "otp": {code}}, nil)
	if st == http.StatusSeeOther || other.signedIn() {
		t.Fatalf("a replayed code signed in: %d %.200s", st, body)
	}
}
