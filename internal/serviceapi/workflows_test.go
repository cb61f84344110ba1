package serviceapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// exerciseWorkflows drives the workflow engine's routes with the PrivX SDK's bodies (testdata/privx) through the
// document checker: a workflow, a request, the refusals by rule, a decision, a revocation and the audit trail.
func exerciseWorkflows(t *testing.T, cl *client, adm string) {
	const (
		U = "/local-user-store/api/v1"
		R = "/role-store/api/v1"
		W = "/workflow-engine/api/v1"
	)
	role := func(name string, perms ...string) string {
		return cl.id(exchange{method: "POST", path: R + "/roles", token: adm, want: 201, json: map[string]any{"name": name, "permissions": append([]string{}, perms...)}})
	}
	user := func(name, roleID string) (string, string) {
		id := cl.id(exchange{method: "POST", path: U + "/users", token: adm, want: 201, json: map[string]any{"username": name, "password": "Jit-pass-123"}})
		cl.do(exchange{method: "PUT", path: R + "/users/" + id + "/roles", token: adm, want: 200, json: []map[string]string{{"id": roleID}}})
		return id, cl.gh.Token(name, "Jit-pass-123")
	}
	v := map[string]string{"name": "sdk-workflow-x", "target_role": role("jit-ops", "api-targets-view"),
		"requester_role": role("jit-devs", "workflows-requests"), "approver_role": role("jit-leads")}
	devID, dev := user("jit-dev", v["requester_role"])
	_, lead := user("jit-lead", v["approver_role"])

	privxShape(t, "status.json", cl.do(exchange{method: "GET", path: W + "/status", token: adm, want: 200}))
	privxShape(t, "workflow_settings.json", cl.do(exchange{method: "PUT", path: W + "/settings", token: adm, want: 200, json: privxBody(t, "workflow_settings.json", v)}))
	privxShape(t, "workflow_settings.json", cl.do(exchange{method: "GET", path: W + "/settings", token: adm, want: 200}))
	smtp := strings.Replace(privxBody(t, "workflow_settings.json", v), `"smtp_server": ""`, `"smtp_server": "smtp.example.com"`, 1)
	privxRefused(t, cl.do(exchange{method: "PUT", path: W + "/settings", token: adm, want: 400, json: smtp}), "smtp_server")
	cl.do(exchange{method: "PUT", path: W + "/settings", token: adm, want: 400, invalid: true, json: map[string]any{"request_role_max_approvers": -1}})
	cl.do(exchange{method: "GET", path: W + "/settings", token: dev, want: 403})

	// Workflows.
	body := privxBody(t, "workflow_create.json", v)
	wf := cl.id(exchange{method: "POST", path: W + "/workflows", token: adm, want: 201, json: body})
	cl.do(exchange{method: "POST", path: W + "/workflows", token: adm, want: 409, json: body})
	cl.do(exchange{method: "POST", path: W + "/workflows", token: dev, want: 403, json: body})
	missing := strings.Replace(body, v["approver_role"], "no-such-role", 1)
	missing = strings.Replace(missing, v["name"], "sdk-workflow-missing", 1)
	if b := cl.do(exchange{method: "POST", path: W + "/workflows", token: adm, want: 400, json: missing}); !strings.Contains(string(b), `"property":"steps[0].approvers[0].role.id"`) {
		t.Errorf("a workflow naming a missing role: %s", b)
	}
	cl.do(exchange{method: "POST", path: W + "/workflows", token: adm, want: 400, invalid: true, json: map[string]any{"name": "x", "colour": "red"}})
	privxShape(t, "workflow.json", cl.do(exchange{method: "GET", path: W + "/workflows/" + wf, token: adm, want: 200}))
	privxShape(t, "workflow_list.json", cl.do(exchange{method: "GET", path: W + "/workflows?offset=0&limit=10&sortkey=name&sortdir=asc&filter=sdk", token: adm, want: 200}))
	cl.do(exchange{method: "PUT", path: W + "/workflows/" + wf, token: adm, want: 200, json: body})
	cl.do(exchange{method: "GET", path: W + "/workflows/no-such-workflow", token: adm, want: 404})

	// A request, found by its role (the SDK's request names no workflow).
	start, end := time.Now().UTC().Add(time.Hour), time.Now().UTC().Add(2*time.Hour)
	v["start"], v["end"] = start.Format(time.RFC3339), end.Format(time.RFC3339)
	reqBody := privxBody(t, "request_create.json", v)
	noReason := strings.Replace(reqBody, `"incident 42"`, `""`, 1)
	if b := cl.do(exchange{method: "POST", path: W + "/requests", token: dev, want: 400, json: noReason}); !strings.Contains(string(b), `"property":"request_justification"`) {
		t.Errorf("a request without the justification its workflow requires: %s", b)
	}
	cl.do(exchange{method: "POST", path: W + "/requests", token: lead, want: 403, json: reqBody}) // lacks workflows-requests
	req := cl.id(exchange{method: "POST", path: W + "/requests", token: dev, want: 201, json: reqBody})
	privxShape(t, "request_list.json", cl.do(exchange{method: "GET", path: W + "/requests?offset=0&limit=5", token: dev, want: 200}))
	if b := cl.do(exchange{method: "GET", path: W + "/requests?filter=active_approvals", token: lead, want: 200}); !strings.Contains(string(b), req) {
		t.Errorf("the approver's queue lacks the request: %s", b)
	}
	if b := cl.do(exchange{method: "GET", path: W + "/requests?filter=active_approvals", token: dev, want: 200}); strings.Contains(string(b), req) {
		t.Errorf("the requester's approval queue holds their own request: %s", b)
	}
	cl.do(exchange{method: "GET", path: W + "/requests?filter=all", token: dev, want: 403})
	cl.do(exchange{method: "GET", path: W + "/requests?filter=mine", token: dev, want: 400, invalid: true})
	privxShape(t, "request.json", cl.do(exchange{method: "GET", path: W + "/requests/" + req, token: lead, want: 200}))

	// Decisions: the requester cannot approve, the approver can once.
	decision := privxBody(t, "request_decision.json", v)
	ruleOf := func(b []byte) string {
		var e struct {
			Details []struct {
				Code string `json:"error_code"`
			} `json:"details"`
		}
		json.Unmarshal(b, &e)
		if len(e.Details) != 1 {
			return ""
		}
		return strings.ReplaceAll(strings.ToLower(e.Details[0].Code), "_", "-")
	}
	if b := cl.do(exchange{method: "POST", path: W + "/requests/" + req + "/decision", token: dev, want: 403, json: decision}); ruleOf(b) != "self-approval" {
		t.Errorf("self approval: %s", b)
	}
	privxShape(t, "request.json", cl.do(exchange{method: "POST", path: W + "/requests/" + req + "/decision", token: lead, want: 200, json: decision}))
	if b := cl.do(exchange{method: "POST", path: W + "/requests/" + req + "/decision", token: lead, want: 409, json: decision}); ruleOf(b) != "already-decided" {
		t.Errorf("deciding twice: %s", b)
	}
	cl.do(exchange{method: "POST", path: W + "/requests/" + req + "/decision", token: lead, want: 400, invalid: true, json: map[string]any{"step": 0, "decision": "maybe"}})
	found := cl.do(exchange{method: "POST", path: W + "/requests/search?offset=0&limit=5", token: adm, want: 200, json: privxBody(t, "request_search.json", v)})
	if !strings.Contains(string(found), `"count":1,`) || !strings.Contains(string(found), `"status":"APPROVED"`) {
		t.Errorf("search: %s", found)
	}

	// A permanent grant holds at once; the role store shows it with its grant.
	perm := cl.id(exchange{method: "POST", path: W + "/requests", token: dev, want: 201, json: map[string]any{
		"requested_role": map[string]string{"name": "jit-ops"}, "grant_type": "PERMANENT", "request_justification": "on call"}})
	cl.do(exchange{method: "POST", path: W + "/requests/" + perm + "/decision", token: lead, want: 200, json: decision})
	if b := cl.do(exchange{method: "GET", path: R + "/users/" + devID + "/roles", token: adm, want: 200}); !strings.Contains(string(b), `"grant_type":"PERMANENT"`) {
		t.Errorf("the role store does not show the workflow grant: %s", b)
	}
	// Writing the user's roles back as read (the SDK's GetUserRoles then UpdateUserRoles) leaves the grant a
	// workflow's: the revocation below must still take the role away.
	var held struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(cl.do(exchange{method: "GET", path: R + "/users/" + devID + "/roles", token: adm, want: 200}), &held); err != nil || len(held.Items) == 0 {
		t.Fatalf("user roles: %v %v", err, held)
	}
	cl.do(exchange{method: "PUT", path: R + "/users/" + devID + "/roles", token: adm, want: 200, json: held.Items})
	// A grant_type on a role the user does not hold through a workflow is refused, naming the field.
	cl.do(exchange{method: "PUT", path: R + "/users/" + devID + "/roles", token: adm, want: 400,
		json: []map[string]any{{"id": v["target_role"], "grant_type": "PERMANENT"}, {"id": v["requester_role"], "grant_type": "PERMANENT"}}})
	cl.do(exchange{method: "POST", path: W + "/requests/" + perm + "/role/revoke", token: dev, want: 200})
	dev = cl.gh.Token("jit-dev", "Jit-pass-123") // losing the role ended dev's management sessions
	if b := cl.do(exchange{method: "GET", path: R + "/users/" + devID + "/roles", token: adm, want: 200}); strings.Contains(string(b), v["target_role"]) {
		t.Errorf("the role outlived its revocation: %s", b)
	}

	// Revocation, once.
	cl.do(exchange{method: "POST", path: W + "/requests/" + req + "/role/revoke", token: lead, want: 200})
	cl.do(exchange{method: "POST", path: W + "/requests/" + req + "/role/revoke", token: lead, want: 409})
	cl.do(exchange{method: "GET", path: W + "/requests/no-such-request", token: adm, want: 404})

	// Every decision, refused or taken, is in the audit log.
	audit := string(cl.do(exchange{method: "GET", path: "/audit/api/v1/events?object_type=workflow-request&limit=50", token: adm, want: 200}))
	for _, want := range []string{`"action":"decide","object_type":"workflow-request","object_id":"` + req, `"outcome":"failure"`, `"reason":"self-approval"`, `"action":"revoke"`} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit log lacks %s: %s", want, audit)
		}
	}
	cl.do(exchange{method: "DELETE", path: W + "/workflows/" + wf, token: adm, want: 200})
	cl.do(exchange{method: "DELETE", path: W + "/workflows/" + wf, token: adm, want: 404})
	if b := cl.do(exchange{method: "GET", path: W + "/requests/" + req, token: dev, want: 200}); !strings.Contains(string(b), fmt.Sprintf(`"status":%q`, "REVOKED")) {
		t.Errorf("a request outlives its workflow: %s", b)
	}
}

const wfePath = "/workflow-engine/api/v1"

// workflowBody is a minimal valid workflow that grants, is requested and approved through role.
func workflowBody(name, role string) map[string]any {
	ref := []map[string]string{{"id": role}}
	return map[string]any{"name": name, "grant_types": []string{"PERMANENT"}, "target_roles": ref, "requester_roles": ref,
		"steps": []map[string]any{{"match": "any", "approvers": []map[string]any{{"role": map[string]string{"id": role}}}}}}
}

func (e *matrixEnv) victimWorkflow() string {
	return e.gh.Create(wfePath+"/workflows", e.adm, workflowBody(e.unique("victim-wf"), e.role))
}

// TestWorkflowRules covers what the document exercise does not: the delegation rule on workflows, the settings'
// cap on approvers, and who may read a request.
func TestWorkflowRules(t *testing.T) {
	gh := testserver.Start(t, testserver.Options{})
	adm := gh.AdminToken()
	_, manager, _ := newUserWithRole(t, gh, adm, "wf-manager", "workflows-manage")
	powerful := gh.Create(rolesPath, adm, map[string]any{"name": "user-admins", "permissions": []string{"users-manage"}})
	plain := gh.Create(rolesPath, adm, map[string]any{"name": "plain", "permissions": []string{}})

	// A workflow hands out its target roles: a manager cannot make one for permissions they lack.
	status, b := gh.Do("POST", wfePath+"/workflows", manager, workflowBody("escalate", powerful))
	if status != http.StatusForbidden || !strings.Contains(string(b), `"property":"target_roles"`) || !strings.Contains(string(b), "users-manage") {
		t.Fatalf("workflow granting more than its author holds: %d %s", status, b)
	}
	gh.Create(wfePath+"/workflows", manager, workflowBody("fine", plain))

	// request_role_max_approvers takes effect.
	gh.JSON("PUT", wfePath+"/settings", adm, map[string]any{"request_role_max_approvers": 1}, http.StatusOK, nil)
	two := workflowBody("two approvers", plain)
	two["steps"] = []map[string]any{{"match": "all", "approvers": []map[string]any{
		{"role": map[string]string{"id": plain}}, {"role": map[string]string{"id": powerful}}}}}
	if status, b := gh.Do("POST", wfePath+"/workflows", adm, two); status != http.StatusBadRequest || !strings.Contains(string(b), `"property":"steps[0].approvers"`) {
		t.Fatalf("a step over the approver cap: %d %s", status, b)
	}

	// Only the request's requester, user, approvers and workflows-view holders see it.
	devID, dev, devRole := newUserWithRole(t, gh, adm, "wf-dev", "workflows-requests")
	_, outsider, _ := newUserWithRole(t, gh, adm, "wf-outsider")
	wf := workflowBody("dev access", plain)
	wf["requester_roles"] = []map[string]string{{"id": devRole}}
	gh.Create(wfePath+"/workflows", adm, wf)
	req := gh.Create(wfePath+"/requests", dev, map[string]any{"requested_role": map[string]string{"name": "plain"}, "grant_type": "PERMANENT"})
	if status, _ := gh.Do("GET", wfePath+"/requests/"+req, outsider, nil); status != http.StatusNotFound {
		t.Fatalf("an outsider reading the request: %d", status)
	}
	if status, _ := gh.Do("POST", wfePath+"/requests/"+req+"/decision", outsider, map[string]any{"step": 0, "decision": "approved"}); status != http.StatusNotFound {
		t.Fatalf("an outsider deciding: %d", status)
	}
	var got struct {
		TargetUser struct{ ID string } `json:"target_user"`
	}
	gh.JSON("GET", wfePath+"/requests/"+req, dev, nil, http.StatusOK, &got)
	if got.TargetUser.ID != devID {
		t.Fatalf("request for %s, want the requester %s", got.TargetUser.ID, devID)
	}
	// Requesting for another user needs workflows-requests-on-behalf.
	status, b = gh.Do("POST", wfePath+"/requests", dev, map[string]any{"requested_role": map[string]string{"name": "plain"},
		"grant_type": "PERMANENT", "target_user": map[string]string{"id": devID + "x"}})
	if status != http.StatusForbidden || !strings.Contains(string(b), `"error_code":"ON_BEHALF"`) {
		t.Fatalf("request on behalf without the permission: %d %s", status, b)
	}
}
