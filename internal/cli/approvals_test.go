package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
)

// TestApprovalsCommands lists, approves and rejects approval requests through the CLI against a real server, and
// shows the server's refusals (deciding twice) as errors.
func TestApprovalsCommands(t *testing.T) {
	h := newHarness(t)
	h.loginAdmin()
	st := h.srv.Server.Store()
	now := time.Now().UTC()
	mk := func(session, line string) string {
		r := approval.Request{SessionID: session, PolicyKey: "-1", RequesterID: "u-x", Requester: "someone", ClientAddress: "127.0.0.9:4000",
			TargetID: "t-x", Target: "orders", RequestLine: line, State: approval.StatePending,
			Rules: []approval.Rule{{Authorizer: "superuser", Permission: approval.PermAuthorize}}, Created: now, Expires: now.Add(time.Hour)}
		if err := st.CreateApproval(context.Background(), &r); err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	a, b := mk("s-a", "GET https://orders.test/a"), mk("s-b", "GET https://orders.test/b")
	out := h.ok("", "approvals", "list", "--state", "pending")
	for _, want := range []string{a, b, "someone", "127.0.0.9:4000", "GET https://orders.test/a", "pending"} {
		if !strings.Contains(out, want) {
			t.Errorf("approvals list lacks %q:\n%s", want, out)
		}
	}
	if out := h.ok("", "approvals", "approve", a, "-m", "looks right"); !strings.Contains(out, "approved") {
		t.Errorf("approve printed %q", out)
	}
	if out := h.ok("", "approvals", "reject", b); !strings.Contains(out, "rejected") {
		t.Errorf("reject printed %q", out)
	}
	h.fails(1, []string{"already decided"}, "", "approvals", "reject", a)
	items := h.listJSON("approvals", "list")
	states := map[string]string{}
	for _, it := range items {
		states[it["id"].(string)] = it["state"].(string)
	}
	if states[a] != "approved" || states[b] != "rejected" {
		t.Fatalf("states after the decisions: %v", states)
	}
	if got, _ := st.Approval(context.Background(), a); got.Comment != "looks right" || got.Decider != "admin" {
		t.Errorf("stored decision: %+v", got)
	}
	if r := h.run("", "approvals", "list", "--state", "maybe"); r.code == 0 {
		t.Error("an unknown state was accepted")
	}
}
