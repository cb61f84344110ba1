package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestApprovalQueue: the approvals page lists the requests the user may decide and decides them through the
// service API, showing its refusals; a user who is no authorizer sees none.
func TestApprovalQueue(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	now := time.Now().UTC()
	req := approval.Request{SessionID: "s-console", PolicyKey: "-1", RequesterID: "u-x", Requester: "someone", ClientAddress: "127.0.0.9:4000",
		TargetID: "t-x", Target: "orders", RequestLine: "GET https://orders.test/v1/items", State: approval.StatePending,
		Rules: []approval.Rule{{Authorizer: "superuser", Permission: approval.PermAuthorize}}, Created: now, Expires: now.Add(time.Hour)}
	if err := gh.Server.Store().CreateApproval(context.Background(), &req); err != nil {
		t.Fatal(err)
	}

	newUser(t, gh, gh.AdminToken(), "dora", "Dora-pass-1234", auth.APIProxyCredentialsOwn)
	other := newWeb(t, gh.URL, roots(gh))
	other.signIn("dora", "Dora-pass-1234")
	if st, body, _ := other.get("/approvals"); st != http.StatusOK || strings.Contains(body, req.ID) || !strings.Contains(body, "No API session waits") {
		t.Fatalf("a non-authorizer's queue: %d %.500s", st, body)
	}

	w := newWeb(t, gh.URL, roots(gh))
	w.signIn("admin", testserver.AdminPassword)
	st, body, _ := w.get("/approvals")
	for _, want := range []string{req.ID, "someone", "127.0.0.9:4000", "GET https://orders.test/v1/items", `href="/approvals"`} {
		if st != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("queue %d lacks %q: %.800s", st, want, body)
		}
	}
	tok := w.csrf("/approvals")
	if st, _, _ := w.post("/approvals/"+req.ID, url.Values{"decision": {"approve"}, "comment": {"from the console"}}, nil); st == http.StatusSeeOther {
		t.Fatal("a decision without the form token was accepted")
	}
	st, _, hdr := w.post("/approvals/"+req.ID, url.Values{"csrf": {tok}, "decision": {"approve"}, "comment": {"from the console"}}, nil)
	if st != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), "/approvals?done=") {
		t.Fatalf("approve: %d %s", st, hdr.Get("Location"))
	}
	if got, _ := gh.Server.Store().Approval(context.Background(), req.ID); got.State != approval.StateApproved || got.Comment != "from the console" || got.Decider != "admin" {
		t.Fatalf("stored decision: %+v", got)
	}
	st, body, _ = w.post("/approvals/"+req.ID, url.Values{"csrf": {tok}, "decision": {"reject"}}, nil)
	if st != http.StatusConflict || !strings.Contains(body, "already decided") {
		t.Fatalf("deciding twice in the console: %d %.500s", st, body)
	}
}
