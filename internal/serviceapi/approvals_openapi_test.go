package serviceapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/approval"
)

// exerciseApprovals runs the session approval and notification settings operations through the OpenAPI checker.
// The approval request is stored directly (a held proxy session makes one in internal/e2e), naming the admin's
// role as authorizer.
func exerciseApprovals(t *testing.T, cl *client, adm string) {
	const P = "/api-proxy/api/v1/approvals"
	now := time.Now().UTC()
	req := approval.Request{SessionID: "openapi-session", PolicyKey: "-1", RequesterID: "u-x", Requester: "someone",
		ClientAddress: "127.0.0.9:4000", TargetID: "t-x", Target: "orders", RequestLine: "GET https://orders.test/v1",
		State: approval.StatePending, Rules: []approval.Rule{{Authorizer: "superuser", Permission: approval.PermAuthorize}},
		Created: now, Expires: now.Add(time.Hour)}
	if err := cl.gh.Server.Store().CreateApproval(context.Background(), &req); err != nil {
		t.Fatal(err)
	}
	cl.do(exchange{method: "GET", path: P + "?state=pending", token: adm, want: 200})
	cl.do(exchange{method: "GET", path: P + "?state=maybe", token: adm, want: 400, invalid: true})
	cl.do(exchange{method: "GET", path: P + "/" + req.ID, token: adm, want: 200})
	cl.do(exchange{method: "GET", path: P + "/no-such-request", token: adm, want: 404})
	cl.do(exchange{method: "POST", path: P + "/" + req.ID + "/decision", token: adm, want: 400, invalid: true, json: map[string]any{"decision": "maybe"}})
	cl.do(exchange{method: "POST", path: P + "/" + req.ID + "/decision", token: adm, want: 200, json: map[string]any{"decision": "approve", "comment": "fine"}})
	cl.do(exchange{method: "POST", path: P + "/" + req.ID + "/decision", token: adm, want: 409, json: map[string]any{"decision": "reject"}})

	const N = "/settings/api/v1/settings/notifications"
	cl.do(exchange{method: "GET", path: N, token: adm, want: 200})
	cl.do(exchange{method: "PUT", path: N, token: adm, want: 200, json: map[string]any{
		"webhooks": []map[string]any{{"url": "https://hooks.example.test/gatehouse", "events": []string{"requested"}, "secret": "hook-secret-0123456789"}},
		"smtp": map[string]any{"enabled": true, "host": "127.0.0.1", "port": 25, "from": "gh@example.test", "to": []string{"ops@example.test"},
			"tls_mode": "starttls", "username": "gh", "password": "smtp-pass-1"}}})
	cl.do(exchange{method: "PUT", path: N, token: adm, want: 400, json: map[string]any{"smtp": map[string]any{"enabled": true, "port": 25}}})
}
