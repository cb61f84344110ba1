package configapi

import (
	"context"
	"errors"
	"github.com/gatehouse-dev/gatehouse/internal/connpolicy"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

var userlistBody = map[string]any{"name": "ops", "allow": "no_user", "except": []string{"alice"}}

func TestTransactionExpiresWhenIdle(t *testing.T) {
	h := newHarness(t)
	h.svc.TransactionIdleTimeout = 5 * time.Minute
	sid := h.login("admin")
	h.must("POST", "/api/configuration/policies/userlists", sid, userlistBody, http.StatusCreated)
	st := h.must("GET", "/api/transaction", sid, nil, 200)["body"].(map[string]any)
	if st["status"] != "open" || st["remaining_seconds"].(float64) != 300 {
		t.Fatalf("status after a write = %v, want open with 300 s", st)
	}
	h.clock.Advance(4 * time.Minute)
	st = h.must("GET", "/api/transaction", sid, nil, 200)["body"].(map[string]any)
	if st["status"] != "open" || st["remaining_seconds"].(float64) != 60 {
		t.Fatalf("status after 4 min = %v, want open with 60 s", st)
	}
	h.clock.Advance(61 * time.Second)
	st = h.must("GET", "/api/transaction", sid, nil, 200)["body"].(map[string]any)
	if st["status"] != "closed" {
		t.Fatalf("status after expiry = %v, want closed", st)
	}
	status, b := h.do("PUT", "/api/transaction", sid, map[string]string{"status": "commit"})
	if status != http.StatusConflict || errorCode(t, b) != CodeNoTransaction {
		t.Fatalf("commit after expiry: %d %s", status, b)
	}
	list := h.must("GET", "/api/configuration/policies/userlists", sid, nil, 200)["items"].([]any)
	if len(list) != 4 {
		t.Fatalf("expired transaction's object is visible: %v", list)
	}
	// Another session can now take the lock.
	other := h.login("admin")
	h.must("POST", "/api/transaction", other, nil, 200)
}

func TestSessionIdleExpiry(t *testing.T) {
	h := newHarness(t)
	sid := h.login("viewer")
	h.clock.Advance(19 * time.Minute)
	h.must("GET", "/api/configuration", sid, nil, 200) // a request restarts the idle period
	h.clock.Advance(19 * time.Minute)
	h.must("GET", "/api/configuration", sid, nil, 200)
	h.clock.Advance(20 * time.Minute)
	status, b := h.do("GET", "/api/configuration", sid, nil)
	if status != http.StatusUnauthorized || errorCode(t, b) != CodeUnauthenticated {
		t.Fatalf("after 20 idle minutes: %d %s", status, b)
	}
}

// TestCommitIsAtomic injects a failure after the first of three changes is written: nothing may be applied, the
// transaction stays open, and no audit event is stored.
func TestCommitIsAtomic(t *testing.T) {
	h := newHarness(t)
	sid := h.login("admin")
	for _, name := range []string{"a", "b", "c"} {
		h.must("POST", "/api/configuration/policies/userlists", sid, map[string]any{"name": name, "allow": "all_users"}, http.StatusCreated)
	}
	h.svc.beforeWrite = func(i int) error {
		if i == 1 {
			return errors.New("injected failure")
		}
		return nil
	}
	status, _ := h.do("PUT", "/api/transaction", sid, map[string]string{"status": "commit"})
	if status != http.StatusInternalServerError {
		t.Fatalf("commit with injected failure: %d", status)
	}
	objs, err := h.st.ConfigObjects(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 0 {
		t.Fatalf("a failed commit left %d objects applied", len(objs))
	}
	events, _, err := h.st.ListAudit(context.Background(), store.AuditFilter{Action: "commit"}, store.ListOptions{})
	if err != nil || len(events) != 0 {
		t.Fatalf("audit events after a failed commit: %v %v", events, err)
	}
	if st := h.must("GET", "/api/transaction", sid, nil, 200)["body"].(map[string]any); st["status"] != "open" || st["changes"].(float64) != 3 {
		t.Fatalf("transaction after failed commit = %v, want open with 3 changes", st)
	}
	h.svc.beforeWrite = nil
	h.must("PUT", "/api/transaction", sid, map[string]string{"status": "commit"}, 200)
	if objs, _ := h.st.ConfigObjects(context.Background()); len(objs) != 3 {
		t.Fatalf("after the retried commit: %d objects, want 3", len(objs))
	}
	events, _, _ = h.st.ListAudit(context.Background(), store.AuditFilter{Action: "commit"}, store.ListOptions{})
	if len(events) != 1 || len(events[0].Diff["changes"].([]any)) != 3 {
		t.Fatalf("commit audit = %+v", events)
	}
}

func TestCommitChecksReferences(t *testing.T) {
	h := newHarness(t)
	sid := h.login("admin")
	created := h.must("POST", "/api/configuration/policies/userlists", sid, userlistBody, http.StatusCreated)
	key := created["key"].(string)
	cp := map[string]any{"name": "ops-only", "rules": []any{map[string]any{"channels": []string{"http"},
		"allowed_for": map[string]any{"gateway_groups": []string{}, "remote_groups": []string{}, "userlists": []string{key}}}}}
	h.must("POST", "/api/configuration/http/channel_policies", sid, cp, http.StatusCreated)
	// Deleting the referenced list is staged, but the commit must refuse the dangling reference.
	h.must("DELETE", "/api/configuration/policies/userlists/"+key, sid, nil, 200)
	status, b := h.do("PUT", "/api/transaction", sid, map[string]string{"status": "commit"})
	if status != http.StatusBadRequest || errorCode(t, b) != CodeSemanticError {
		t.Fatalf("commit with a dangling reference: %d %s", status, b)
	}
	if objs, _ := h.st.ConfigObjects(context.Background()); len(objs) != 0 {
		t.Fatalf("refused commit applied %d objects", len(objs))
	}
	// A reference to a missing object is refused at write time too.
	status, b = h.do("POST", "/api/configuration/http/channel_policies", sid, map[string]any{"name": "x", "rules": []any{
		map[string]any{"channels": []string{"http"}, "allowed_for": map[string]any{"userlists": []string{"nope"}}}}})
	if status != http.StatusBadRequest || errorCode(t, b) != CodeSemanticError {
		t.Fatalf("write with a missing reference: %d %s", status, b)
	}
}

func TestCommitSwapsPolicies(t *testing.T) {
	h := newHarness(t)
	commits := 0
	h.svc.OnCommit = func() { commits++ }
	before := h.svc.Policies()
	sid := h.login("admin")
	body := connBody("only-10", []string{"10.0.0.0/8"}, []string{"*"}, nil)
	h.must("PUT", "/api/configuration/http/connections/-1", sid, map[string]any{"name": "default", "active": false,
		"network": map[string]any{"clients": []string{"0.0.0.0/0"}, "targets": []string{"*"}}}, 200)
	h.must("POST", "/api/configuration/http/connections", sid, body, http.StatusCreated)
	if h.svc.Policies() != before {
		t.Fatal("staged changes reached the enforced snapshot before commit")
	}
	h.must("PUT", "/api/transaction", sid, map[string]string{"status": "commit"}, 200)
	if commits != 1 {
		t.Fatalf("OnCommit ran %d times", commits)
	}
	if _, err := h.svc.Policies().Admit(mustAddr("192.168.1.1"), "api.example.com", 443); !errors.Is(err, connpolicy.ErrNoPolicy) {
		t.Fatalf("client outside the new policy: %v", err)
	}
	if d, err := h.svc.Policies().Admit(mustAddr("10.1.1.1"), "api.example.com", 443); err != nil || d.PolicyName != "only-10" {
		t.Fatalf("client inside the new policy: %v %v", d, err)
	}
}

func connBody(name string, clients, targets []string, ports []int) map[string]any {
	if ports == nil {
		ports = []int{}
	}
	return map[string]any{"name": name, "active": true, "network": map[string]any{"clients": clients, "targets": targets, "ports": ports}}
}
