package cli_test

import (
	"strings"
	"testing"
)

// TestHelpEverywhere checks that every client command answers --help with its usage and exits 0.
func TestHelpEverywhere(t *testing.T) {
	h := &harness{t: t}
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	cmds := [][]string{{"login"}, {"logout"}, {"whoami"}, {"env"}}
	for group, subs := range map[string][]string{
		"users":       {"list", "get", "create", "update", "delete", "roles", "set-roles", "set-password"},
		"roles":       {"list", "get", "create", "update", "delete", "members"},
		"api-clients": {"list", "get", "create", "update", "delete"},
		"targets":     {"list", "get", "create", "update", "delete", "search", "tags"},
		"credentials": {"list", "get", "create", "update", "delete", "secret", "rotate"},
	} {
		cmds = append(cmds, []string{group})
		for _, s := range subs {
			cmds = append(cmds, []string{group, s})
		}
	}
	for _, c := range cmds {
		t.Run(strings.Join(c, " "), func(t *testing.T) {
			h := h.sub(t)
			r := h.run("", append(c, "--help")...)
			if r.code != 0 || !strings.Contains(r.stdout, "Usage: gatehouse "+strings.Join(c, " ")) {
				t.Errorf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	h := &harness{t: t}
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"users", "frobnicate"}, 2, "unexpected argument frobnicate"},
		{[]string{"users", "get"}, 2, "expected \"<id-or-name>\""},
		{[]string{"users", "list", "-o", "yaml"}, 2, "--output must be one of"},
		{[]string{"credentials", "create"}, 2, "missing flags: --target"},
		{[]string{"credentials", "secret", "x", "--format", "pem"}, 2, "--format must be one of"},
		{[]string{"users", "list"}, 1, "not logged in"},
		{[]string{"env", "--credential", "x"}, 1, "not logged in"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			h := h.sub(t)
			h.fails(tc.code, []string{tc.want}, "", tc.args...)
		})
	}
}
