package e2e_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

// TestJustInTimeRoleGrant follows a time-restricted role grant through the real proxy: before its window the
// target is refused and the origin sees nothing; inside the window a proxied request passes with the target's
// credential; when the window ends the role goes, the open session becomes UNAUTHORIZED, the next request is
// refused and the origin sees nothing more.
func TestJustInTimeRoleGrant(t *testing.T) {
	f := newFixture(t, testserver.Options{})
	const W = "/workflow-engine/api/v1"
	origin := startOrigin(t, nil)
	jitRole := f.gh.Create(rolesAPI+"/roles", f.adm, map[string]any{"name": "jit-ops", "permissions": []string{}})
	devs := f.gh.Create(rolesAPI+"/roles", f.adm, map[string]any{"name": "jit-devs", "permissions": []string{"workflows-requests"}})
	leads := f.gh.Create(rolesAPI+"/roles", f.adm, map[string]any{"name": "jit-leads", "permissions": []string{}})
	f.setRoles(f.roleID, devs)
	bob := f.gh.Create(usersAPI+"/users", f.adm, map[string]any{"username": "bob", "password": userPassword, "enabled": true})
	f.gh.JSON("PUT", rolesAPI+"/users/"+bob+"/roles", f.adm, []map[string]string{{"id": leads}}, http.StatusOK, nil)
	target := f.gh.Create(proxyAPI+"/api-targets", f.adm, map[string]any{
		"name": "jit-target", "roles": []map[string]string{{"id": jitRole}}, "audit_enabled": true,
		"authorized_endpoints": []map[string]any{
			{"host": origin.HostPort, "protocols": []string{"http"}, "methods": []string{"GET"}, "paths": []string{"/api/**"}}},
		"target_credential": map[string]any{"type": "token", "bearer_token": "jit-upstream-token-0123456789"},
	})
	// The admin prepares alice's credential before she holds the role; every request with it is refused until then.
	c := f.credential(target, "jit-cred", nil)
	f.gh.Create(W+"/workflows", f.adm, map[string]any{
		"name": "ops on call", "grant_types": []string{"TIME_RESTRICTED"}, "max_time_restricted_duration": 1,
		"target_roles": []map[string]string{{"id": jitRole}}, "requester_roles": []map[string]string{{"id": devs}},
		"steps": []map[string]any{{"match": "any", "approvers": []map[string]any{{"role": map[string]string{"id": leads}}}}},
	})

	start := time.Now().UTC().Add(5 * time.Second) // room for the setup below on a slow machine
	end := start.Add(3 * time.Second)
	alice, bobToken := f.gh.Token("alice", userPassword), f.gh.Token("bob", userPassword)
	req := f.gh.Create(W+"/requests", alice, map[string]any{"requested_role": map[string]string{"id": jitRole},
		"grant_type": "TIME_RESTRICTED", "grant_start": start.Format(time.RFC3339Nano), "grant_end": end.Format(time.RFC3339Nano)})
	f.gh.JSON("POST", W+"/requests/"+req+"/decision", bobToken, map[string]any{"step": 0, "decision": "approved"}, http.StatusOK, nil)

	cl := f.client(false)
	url := origin.URL + "/api/things"
	if status, _ := f.do(cl, "GET", url, c.Secret, ""); status < 400 || time.Now().After(start) {
		t.Fatalf("before the window: status %d (now %v, start %v)", status, time.Now(), start)
	}
	if n := len(origin.Requests()); n != 0 {
		t.Fatalf("the origin saw %d requests before the window", n)
	}

	// The window opens: the role appears in alice's roles and her requests pass.
	var status int
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if status, _ = f.do(cl, "GET", url, c.Secret, ""); status == http.StatusOK {
			break
		}
		origin.Reset()
	}
	if status != http.StatusOK {
		t.Fatalf("the grant never took effect: last status %d", status)
	}
	if time.Now().Before(start) {
		t.Fatal("a request passed before the window opened")
	}
	checkInjected(t, only(t, origin), "jit-upstream-token-0123456789", c.Secret)
	if _, b := f.gh.Do("GET", rolesAPI+"/users/"+f.userID+"/roles", f.adm, nil); !strings.Contains(string(b), jitRole) ||
		!strings.Contains(string(b), `"grant_type":"TIME_RESTRICTED"`) {
		t.Fatalf("the granted role is not among alice's roles: %s", b)
	}
	sess := f.session(c.ID)

	// The window closes: the session is cut at once, and nothing more reaches the origin.
	conn := f.waitConnection(c.ID, func(x connection) bool { return x.ID == sess && x.Status == "UNAUTHORIZED" })
	if time.Now().Before(end) {
		t.Fatalf("the session was cut before the window closed: %+v", conn)
	}
	origin.Reset()
	if status, _ := f.do(cl, "GET", url, c.Secret, ""); status < 400 {
		t.Fatalf("after the window: status %d", status)
	}
	if n := len(origin.Requests()); n != 0 {
		t.Fatalf("the origin saw %d requests after the window", n)
	}
	var got struct {
		Status string `json:"status"`
	}
	// Losing the role ended alice's management sessions as any role loss does; she signs in again.
	if status, _ := f.gh.Do("GET", W+"/requests/"+req, alice, nil); status != http.StatusUnauthorized {
		t.Fatalf("alice's token from before the role loss: status %d", status)
	}
	f.gh.JSON("GET", W+"/requests/"+req, f.gh.Token("alice", userPassword), nil, http.StatusOK, &got)
	if got.Status != "EXPIRED" {
		t.Fatalf("request status after the window = %s", got.Status)
	}
	if _, b := f.gh.Do("GET", rolesAPI+"/users/"+f.userID+"/roles", f.adm, nil); strings.Contains(string(b), jitRole) {
		t.Fatalf("the role outlived its window: %s", b)
	}
	// The clock's expiry is in the audit log, no earlier than the window's end.
	var audit struct {
		Items []struct {
			Time time.Time `json:"time"`
		} `json:"items"`
	}
	f.gh.JSON("GET", "/audit/api/v1/events?object_type=workflow-request&action=expire", f.adm, nil, http.StatusOK, &audit)
	if len(audit.Items) != 1 || audit.Items[0].Time.Before(end) {
		t.Fatalf("expiry audit = %+v, window end %v", audit.Items, end)
	}
}
