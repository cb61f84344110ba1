package cli_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestUsers(t *testing.T) {
	h := newHarness(t)
	h.loginAdmin()
	h.ok("", "roles", "create", "--name", "readers", "--permission", "users-view")

	id := strings.TrimSpace(h.ok("Alice-pass-123\n", "users", "create", "--username", "alice", "--email", "alice@example.com",
		"--full-name", "Alice Example", "--role", "readers", "--password-stdin"))
	if id == "" || strings.ContainsAny(id, " \n") {
		t.Fatalf("create printed %q, want the id alone", id)
	}

	t.Run("list table", func(t *testing.T) {
		h := h.sub(t)
		out := h.ok("", "users", "list")
		if got := column(t, out, "USERNAME"); !slices.Contains(got, "alice") || !slices.Contains(got, "admin") {
			t.Errorf("USERNAME column = %v\n%s", got, out)
		}
		if got := column(t, out, "ID"); !slices.Contains(got, id) {
			t.Errorf("ID column = %v, want %s", got, id)
		}
	})
	t.Run("list json", func(t *testing.T) {
		h := h.sub(t)
		items := h.listJSON("users", "list", "--filter", "ali")
		if diff := cmp.Diff([]string{"alice"}, names(items, "username")); diff != "" {
			t.Errorf("filtered list (-want +got):\n%s", diff)
		}
	})
	t.Run("get by name and id", func(t *testing.T) {
		h := h.sub(t)
		var byName, byID map[string]any
		h.jsonOut(&byName, "users", "get", "alice")
		h.jsonOut(&byID, "users", "get", id)
		if diff := cmp.Diff(byID, byName); diff != "" {
			t.Errorf("get by name differs from get by id:\n%s", diff)
		}
		if byID["email"] != "alice@example.com" || byID["full_name"] != "Alice Example" {
			t.Errorf("user = %v", byID)
		}
		out := h.ok("", "users", "get", "alice")
		if !strings.Contains(out, "EMAIL:") || !strings.Contains(out, "alice@example.com") {
			t.Errorf("table get:\n%s", out)
		}
	})
	t.Run("roles granted at create", func(t *testing.T) {
		h := h.sub(t)
		if got := names(h.listJSON("users", "roles", "alice"), "name"); !slices.Equal(got, []string{"readers"}) {
			t.Errorf("roles = %v, want [readers]", got)
		}
	})
	t.Run("update", func(t *testing.T) {
		h := h.sub(t)
		var u map[string]any
		h.jsonOut(&u, "users", "update", "alice", "--email", "a@example.org", "--no-enabled")
		if u["email"] != "a@example.org" || u["enabled"] != false || u["full_name"] != "Alice Example" {
			t.Errorf("updated user = %v", u)
		}
		h.ok("", "users", "update", id, "--enabled")
	})
	t.Run("update from yaml file", func(t *testing.T) {
		h := h.sub(t)
		f := filepath.Join(t.TempDir(), "u.yaml")
		os.WriteFile(f, []byte("full_name: Alice Q. Example\n"), 0o600)
		var u map[string]any
		h.jsonOut(&u, "users", "update", "alice", "-f", f)
		if u["full_name"] != "Alice Q. Example" || u["email"] != "a@example.org" {
			t.Errorf("updated user = %v", u)
		}
	})
	t.Run("set-roles", func(t *testing.T) {
		h := h.sub(t)
		h.ok("", "roles", "create", "--name", "writers", "--permission", "users-manage")
		h.ok("", "users", "set-roles", "alice", "readers", "writers")
		if got := names(h.listJSON("users", "roles", "alice"), "name"); !slices.Equal(got, []string{"readers", "writers"}) {
			t.Errorf("roles = %v", got)
		}
		h.ok("", "users", "set-roles", "alice")
		if got := h.listJSON("users", "roles", "alice"); len(got) != 0 {
			t.Errorf("roles after clearing = %v", got)
		}
		h.fails(1, []string{`no role with id or name "nope"`}, "", "users", "set-roles", "alice", "nope")
	})
	t.Run("set-password", func(t *testing.T) {
		h := h.sub(t)
		h.ok("New-alice-pass-9\n", "users", "set-password", "alice", "--password-stdin")
		h.srv.Token("alice", "New-alice-pass-9") // fails the test if the password did not change
		h.fails(1, []string{"password must be 8 to 1024 bytes", "property: password", "400"}, "short\n",
			"users", "set-password", "alice", "--password-stdin")
	})
	t.Run("create errors", func(t *testing.T) {
		h := h.sub(t)
		h.fails(1, []string{"already exists", "CONFLICT 409"}, "Another-pass-1\n", "users", "create", "--username", "alice", "--password-stdin")
		h.fails(1, []string{"email must be an address", "property: email"}, "Another-pass-1\n",
			"users", "create", "--username", "bob", "--email", "nope", "--password-stdin")
		h.fails(1, []string{"nothing to change"}, "", "users", "update", "alice")
	})
	t.Run("delete", func(t *testing.T) {
		h := h.sub(t)
		if out := h.ok("", "users", "delete", "alice"); !strings.Contains(out, id) {
			t.Errorf("delete printed %q", out)
		}
		h.fails(1, []string{`no user with id or username "alice"`}, "", "users", "get", "alice")
	})
}

func TestRoles(t *testing.T) {
	h := newHarness(t)
	h.loginAdmin()
	id := strings.TrimSpace(h.ok("", "roles", "create", "--name", "ops", "--comment", "operators", "--permission", "api-targets-view,audit-view"))

	var r map[string]any
	h.jsonOut(&r, "roles", "get", "ops")
	if r["id"] != id || r["comment"] != "operators" {
		t.Errorf("role = %v", r)
	}
	if diff := cmp.Diff([]any{"api-targets-view", "audit-view"}, r["permissions"]); diff != "" {
		t.Errorf("permissions (-want +got):\n%s", diff)
	}
	out := h.ok("", "roles", "list")
	if got := column(t, out, "NAME"); !slices.Contains(got, "ops") || !slices.Contains(got, "superuser") {
		t.Errorf("NAME column = %v\n%s", got, out)
	}

	var upd map[string]any
	h.jsonOut(&upd, "roles", "update", "ops", "--permission", "audit-view", "--comment", "")
	if diff := cmp.Diff([]any{"audit-view"}, upd["permissions"]); diff != "" || upd["comment"] != nil {
		t.Errorf("updated role = %v", upd)
	}

	h.ok("Bob-pass-1234\n", "users", "create", "--username", "bob", "--role", "ops", "--password-stdin")
	members := h.listJSON("roles", "members", "ops")
	if diff := cmp.Diff([]string{"bob"}, names(members, "name")); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	if out := h.ok("", "roles", "members", id); column(t, out, "TYPE")[0] != "user" {
		t.Errorf("members table:\n%s", out)
	}

	h.fails(1, []string{"unknown permission fly", "property: permissions[0]", "BAD_REQUEST 400"}, "",
		"roles", "create", "--name", "bad", "--permission", "fly")
	h.fails(1, []string{"already exists", "property: name"}, "", "roles", "create", "--name", "ops")

	f := filepath.Join(t.TempDir(), "role.json")
	os.WriteFile(f, []byte(`{"name":"from-file","permissions":["users-view"]}`), 0o600)
	var created struct{ ID string }
	h.jsonOut(&created, "roles", "create", "-f", f, "--comment", "flag wins")
	var fromFile map[string]any
	h.jsonOut(&fromFile, "roles", "get", created.ID)
	if fromFile["name"] != "from-file" || fromFile["comment"] != "flag wins" {
		t.Errorf("role from file = %v", fromFile)
	}

	h.ok("", "roles", "delete", "ops")
	h.fails(1, []string{"no role"}, "", "roles", "get", id)
}

func TestAPIClients(t *testing.T) {
	h := newHarness(t)
	h.loginAdmin()
	h.ok("", "roles", "create", "--name", "automation", "--permission", "api-targets-view")
	id := strings.TrimSpace(h.ok("", "api-clients", "create", "--name", "ci", "--role", "automation"))

	var c map[string]any
	h.jsonOut(&c, "api-clients", "get", "ci")
	for _, k := range []string{"secret", "oauth_client_id", "oauth_client_secret"} {
		if s, _ := c[k].(string); s == "" {
			t.Errorf("api client has no %s: %v", k, c)
		}
	}
	if c["id"] != id {
		t.Errorf("id = %v, want %s", c["id"], id)
	}
	out := h.ok("", "api-clients", "list")
	if got := column(t, out, "ROLES"); !slices.Equal(got, []string{"automation"}) {
		t.Errorf("ROLES column = %v\n%s", got, out)
	}
	var upd map[string]any
	h.jsonOut(&upd, "api-clients", "update", "ci", "--name", "ci-bot", "--role", "")
	if upd["name"] != "ci-bot" || len(upd["roles"].([]any)) != 0 {
		t.Errorf("updated = %v", upd)
	}
	h.ok("", "api-clients", "delete", "ci-bot")
	if items := h.listJSON("api-clients", "list"); len(items) != 0 {
		t.Errorf("api clients after delete = %v", items)
	}
}
