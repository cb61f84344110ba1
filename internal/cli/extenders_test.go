package cli_test

import (
	"strings"
	"testing"
)

func TestExtenders(t *testing.T) {
	h := newHarness(t)
	h.loginAdmin()
	var created struct{ ID, Token string }
	h.jsonOut(&created, "extenders", "create", "--name", "site-a-1", "--prefix", "site-a")
	if created.ID == "" || !strings.HasPrefix(created.Token, "gx_") {
		t.Fatalf("create: %+v", created)
	}
	out := h.ok("", "extenders", "list")
	if !strings.Contains(out, "site-a-1") || !strings.Contains(out, "PREFIX") || strings.Contains(out, created.Token) {
		t.Fatalf("list:\n%s", out)
	}
	var rotated struct{ ID, Token string }
	h.jsonOut(&rotated, "extenders", "token", "site-a-1")
	if rotated.ID != created.ID || rotated.Token == "" || rotated.Token == created.Token {
		t.Fatalf("token: %+v after %+v", rotated, created)
	}
	if out := h.ok("", "extenders", "token", "site-a-1"); !strings.Contains(out, "token: gx_") {
		t.Fatalf("token in table mode:\n%s", out)
	}
	h.ok("", "extenders", "delete", "site-a-1")
	if out := h.ok("", "extenders", "list"); strings.Contains(out, "site-a-1") {
		t.Fatalf("deleted extender still listed:\n%s", out)
	}
}
