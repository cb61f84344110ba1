package cli_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHosts(t *testing.T) {
	h := newHarness(t)
	h.loginAdmin()
	id := strings.TrimSpace(h.ok("", "hosts", "create", "--common-name", "web-1.example.com", "--comment", "front end",
		"--address", "10.0.0.5,WEB-1.example.com", "--service", "ssh", "--service", "https:8443@web-1.example.com", "--tag", "prod,web"))

	yamlFile := filepath.Join(t.TempDir(), "db.yaml")
	os.WriteFile(yamlFile, []byte(`common_name: db-1.example.com
addresses: [10.0.0.9, "2001:db8::9"]
services:
  - {service: db, port: 5432}
tags: [prod]
organization: Example
source: cmdb
`), 0o600)
	h.ok("", "hosts", "create", "-f", yamlFile, "--zone", "eu-north-1")

	t.Run("get", func(t *testing.T) {
		h := h.sub(t)
		var host map[string]any
		h.jsonOut(&host, "hosts", "get", "web-1.example.com")
		if host["id"] != id {
			t.Errorf("get by name found %v, want %s", host["id"], id)
		}
		if d := cmp.Diff([]any{"10.0.0.5", "web-1.example.com"}, host["addresses"]); d != "" {
			t.Errorf("addresses (-want +got):\n%s", d)
		}
		want := []any{
			map[string]any{"service": "SSH", "address": "10.0.0.5", "port": 22.0, "source": "local"},
			map[string]any{"service": "HTTPS", "address": "web-1.example.com", "port": 8443.0, "source": "local"},
		}
		if d := cmp.Diff(want, host["services"]); d != "" {
			t.Errorf("services (-want +got):\n%s", d)
		}
		var db map[string]any
		h.jsonOut(&db, "hosts", "get", "db-1.example.com")
		if db["organization"] != "Example" || db["zone"] != "eu-north-1" || db["source"] != "cmdb" {
			t.Errorf("host from a file with a flag laid over it: %v", db)
		}
		if out := h.ok("", "hosts", "get", id); !strings.Contains(out, "front end") {
			t.Errorf("table get:\n%s", out)
		}
	})
	t.Run("list", func(t *testing.T) {
		h := h.sub(t)
		out := h.ok("", "hosts", "list")
		if d := cmp.Diff([]string{"db-1.example.com", "web-1.example.com"}, column(t, out, "COMMON NAME")); d != "" {
			t.Errorf("COMMON NAME column (-want +got):\n%s\n%s", d, out)
		}
		if d := cmp.Diff([]string{"DB", "SSH,HTTPS"}, column(t, out, "SERVICES")); d != "" {
			t.Errorf("SERVICES column (-want +got):\n%s\n%s", d, out)
		}
		if got := names(h.listJSON("hosts", "list", "--sort-dir", "desc"), "common_name"); !slices.Equal(got, []string{"web-1.example.com", "db-1.example.com"}) {
			t.Errorf("list desc = %v", got)
		}
		if got := names(h.listJSON("hosts", "list", "--filter", "2001:db8"), "common_name"); !slices.Equal(got, []string{"db-1.example.com"}) {
			t.Errorf("list --filter 2001:db8 = %v", got)
		}
	})
	t.Run("search", func(t *testing.T) {
		h := h.sub(t)
		for _, c := range []struct {
			args []string
			want []string
		}{
			{[]string{"front", "web"}, []string{"web-1.example.com"}},
			{[]string{"--tag", "prod"}, []string{"db-1.example.com", "web-1.example.com"}},
			{[]string{"--tag", "prod,web"}, []string{"web-1.example.com"}},
			{[]string{"--source", "cmdb"}, []string{"db-1.example.com"}},
			{[]string{"nothing-matches-this"}, nil},
		} {
			got := names(h.listJSON(append([]string{"hosts", "search"}, c.args...)...), "common_name")
			if !slices.Equal(got, c.want) {
				t.Errorf("hosts search %v = %v, want %v", c.args, got, c.want)
			}
		}
	})
	t.Run("update", func(t *testing.T) {
		h := h.sub(t)
		var host map[string]any
		h.jsonOut(&host, "hosts", "update", "web-1.example.com", "--comment", "changed", "--tag", "")
		if host["comment"] != "changed" || !cmp.Equal(host["tags"], []any{}) || len(host["services"].([]any)) != 2 {
			t.Errorf("updated host = %v", host)
		}
		h.fails(1, []string{"nothing to change"}, "", "hosts", "update", "web-1.example.com")
	})
	t.Run("errors", func(t *testing.T) {
		h := h.sub(t)
		h.fails(1, []string{"property: services[0].service"}, "", "hosts", "create", "--common-name", "x", "--address", "10.0.0.1", "--service", "telnet")
		h.fails(1, []string{"port \"abc\" is not a number"}, "", "hosts", "create", "--common-name", "x", "--service", "ssh:abc")
		h.fails(1, []string{"property: addresses[0]"}, "", "hosts", "create", "--common-name", "x", "--address", "10.0.0.1:22")
		h.fails(1, []string{"CONFLICT 409", "property: common_name"}, "", "hosts", "create", "--common-name", "DB-1.example.com")
		h.fails(1, []string{"no host with id or common_name"}, "", "hosts", "get", "no-such-host")
	})
	t.Run("delete", func(t *testing.T) {
		h := h.sub(t)
		h.ok("", "hosts", "delete", "db-1.example.com")
		if got := names(h.listJSON("hosts", "list"), "common_name"); !slices.Equal(got, []string{"web-1.example.com"}) {
			t.Errorf("after delete = %v", got)
		}
	})
}

func TestHostsHelp(t *testing.T) {
	h := &harness{t: t}
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	for _, sub := range []string{"", "list", "get", "create", "update", "delete", "search"} {
		args := strings.Fields("hosts " + sub)
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := h.sub(t).run("", append(args, "--help")...)
			if r.code != 0 || !strings.Contains(r.stdout, "Usage: gatehouse "+strings.Join(args, " ")) {
				t.Errorf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
		})
	}
	r := h.run("", "hosts", "create", "--help")
	if !strings.Contains(r.stdout, "services:") || !strings.Contains(r.stdout, "--service=SERVICE[:PORT][@ADDR]") {
		t.Errorf("hosts create --help does not show the file shape and the service flag:\n%s", r.stdout)
	}
}
