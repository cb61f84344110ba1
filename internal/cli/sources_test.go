package cli_test

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// bindSecret is planted as an LDAP bind password; no CLI output may show it.
const bindSecret = "bind-secret-planted-91ab"

// closedPort returns a loopback port nothing listens on, so a sync against it fails fast.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	return port
}

func TestSources(t *testing.T) {
	h := newHarness(t)
	h.loginAdmin()
	pwFile := filepath.Join(t.TempDir(), "bind")
	os.WriteFile(pwFile, []byte(bindSecret+"\n"), 0o600)
	port := closedPort(t)

	r := h.run("", "sources", "create", "--name", "corp", "--type", "ldap", "--address", "127.0.0.1", "--port", port,
		"--ldap-base", "dc=example,dc=com", "--ldap-bind-dn", "cn=admin,dc=example,dc=com", "--ldap-bind-password-file", pwFile,
		"--ldap-user-dn-pattern", "uid={0},ou=people,dc=example,dc=com", "--username-pattern", "*@example.com", "--ttl", "3600")
	if r.code != 0 {
		t.Fatalf("sources create: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)

	t.Run("list and get never show the secret", func(t *testing.T) {
		h := h.sub(t)
		out := h.ok("", "sources", "list")
		if got := column(t, out, "NAME"); !slices.Contains(got, "corp") {
			t.Errorf("list NAME column %v lacks corp:\n%s", got, out)
		}
		var src map[string]any
		h.jsonOut(&src, "sources", "get", "corp")
		conn, _ := src["connection"].(map[string]any)
		if src["id"] != id || src["enabled"] != true || conn["type"] != "LDAP" || conn["address"] != "127.0.0.1" {
			t.Errorf("source = %v", src)
		}
		for _, args := range [][]string{{"sources", "get", "corp"}, {"sources", "get", "corp", "-o", "json"}, {"sources", "list", "-o", "json"}} {
			if out := h.ok("", args...); strings.Contains(out, bindSecret) {
				t.Errorf("gatehouse %s shows the bind password:\n%s", strings.Join(args, " "), out)
			}
		}
	})
	t.Run("refresh and status", func(t *testing.T) {
		h := h.sub(t)
		h.ok("", "sources", "refresh", "corp")
		var status string
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			items := h.listJSON("sources", "status", "corp")
			if len(items) != 1 {
				t.Fatalf("status corp: %v", items)
			}
			if status, _ = items[0]["status_code"].(string); status != "PENDING" && status != "" {
				break
			}
		}
		if status == "OK" || status == "PENDING" {
			t.Fatalf("a sync against a closed port ended in %q", status)
		}
		out := h.ok("", "sources", "status")
		if !strings.Contains(out, status) || !strings.Contains(out, "corp") {
			t.Errorf("status table lacks corp's %s:\n%s", status, out)
		}
	})
	t.Run("update keeps the secret and the rest", func(t *testing.T) {
		h := h.sub(t)
		var src map[string]any
		h.jsonOut(&src, "sources", "update", "corp", "--comment", "changed", "--ldap-base", "dc=corp,dc=example,dc=com")
		conn, _ := src["connection"].(map[string]any)
		if src["comment"] != "changed" || conn["ldap_base"] != "dc=corp,dc=example,dc=com" || conn["address"] != "127.0.0.1" || src["ttl"] != 3600.0 {
			t.Errorf("updated source = %v", src)
		}
		h.fails(1, []string{"nothing to change"}, "", "sources", "update", "corp")
	})
	t.Run("errors", func(t *testing.T) {
		h := h.sub(t)
		h.fails(1, []string{"property: connection"}, "", "sources", "create", "--name", "bad", "--type", "LDAP")
		h.fails(1, []string{"no source with id or name"}, "", "sources", "refresh", "no-such-source")
	})
	t.Run("delete", func(t *testing.T) {
		h := h.sub(t)
		h.ok("", "sources", "delete", "corp")
		if got := names(h.listJSON("sources", "list"), "name"); slices.Contains(got, "corp") {
			t.Errorf("after delete = %v", got)
		}
	})
}
