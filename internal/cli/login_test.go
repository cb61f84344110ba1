package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

func TestLoginCachesSessionPrivately(t *testing.T) {
	h := newHarness(t)
	h.loginAdmin()

	dir, err := os.Stat(h.cfgDir)
	if err != nil {
		t.Fatal(err)
	}
	if dir.Mode().Perm() != 0o700 {
		t.Errorf("config dir mode %o, want 700", dir.Mode().Perm())
	}
	f, err := os.Stat(filepath.Join(h.cfgDir, "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Mode().Perm() != 0o600 {
		t.Errorf("credentials.json mode %o, want 600", f.Mode().Perm())
	}
	s := h.session()
	if s["server"] != h.srv.URL || s["ca_file"] != h.caFile || s["username"] != "admin" {
		t.Errorf("session = %v, want server %s, ca_file %s, username admin", s, h.srv.URL, h.caFile)
	}
	for _, k := range []string{"access_token", "refresh_token", "expiry"} {
		if v, _ := s[k].(string); v == "" {
			t.Errorf("session has no %s: %v", k, s)
		}
	}
	exp, err := time.Parse(time.RFC3339Nano, s["expiry"].(string))
	if err != nil || time.Until(exp) < 20*time.Minute || time.Until(exp) > 31*time.Minute {
		t.Errorf("expiry %v is not about the server's 30m token TTL from now (err %v)", s["expiry"], err)
	}
	out := h.ok("", "whoami")
	if !strings.Contains(out, "USERNAME:") || !strings.Contains(out, "admin") || !strings.Contains(out, h.srv.URL) {
		t.Errorf("whoami:\n%s", out)
	}

	h.ok("", "logout")
	if _, err := os.Stat(filepath.Join(h.cfgDir, "credentials.json")); !os.IsNotExist(err) {
		t.Errorf("credentials.json still there after logout: %v", err)
	}
	h.fails(1, []string{"not logged in", "gatehouse login"}, "", "users", "list")
}

func TestLoginPasswordSources(t *testing.T) {
	h := newHarness(t)
	t.Run("env", func(t *testing.T) {
		h := h.sub(t)
		t.Setenv("GATEHOUSE_PASSWORD", testserver.AdminPassword)
		h.ok("", "login", "--server", h.srv.URL, "-u", "admin", "--ca-file", h.caFile)
	})
	t.Run("no password and no terminal", func(t *testing.T) {
		h := h.sub(t)
		h.fails(1, []string{"--password-stdin", "GATEHOUSE_PASSWORD"}, "", "login", "--server", h.srv.URL, "-u", "admin", "--ca-file", h.caFile)
	})
	t.Run("no username and no terminal", func(t *testing.T) {
		h := h.sub(t)
		h.fails(1, []string{"--username is required"}, "x\n", "login", "--server", h.srv.URL, "--password-stdin", "--ca-file", h.caFile)
	})
}

func TestLoginFailures(t *testing.T) {
	h := newHarness(t)
	url := h.srv.URL
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  []string
	}{
		{"wrong password", "not-the-password\n", []string{"--username", "admin", "--password-stdin", "--ca-file", h.caFile}, 1,
			[]string{"invalid_grant", "invalid credentials", "401"}},
		{"untrusted certificate", testserver.AdminPassword + "\n", []string{"--username", "admin", "--password-stdin"}, 1,
			[]string{"certificate", "--ca-file", "--insecure"}},
		{"both trust flags", testserver.AdminPassword + "\n", []string{"--username", "admin", "--password-stdin", "--ca-file", h.caFile, "--insecure"}, 2,
			[]string{"--insecure"}},
		{"plain http", testserver.AdminPassword + "\n", []string{"--username", "admin", "--password-stdin"}, 1,
			[]string{"https://"}},
		{"missing ca file", testserver.AdminPassword + "\n", []string{"--username", "admin", "--password-stdin", "--ca-file", "/nonexistent/ca.pem"}, 2,
			[]string{"/nonexistent/ca.pem"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := h.sub(t)
			server := url
			if tc.name == "plain http" {
				server = strings.Replace(url, "https://", "http://", 1)
			}
			h.fails(tc.code, tc.want, tc.stdin, append([]string{"login", "--server", server}, tc.args...)...)
			if _, err := os.Stat(filepath.Join(h.cfgDir, "credentials.json")); !os.IsNotExist(err) {
				t.Errorf("a failed login left a session file: %v", err)
			}
		})
	}
}

func TestLoginInsecure(t *testing.T) {
	h := newHarness(t)
	r := h.run(testserver.AdminPassword+"\n", "login", "--server", strings.TrimPrefix(h.srv.URL, "https://"), "-u", "admin", "--password-stdin", "--insecure")
	if r.code != 0 {
		t.Fatalf("login --insecure: exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "not verified") {
		t.Errorf("login --insecure gave no warning: %q", r.stderr)
	}
	if s := h.session(); s["insecure"] != true || s["server"] != h.srv.URL {
		t.Errorf("session = %v, want insecure and server %s", s, h.srv.URL)
	}
	h.ok("", "users", "list")
}

// TestTokenRefresh forces the cached token to look expired (the server's minimum TTL is a minute, too long to wait)
// and checks that the next command refreshes it and saves the new tokens.
func TestTokenRefresh(t *testing.T) {
	h := newHarness(t)
	h.loginAdmin()
	before := h.session()

	t.Run("expired", func(t *testing.T) {
		h := h.sub(t)
		s := h.session()
		s["expiry"] = time.Now().Add(-time.Minute).Format(time.RFC3339Nano)
		h.writeSession(s)
		h.ok("", "users", "list")
		after := h.session()
		if after["access_token"] == before["access_token"] || after["refresh_token"] == before["refresh_token"] {
			t.Errorf("tokens were not refreshed")
		}
		if exp, _ := time.Parse(time.RFC3339Nano, after["expiry"].(string)); time.Until(exp) < 20*time.Minute {
			t.Errorf("refreshed expiry %v is not in the future", after["expiry"])
		}
		if f, err := os.Stat(filepath.Join(h.cfgDir, "credentials.json")); err != nil || f.Mode().Perm() != 0o600 {
			t.Errorf("credentials.json after refresh: %v, %v", f.Mode(), err)
		}
	})
	t.Run("rejected token", func(t *testing.T) {
		h := h.sub(t)
		// A token the server refuses (revoked, or signed with a key it no longer has) is refreshed once.
		s := h.session()
		s["access_token"] = "garbage"
		h.writeSession(s)
		h.ok("", "roles", "list")
		if h.session()["access_token"] == "garbage" {
			t.Errorf("the refused token was kept")
		}
	})
	t.Run("refresh token gone", func(t *testing.T) {
		h := h.sub(t)
		s := h.session()
		s["expiry"] = time.Now().Add(-time.Minute).Format(time.RFC3339Nano)
		s["refresh_token"] = "not-a-refresh-token"
		h.writeSession(s)
		h.fails(1, []string{"session has expired", "gatehouse login"}, "", "users", "list")
	})
}
