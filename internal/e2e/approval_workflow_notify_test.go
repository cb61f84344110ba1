package e2e_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/notify/smtptest"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestWorkflowNotifications: the just-in-time role requests of the workflow engine announce themselves through the
// same notifier as session approvals: a webhook event and an e-mail for the request and its approval.
func TestWorkflowNotifications(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	const W = "/workflow-engine/api/v1"
	hooks := &hookReceiver{}
	hookSrv := httptest.NewServer(hooks)
	t.Cleanup(hookSrv.Close)
	smtp := smtptest.Start(t, "", "")
	f.gh.JSON("PUT", "/settings/api/v1/settings/notifications", f.adm, map[string]any{
		"webhooks": []map[string]any{{"url": hookSrv.URL, "secret": "e2e-webhook-secret-0123"}},
		"smtp": map[string]any{"enabled": true, "host": smtp.Host, "port": smtp.Port, "from": "gatehouse@example.test",
			"to": []string{"leads@example.test"}, "tls_mode": "none"},
	}, http.StatusOK, nil)
	jitRole := f.gh.Create(rolesAPI+"/roles", f.adm, map[string]any{"name": "jit-ops", "permissions": []string{}})
	devs := f.gh.Create(rolesAPI+"/roles", f.adm, map[string]any{"name": "jit-devs", "permissions": []string{"workflows-requests"}})
	leads := f.gh.Create(rolesAPI+"/roles", f.adm, map[string]any{"name": "jit-leads", "permissions": []string{}})
	f.setRoles(f.roleID, devs)
	userWithRole(t, f, "bob", f.beta, f.roleID, leads)
	f.gh.Create(W+"/workflows", f.adm, map[string]any{
		"name": "ops on call", "grant_types": []string{"TIME_RESTRICTED"}, "max_time_restricted_duration": 1,
		"target_roles": []map[string]string{{"id": jitRole}}, "requester_roles": []map[string]string{{"id": devs}},
		"steps": []map[string]any{{"match": "any", "approvers": []map[string]any{{"role": map[string]string{"id": leads}}}}},
	})
	start := time.Now().UTC().Add(time.Minute)
	req := f.gh.Create(W+"/requests", f.gh.Token("alice", userPassword), map[string]any{"requested_role": map[string]string{"id": jitRole},
		"grant_type": "TIME_RESTRICTED", "grant_start": start.Format(time.RFC3339Nano), "grant_end": start.Add(time.Hour).Format(time.RFC3339Nano)})
	waitFor(t, "the webhook event of the role request", func() bool { return hooks.has("requested", req) })
	f.gh.JSON("POST", W+"/requests/"+req+"/decision", f.gh.Token("bob", userPassword), map[string]any{"step": 0, "decision": "approved"}, http.StatusOK, nil)
	waitFor(t, "the webhook event of the approval", func() bool { return hooks.has("approved", req) })
	smtp.WaitFor(t, "access request requested", "Role: jit-ops", "access request approved", "Request: "+req)
}
