package cli_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestRoleRequests(t *testing.T) {
	h := newHarness(t)
	adm := h.srv.AdminToken()
	mk := func(path string, body map[string]any) string { return h.srv.Create(path, adm, body) }
	ops := mk("/role-store/api/v1/roles", map[string]any{"name": "jit-ops", "permissions": []string{}})
	devs := mk("/role-store/api/v1/roles", map[string]any{"name": "jit-devs", "permissions": []string{"workflows-requests"}})
	leads := mk("/role-store/api/v1/roles", map[string]any{"name": "jit-leads", "permissions": []string{}})
	for name, role := range map[string]string{"alice": devs, "bob": leads} {
		id := mk("/local-user-store/api/v1/users", map[string]any{"username": name, "password": "Cli-pass-1234"})
		h.srv.JSON("PUT", "/role-store/api/v1/users/"+id+"/roles", adm, []map[string]string{{"id": role}}, http.StatusOK, nil)
	}
	mk("/workflow-engine/api/v1/workflows", map[string]any{
		"name": "ops on call", "grant_types": []string{"TIME_RESTRICTED", "FLOATING"}, "max_time_restricted_duration": 1, "max_floating_duration": 4,
		"target_roles": []map[string]string{{"id": ops}}, "requester_roles": []map[string]string{{"id": devs}}, "requires_justification": true,
		"steps": []map[string]any{{"match": "any", "approvers": []map[string]any{{"role": map[string]string{"id": leads}}}}},
	})
	login := func(user string) {
		h.ok("Cli-pass-1234\n", "login", "--server", h.srv.URL, "--username", user, "--password-stdin", "--ca-file", h.caFile)
	}

	h.loginAdmin()
	if out := h.ok("", "workflows", "list"); !strings.Contains(out, "ops on call") || !strings.Contains(out, "TIME_RESTRICTED") {
		t.Fatalf("workflows list:\n%s", out)
	}
	login("alice")
	// The workflow requires a justification: the server's refusal names the field.
	h.fails(1, []string{"request_justification"}, "", "requests", "create", "--role", "jit-ops", "--start", "1h", "--end", "2h")
	id := strings.TrimSpace(h.ok("", "requests", "create", "--role", "jit-ops", "--start", "1h", "--end", "2h", "--justification", "incident 7"))
	floating := strings.TrimSpace(h.ok("", "requests", "create", "--role", "jit-ops", "--hours", "2", "--justification", "on call"))
	if out := h.ok("", "requests", "list"); !strings.Contains(out, id) || !strings.Contains(out, "PENDING") || !strings.Contains(out, "jit-ops") {
		t.Fatalf("requests list:\n%s", out)
	}
	h.fails(1, []string{"self-approval"}, "", "requests", "approve", id)

	login("bob")
	if items := h.listJSON("requests", "list", "--filter", "active_approvals"); len(items) != 2 {
		t.Fatalf("bob's queue: %v", items)
	}
	if out := h.ok("", "requests", "approve", id, "--comment", "go"); !strings.Contains(out, "APPROVED") {
		t.Fatalf("approve: %s", out)
	}
	h.fails(1, []string{"already-decided"}, "", "requests", "approve", id)
	if out := h.ok("", "requests", "reject", floating, "--comment", "not now"); !strings.Contains(out, "REJECTED") {
		t.Fatalf("reject: %s", out)
	}
	if out := h.ok("", "requests", "revoke", id); !strings.Contains(out, "REVOKED") {
		t.Fatalf("revoke: %s", out)
	}
	var got map[string]any
	h.jsonOut(&got, "requests", "get", id)
	if got["target_role_revoked"] != true {
		t.Fatalf("request after revoke: %v", got)
	}
}
