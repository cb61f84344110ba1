package e2e_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/notify/smtptest"
	"github.com/gatehouse-dev/gatehouse/internal/testserver"
)

const approvalsAPI = proxyAPI + "/approvals"

// approvalReq is the part of an approval request the tests look at.
type approvalReq struct {
	ID             string `json:"id"`
	SessionID      string `json:"session_id"`
	Requester      string `json:"requester"`
	ClientAddress  string `json:"client_address"`
	Target         string `json:"target"`
	RequestLine    string `json:"request_line"`
	State          string `json:"state"`
	Decider        string `json:"decider"`
	DeciderAddress string `json:"decider_address"`
	Comment        string `json:"comment"`
}

// proxyError is the body of a refusal by the proxy.
type proxyError struct {
	Code       string `json:"error_code"`
	Message    string `json:"error_message"`
	ApprovalID string `json:"approval_request_id"`
}

// approvalClient is a Go client through the proxy whose connections come from the local address ip.
func (f *fixture) approvalClient(ip string) *http.Client {
	c := f.clientFrom(f.t, f.gh, ip)
	c.Timeout = 60 * time.Second
	return c
}

// hookReceiver records the events webhooks POST.
type hookReceiver struct {
	mu     sync.Mutex
	events []map[string]any
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var ev map[string]any
	if json.Unmarshal(b, &ev) != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.events = append(h.events, ev)
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// has reports whether an event of kind for request id arrived.
func (h *hookReceiver) has(kind, id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.events {
		if e["event"] == kind && e["request_id"] == id {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if ok() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestSessionApproval drives four-eyes approval (access_control authorize) through the real proxy: a request held
// until an authorizer approves, then forwarded; a pending refusal naming the request, then passing once approved;
// rejected and expired sessions refused without reaching the target; require_different_username and
// require_different_ip; the audit log, the trail, and notifications by webhook and a real SMTP server.
func TestSessionApproval(t *testing.T) {
	// The wait must outlast what the held-request subtests do meanwhile on a loaded machine (-race, argon2id logins).
	const wait, timeout = 6 * time.Second, 10 * time.Second
	f := newFixture(t, testserver.Options{Configure: func(c *config.Config) { c.ApprovalWait, c.ApprovalTimeout = wait, timeout }})
	gh := f.gh

	hooks := &hookReceiver{}
	hookSrv := httptest.NewServer(hooks)
	t.Cleanup(hookSrv.Close)
	smtp := smtptest.Start(t, "", "")
	gh.JSON("PUT", "/settings/api/v1/settings/notifications", f.adm, map[string]any{
		"webhooks": []map[string]any{{"url": hookSrv.URL + "/gatehouse", "secret": "e2e-webhook-secret-0123"}},
		"smtp": map[string]any{"enabled": true, "host": smtp.Host, "port": smtp.Port, "from": "gatehouse@example.test",
			"to": []string{"approvers@example.test"}, "tls_mode": "none"},
	}, http.StatusOK, nil)

	approvers := gh.Create(rolesAPI+"/roles", f.adm, map[string]any{"name": "approvers", "permissions": []string{"api-proxy-credentials-own"}})
	f.setRoles(f.roleID, approvers) // alice may approve too, but not her own sessions
	userWithRole(t, f, "bob", f.beta, f.roleID, approvers)
	userWithRole(t, f, "carol", f.beta, f.roleID) // no authorizer
	alice, bob, carol := gh.Token("alice", userPassword), gh.Token("bob", userPassword), gh.Token("carol", userPassword)

	cfg := newCfgAdmin(t, gh)
	cfg.editDefault(func(b map[string]any) {
		b["access_control"] = []map[string]any{{"authorizer": "approvers", "permission": "authorize",
			"require_different_username": true, "require_different_ip": true, "subject": map[string]any{"selection": "everybody"}}}
	})

	pending := func(t *testing.T, token, credPath string) approvalReq {
		t.Helper()
		var found approvalReq
		waitFor(t, "a pending approval request", func() bool {
			var list struct {
				Count int           `json:"count"`
				Items []approvalReq `json:"items"`
			}
			gh.JSON("GET", approvalsAPI+"?state=pending", token, nil, http.StatusOK, &list)
			for _, r := range list.Items {
				if strings.HasSuffix(r.RequestLine, credPath) {
					found = r
					return true
				}
			}
			return false
		})
		return found
	}
	decide := func(token, id, decision string, want int) (approvalReq, map[string]any) {
		status, body := gh.Do("POST", approvalsAPI+"/"+id+"/decision", token, map[string]string{"decision": decision, "comment": "checked " + decision})
		if status != want {
			t.Fatalf("%s %s: %d, want %d: %s", decision, id, status, want, body)
		}
		var out approvalReq
		var raw map[string]any
		json.Unmarshal(body, &out)
		json.Unmarshal(body, &raw)
		return out, raw
	}
	hitsOn := func(path string) int {
		n := 0
		for _, r := range f.https.Requests() {
			if r.Path == path {
				n++
			}
		}
		return n
	}
	type result struct {
		status int
		body   string
	}
	async := func(c *http.Client, url, secret string) chan result {
		ch := make(chan result, 1)
		go func() {
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Authorization", "Bearer "+secret)
			resp, err := c.Do(req)
			if err != nil {
				ch <- result{0, err.Error()}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			ch <- result{resp.StatusCode, string(b)}
		}()
		return ch
	}
	base := "https://" + f.https.HostPort

	var approvedID string
	t.Run("held until approved, then forwarded", func(t *testing.T) {
		c := f.credential(f.alpha, "held", nil)
		cl := f.approvalClient("127.0.0.2")
		res := async(cl, base+"/api/held", c.Secret)
		req := pending(t, bob, "/api/held")
		if req.Requester != "alice" || req.Target != "alpha" || !strings.HasPrefix(req.ClientAddress, "127.0.0.2:") ||
			req.RequestLine != "GET "+base+"/api/held" {
			t.Fatalf("approval request shows %+v", req)
		}
		if n := hitsOn("/api/held"); n != 0 {
			t.Fatalf("the held request reached the target %d times before approval", n)
		}
		// The requester holds the authorizer role, but require_different_username names itself.
		_, refusal := decide(alice, req.ID, "approve", http.StatusForbidden)
		if refusal["error_code"] != "FORBIDDEN" || refusal["property"] != "require_different_username" {
			t.Fatalf("self-approval refused with %v", refusal)
		}
		// Someone who holds no authorizer role does not even see it.
		decide(carol, req.ID, "approve", http.StatusNotFound)
		got, _ := decide(bob, req.ID, "approve", http.StatusOK)
		if got.State != "approved" || got.Decider != "bob" || got.DeciderAddress != "127.0.0.1" {
			t.Fatalf("approval stored as %+v", got)
		}
		r := <-res
		if r.status != http.StatusOK || hitsOn("/api/held") != 1 {
			t.Fatalf("held request after approval: %d %s, origin saw it %d times", r.status, r.body, hitsOn("/api/held"))
		}
		checkInjected(t, f.https.Requests()[len(f.https.Requests())-1], alphaToken, c.Secret)
		if st, body := f.do(cl, "GET", base+"/api/held-again", c.Secret, ""); st != http.StatusOK {
			t.Fatalf("a later request of the approved session: %d %s", st, body)
		}
		_, again := decide(bob, req.ID, "reject", http.StatusConflict)
		if again["error_code"] != "CONFLICT" || again["property"] != "state" {
			t.Fatalf("deciding twice: %v", again)
		}
		approvedID = req.ID

		// The approval covers that session only: the same credential from another address waits again.
		res2 := async(f.approvalClient("127.0.0.4"), base+"/api/other-session", c.Secret)
		other := pending(t, bob, "/api/other-session")
		if other.ID == req.ID || other.SessionID == req.SessionID {
			t.Fatalf("a second session reused the approval: %+v", other)
		}
		decide(bob, other.ID, "reject", http.StatusOK)
		if r := <-res2; r.status != http.StatusForbidden || errorCode(r.body) != "APPROVAL_REJECTED" {
			t.Fatalf("rejected second session: %d %s", r.status, r.body)
		}

		// Trail and audit log have the decision.
		_, trail := gh.Do("GET", connsAPI+"/connections/"+req.SessionID+"/trail", f.adm, nil)
		if !strings.Contains(string(trail), "approved by bob") || !strings.Contains(string(trail), "approval: requested") {
			t.Errorf("the session's trail does not show the approval: %.2000s", trail)
		}
		_, audit := gh.Do("GET", "/audit/api/v1/events?limit=200", f.adm, nil)
		for _, a := range []string{`"approval-request"`, `"approval-approve"`, `"approval-reject"`, "require_different_username"} {
			if !strings.Contains(string(audit), a) {
				t.Errorf("the audit log lacks %s", a)
			}
		}
	})

	t.Run("wait runs out, later requests pass once approved", func(t *testing.T) {
		c := f.credential(f.alpha, "late", nil)
		cl := f.approvalClient("127.0.0.2")
		st, body := f.do(cl, "GET", base+"/api/late", c.Secret, "")
		var pe proxyError
		json.Unmarshal([]byte(body), &pe)
		if st != http.StatusForbidden || pe.Code != "APPROVAL_PENDING" || pe.ApprovalID == "" || !strings.Contains(pe.Message, pe.ApprovalID) {
			t.Fatalf("after the wait: %d %s", st, body)
		}
		if hitsOn("/api/late") != 0 {
			t.Fatal("a pending request reached the target")
		}
		decide(bob, pe.ApprovalID, "approve", http.StatusOK)
		if st, body := f.do(cl, "GET", base+"/api/late", c.Secret, ""); st != http.StatusOK || hitsOn("/api/late") != 1 {
			t.Fatalf("after approval: %d %s", st, body)
		}
	})

	var rejectedID string
	t.Run("rejected is final", func(t *testing.T) {
		c := f.credential(f.alpha, "rejected", nil)
		cl := f.approvalClient("127.0.0.2")
		res := async(cl, base+"/api/rejected", c.Secret)
		req := pending(t, bob, "/api/rejected")
		decide(bob, req.ID, "reject", http.StatusOK)
		r := <-res
		var pe proxyError
		json.Unmarshal([]byte(r.body), &pe)
		if r.status != http.StatusForbidden || pe.Code != "APPROVAL_REJECTED" || pe.ApprovalID != req.ID {
			t.Fatalf("held request after rejection: %d %s", r.status, r.body)
		}
		decide(bob, req.ID, "approve", http.StatusConflict) // rejection is final
		if st, body := f.do(cl, "GET", base+"/api/rejected", c.Secret, ""); st != http.StatusForbidden || errorCode(body) != "APPROVAL_REJECTED" {
			t.Fatalf("later request of a rejected session: %d %s", st, body)
		}
		if n := hitsOn("/api/rejected"); n != 0 {
			t.Fatalf("a rejected session reached the target %d times", n)
		}
		rejectedID = req.ID
	})

	t.Run("require_different_ip", func(t *testing.T) {
		c := f.credential(f.alpha, "same-ip", nil)
		res := async(f.approvalClient("127.0.0.1"), base+"/api/same-ip", c.Secret) // bob calls the API from 127.0.0.1 too
		req := pending(t, bob, "/api/same-ip")
		_, refusal := decide(bob, req.ID, "approve", http.StatusForbidden)
		if refusal["error_code"] != "FORBIDDEN" || refusal["property"] != "require_different_ip" {
			t.Fatalf("approval from the requester's address refused with %v", refusal)
		}
		if r := <-res; r.status != http.StatusForbidden || errorCode(r.body) != "APPROVAL_PENDING" {
			t.Fatalf("request of the still-pending session: %d %s", r.status, r.body)
		}
		if hitsOn("/api/same-ip") != 0 {
			t.Fatal("an unapproved session reached the target")
		}
	})

	t.Run("terminated while held", func(t *testing.T) {
		c := f.credential(f.alpha, "terminated", nil)
		res := async(f.approvalClient("127.0.0.2"), base+"/api/terminated", c.Secret)
		req := pending(t, bob, "/api/terminated")
		gh.JSON("POST", connsAPI+"/terminate/connection/"+req.SessionID, f.adm, nil, http.StatusOK, nil)
		if r := <-res; r.status != http.StatusForbidden {
			t.Fatalf("held request of a terminated session: %d %s", r.status, r.body)
		}
		if hitsOn("/api/terminated") != 0 {
			t.Fatal("a terminated session's held request reached the target")
		}
	})

	var expiredID string
	t.Run("expired is final", func(t *testing.T) {
		c := f.credential(f.alpha, "expired", nil)
		cl := f.approvalClient("127.0.0.2")
		st, body := f.do(cl, "GET", base+"/api/expired", c.Secret, "")
		var pe proxyError
		json.Unmarshal([]byte(body), &pe)
		if st != http.StatusForbidden || pe.Code != "APPROVAL_PENDING" {
			t.Fatalf("first request: %d %s", st, body)
		}
		expiredID = pe.ApprovalID
		waitFor(t, "the approval request to expire", func() bool {
			var r approvalReq
			gh.JSON("GET", approvalsAPI+"/"+pe.ApprovalID, bob, nil, http.StatusOK, &r)
			return r.State == "expired"
		})
		_, late := decide(bob, pe.ApprovalID, "approve", http.StatusConflict)
		if late["error_code"] != "CONFLICT" {
			t.Fatalf("approving an expired request: %v", late)
		}
		if st, body := f.do(cl, "GET", base+"/api/expired", c.Secret, ""); st != http.StatusForbidden || errorCode(body) != "APPROVAL_EXPIRED" {
			t.Fatalf("later request of an expired session: %d %s", st, body)
		}
		if hitsOn("/api/expired") != 0 {
			t.Fatal("an expired session reached the target")
		}
	})

	t.Run("notifications", func(t *testing.T) {
		for _, w := range []struct{ kind, id string }{{"requested", approvedID}, {"approved", approvedID}, {"rejected", rejectedID}, {"expired", expiredID}} {
			waitFor(t, "webhook event "+w.kind, func() bool { return hooks.has(w.kind, w.id) })
		}
		smtp.WaitFor(t, "Subject: [Gatehouse] session approval requested: alice for alpha", "Request: "+approvedID,
			"session approval approved: alice for alpha", "Decided by: bob", "session approval expired: alice for alpha")
		// The settings never show the SMTP password, and the API refuses a bad field by name.
		status, body := gh.Do("PUT", "/settings/api/v1/settings/notifications", f.adm, map[string]any{"webhooks": []map[string]any{{"url": "ftp://x"}}})
		if status != http.StatusBadRequest || !strings.Contains(string(body), `"property":"webhooks[0].url"`) {
			t.Fatalf("bad webhook: %d %s", status, body)
		}
	})
}

// TestSessionApprovalSubjectAndAudit: access_control applies to its subject group only, and an audit rule lets its
// role read the connections it covers and their trails, and nothing else.
func TestSessionApprovalSubjectAndAudit(t *testing.T) {
	f := newFixture(t, testserver.Options{Configure: func(c *config.Config) { c.ApprovalWait = 2 * time.Second }})
	gh := f.gh
	perms := []string{"api-proxy-credentials-own"}
	contractors := gh.Create(rolesAPI+"/roles", f.adm, map[string]any{"name": "contractors", "permissions": perms})
	approvers := gh.Create(rolesAPI+"/roles", f.adm, map[string]any{"name": "approvers", "permissions": perms})
	auditors := gh.Create(rolesAPI+"/roles", f.adm, map[string]any{"name": "auditors", "permissions": perms})
	dave := userWithRole(t, f, "dave", f.alpha, f.roleID, contractors)
	userWithRole(t, f, "bob", f.beta, f.roleID, approvers)
	userWithRole(t, f, "erin", f.beta, auditors)
	bob, erin := gh.Token("bob", userPassword), gh.Token("erin", userPassword)
	cfg := newCfgAdmin(t, gh)
	cfg.editDefault(func(b map[string]any) {
		b["access_control"] = []map[string]any{
			{"authorizer": "approvers", "permission": "authorize", "subject": map[string]any{"selection": "only", "group": "contractors"}},
			{"authorizer": "auditors", "permission": "audit", "subject": map[string]any{"selection": "everybody"}},
		}
	})
	base := "https://" + f.https.HostPort

	// alice is no contractor: her session needs no approval.
	c := f.credential(f.alpha, "staff", nil)
	if st, body := f.do(f.client(false), "GET", base+"/api/staff", c.Secret, ""); st != http.StatusOK {
		t.Fatalf("a session outside the subject group: %d %s", st, body)
	}
	// dave is: his waits, and passes once approved.
	st, body := f.do(f.client(false), "GET", base+"/api/contractor", dave.Secret, "")
	var pe proxyError
	json.Unmarshal([]byte(body), &pe)
	if st != http.StatusForbidden || pe.Code != "APPROVAL_PENDING" {
		t.Fatalf("a contractor's session: %d %s", st, body)
	}
	for _, r := range f.https.Requests() {
		if r.Path == "/api/contractor" {
			t.Fatal("the contractor's request reached the target before approval")
		}
	}
	// bob decides through the configuration API, SPS-style; erin (no authorizer) sees nothing there.
	bobCfg, erinCfg := cfgLogin(t, gh, "bob"), cfgLogin(t, gh, "erin")
	var list struct {
		Items []struct{ Key string } `json:"items"`
	}
	json.Unmarshal(bobCfg.call("GET", "/api/approvals?state=pending", nil, http.StatusOK), &list)
	if len(list.Items) != 1 || list.Items[0].Key != pe.ApprovalID {
		t.Fatalf("configuration API approvals for bob: %+v", list)
	}
	json.Unmarshal(erinCfg.call("GET", "/api/approvals", nil, http.StatusOK), &list)
	if len(list.Items) != 0 {
		t.Fatalf("a non-authorizer lists approval requests: %+v", list)
	}
	erinCfg.call("POST", "/api/approvals/"+pe.ApprovalID, map[string]string{"decision": "approve"}, http.StatusNotFound)
	var obj struct {
		Key  string      `json:"key"`
		Body approvalReq `json:"body"`
	}
	json.Unmarshal(bobCfg.call("POST", "/api/approvals/"+pe.ApprovalID, map[string]string{"decision": "approve", "comment": "ok"}, http.StatusOK), &obj)
	if obj.Key != pe.ApprovalID || obj.Body.State != "approved" || obj.Body.Decider != "bob" {
		t.Fatalf("configuration API decision: %+v", obj)
	}
	bobCfg.call("POST", "/api/approvals/"+pe.ApprovalID, map[string]string{"decision": "reject"}, http.StatusConflict)
	if st, body := f.do(f.client(false), "GET", base+"/api/contractor", dave.Secret, ""); st != http.StatusOK {
		t.Fatalf("after approval: %d %s", st, body)
	}

	// erin audits: she reads alice's connection and its trail, live and not, and nothing else.
	sid := f.session(c.ID)
	for _, p := range []string{"", "/trail"} {
		if st, body := gh.Do("GET", connsAPI+"/connections/"+sid+p, erin, nil); st != http.StatusOK {
			t.Fatalf("auditor GET connection%s: %d %s", p, st, body)
		}
	}
	_, trail := gh.Do("GET", connsAPI+"/connections/"+sid+"/trail", erin, nil)
	if !strings.Contains(string(trail), "/api/staff") {
		t.Errorf("the auditor's trail lacks the exchange: %.1000s", trail)
	}
	req, _ := http.NewRequest("GET", gh.URL+connsAPI+"/connections/"+sid+"/trail/stream", nil)
	req.Header.Set("Authorization", "Bearer "+erin)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := gh.Client.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("auditor following the live trail: %d", resp.StatusCode)
	}
	for _, x := range []struct{ method, path string }{
		{"GET", connsAPI + "/connections/" + sid + "/trail/verify"},
		{"POST", connsAPI + "/terminate/connection/" + sid},
		{"GET", proxyAPI + "/api-targets"},
	} {
		if st, body := gh.Do(x.method, x.path, erin, nil); st != http.StatusForbidden {
			t.Errorf("auditor %s %s: %d %s, want 403", x.method, x.path, st, body)
		}
	}
	// An authorizer without audit is no auditor.
	if st, _ := gh.Do("GET", connsAPI+"/connections/"+sid+"/trail", bob, nil); st != http.StatusForbidden {
		t.Errorf("an authorize-only role read a trail: %d", st)
	}
}

// cfgLogin is a configuration API session of a user, logged in with Basic as the reference scripts do.
func cfgLogin(t *testing.T, gh *testserver.Instance, user string) *cfgAdmin {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := gh.Client.Transport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	a := &cfgAdmin{t: t, gh: gh, c: &http.Client{Jar: jar, Transport: tr, Timeout: 30 * time.Second}}
	req, _ := http.NewRequest("GET", gh.URL+"/api/authentication", nil)
	req.SetBasicAuth(user, userPassword)
	resp, err := a.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("configuration API login of %s: %d", user, resp.StatusCode)
	}
	return a
}

// TestSessionApprovalCluster: a request held on node B is released by a decision made through node A's API (the
// held request finds it in the shared database), and only then reaches the target.
func TestSessionApprovalCluster(t *testing.T) {
	f := newFixture(t, testserver.Options{Postgres: true})
	b := f.joinNode(t)
	gh := f.gh
	approvers := gh.Create(rolesAPI+"/roles", f.adm, map[string]any{"name": "approvers", "permissions": []string{"api-proxy-credentials-own"}})
	userWithRole(t, f, "bob", f.beta, f.roleID, approvers)
	bob := gh.Token("bob", userPassword)
	newCfgAdmin(t, gh).editDefault(func(m map[string]any) {
		m["access_control"] = []map[string]any{{"authorizer": "approvers", "permission": "authorize", "subject": map[string]any{"selection": "everybody"}}}
	})
	base := "https://" + f.https.HostPort
	c := f.credential(f.alpha, "clustered", nil)
	// Node B has the commit once a probe of its own session is held there (the probe's client gives up quickly).
	probe := f.clientFrom(t, b, "127.0.0.50")
	probe.Timeout = 300 * time.Millisecond
	within(t, "node B holds sessions for approval", 10*time.Second, func() bool {
		req, _ := http.NewRequest("GET", base+"/api/probe", nil)
		req.Header.Set("Authorization", "Bearer "+c.Secret)
		resp, err := probe.Do(req)
		if err == nil {
			resp.Body.Close()
			return false
		}
		return true
	})
	f.https.Reset() // probes sent before the commit applied on B passed; count only what follows
	viaB := f.clientFrom(t, b, "127.0.0.2")
	viaB.Timeout = 60 * time.Second
	done := make(chan int, 1)
	go func() {
		st, _ := f.do(viaB, "GET", base+"/api/clustered", c.Secret, "")
		done <- st
	}()
	var id string
	waitFor(t, "the approval request of node B's session", func() bool {
		var list struct {
			Items []approvalReq `json:"items"`
		}
		gh.JSON("GET", approvalsAPI+"?state=pending", bob, nil, http.StatusOK, &list)
		for _, r := range list.Items {
			if strings.HasSuffix(r.RequestLine, "/api/clustered") {
				id = r.ID
				return true
			}
		}
		return false
	})
	for _, r := range f.https.Requests() {
		if r.Path == "/api/clustered" {
			t.Fatal("the held request reached the target before the decision")
		}
	}
	gh.JSON("POST", approvalsAPI+"/"+id+"/decision", bob, map[string]string{"decision": "approve"}, http.StatusOK, nil) // through node A
	select {
	case st := <-done:
		if st != http.StatusOK {
			t.Fatalf("node B's held request after approval on A: %d", st)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("node B's held request was not released by the decision on A")
	}
	n := 0
	for _, r := range f.https.Requests() {
		if r.Path == "/api/clustered" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("the target saw the approved request %d times", n)
	}
}
