package cli_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/mfa"
)

var otpauthURI = regexp.MustCompile(`otpauth://totp/\S+`)

func codeFromURI(t *testing.T, uri string, steps int) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := mfa.DecodeSecret(u.Query().Get("secret"))
	if err != nil {
		t.Fatalf("secret of %s: %v", uri, err)
	}
	return mfa.Code(secret, time.Now().Add(time.Duration(steps)*mfa.Period))
}

// TestLoginTOTP runs `gatehouse login` against a source with mfa_type TOTP the way a script does: refused with a
// hint, enrolment with --enrol-totp printing the otpauth:// URI, then --otp and GATEHOUSE_OTP. The admin commands
// enrol, show and reset a user's authenticator.
func TestLoginTOTP(t *testing.T) {
	h := newHarness(t)
	h.loginAdmin()
	adm := h.srv.AdminToken()
	h.srv.Create("/local-user-store/api/v1/users", adm, map[string]any{"username": "alice", "password": "Alice-pass-1"})
	h.srv.Create("/local-user-store/api/v1/users", adm, map[string]any{"username": "bob", "password": "Bob-pass-12"})
	h.ok("", "sources", "update", "local", "--mfa-type", "totp")
	var local map[string]any
	h.jsonOut(&local, "sources", "get", "local")
	if c, _ := local["connection"].(map[string]any); c["mfa_type"] != "TOTP" {
		t.Fatalf("LOCAL source after --mfa-type totp: %v", local)
	}

	// Admin commands, with the admin's session from before the change.
	var enr map[string]string
	h.jsonOut(&enr, "users", "enrol-totp", "bob")
	if !strings.HasPrefix(enr["otpauth_uri"], "otpauth://totp/Gatehouse:bob?") || enr["secret"] == "" {
		t.Fatalf("enrol-totp: %v", enr)
	}
	var st map[string]any
	h.jsonOut(&st, "users", "mfa", "bob")
	if st["mfa_type"] != "TOTP" || st["enrolled"] != true || st["confirmed"] != false {
		t.Fatalf("users mfa after enrolment: %v", st)
	}
	h.ok("", "users", "reset-mfa", "bob")
	h.jsonOut(&st, "users", "mfa", "bob")
	if st["enrolled"] != false {
		t.Fatalf("users mfa after reset: %v", st)
	}

	login := []string{"login", "--server", h.srv.URL, "-u", "alice", "--password-stdin", "--ca-file", h.caFile}
	h.fails(1, []string{"TOTP authenticator", "--enrol-totp"}, "Alice-pass-1\n", login...)
	r := h.fails(1, []string{"--otp"}, "Alice-pass-1\n", append(login, "--enrol-totp")...)
	uri := otpauthURI.FindString(r.stdout)
	if uri == "" {
		t.Fatalf("--enrol-totp printed no otpauth URI:\n%s", r.stdout)
	}
	h.fails(1, []string{"a second-factor code is required", "--otp"}, "Alice-pass-1\n", login...)
	h.fails(1, []string{"invalid_grant"}, "Alice-pass-1\n", append(login, "--otp", "12345")...)
	h.ok("Alice-pass-1\n", append(login, "--otp", codeFromURI(t, uri, 0))...)
	if s := h.session(); s["username"] != "alice" {
		t.Fatalf("session after the TOTP login: %v", s)
	}
	var me map[string]any
	h.jsonOut(&me, "whoami")
	if me["username"] != "alice" {
		t.Fatalf("whoami: %v", me)
	}
	// The environment works for scripts; the same code twice does not.
	t.Setenv("GATEHOUSE_OTP", codeFromURI(t, uri, 1))
	h.ok("Alice-pass-1\n", login...)
	h.fails(1, []string{"invalid_grant"}, "Alice-pass-1\n", login...)
}
