package store_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/workflow"
)

func userHolds(t *testing.T, s *store.Store, userID, roleID string) bool {
	t.Helper()
	roles, err := s.UserRoles(ctx, userID)
	if err != nil {
		t.Fatal(err)
	}
	inUserRoles := slices.ContainsFunc(roles, func(r *model.Role) bool { return r.ID == roleID })
	users, err := s.PolicyUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inPolicy := false
	for _, u := range users {
		if u.ID == userID {
			inPolicy = slices.Contains(u.RoleIDs, roleID)
		}
	}
	if inUserRoles != inPolicy {
		t.Fatalf("UserRoles says %v, PolicyUsers says %v", inUserRoles, inPolicy)
	}
	return inUserRoles
}

func TestWorkflowGrantLifecycle(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		s := e.S
		ops, dev, lead := mustRole(t, s, "ops"), mustRole(t, s, "dev"), mustRole(t, s, "lead")
		alice := mustUser(t, s, "alice")
		w := &workflow.Workflow{Name: "ops", GrantTypes: []string{workflow.GrantTimeRestricted}, MaxTimeRestrictedDuration: 1,
			MaxActiveRequests: 1, TargetRoles: []workflow.Role{{ID: ops.ID}}, RequesterRoles: []workflow.Role{{ID: dev.ID}},
			Steps: []workflow.Step{{Match: workflow.MatchAny, Approvers: []workflow.Approver{{Role: workflow.Role{ID: lead.ID}}}}}}
		names, _ := s.RoleNames(ctx)
		if err := w.Validate(func(id string) (string, bool) { n, ok := names[id]; return n, ok }); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateWorkflow(ctx, w, "admin"); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateWorkflow(ctx, &workflow.Workflow{Name: "ops"}, "admin"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate name = %v", err)
		}
		t0 := time.Now().UTC().Truncate(time.Microsecond)
		start, end := t0.Add(time.Minute), t0.Add(time.Hour)
		in := &workflow.Request{RequestedRole: &workflow.Role{ID: ops.ID}, GrantType: workflow.GrantTimeRestricted, GrantStart: &start, GrantEnd: &end}
		requester := workflow.Principal{ID: alice.ID, Name: "alice", RoleIDs: []string{dev.ID}}
		r, err := workflow.NewRequest(w, in, requester, &workflow.User{ID: alice.ID}, false, t0)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateRequest(ctx, r, w.MaxActiveRequests, t0); err != nil {
			t.Fatal(err)
		}
		again := *r
		var re *workflow.RuleError
		if err := s.CreateRequest(ctx, &again, w.MaxActiveRequests, t0); !errors.As(err, &re) || re.Rule != workflow.RuleActiveLimited {
			t.Fatalf("second active request = %v", err)
		}
		// A pending request is due at the end of its window.
		if due, _ := s.DueRequests(ctx, end); !slices.Contains(due, r.ID) {
			t.Fatalf("due at end = %v", due)
		}
		approver := workflow.Principal{ID: "u-lead", Name: "lead", RoleIDs: []string{lead.ID}}
		// A refused decision changes nothing stored.
		if _, err := s.MutateRequest(ctx, r.ID, t0, func(r *workflow.Request) error {
			return r.Decide(requester, workflow.Decision{Decision: workflow.DecisionApproved}, t0)
		}); !errors.As(err, &re) || re.Rule != workflow.RuleSelfApproval {
			t.Fatalf("self approval = %v", err)
		}
		got, err := s.MutateRequest(ctx, r.ID, t0, func(r *workflow.Request) error {
			return r.Decide(approver, workflow.Decision{Decision: workflow.DecisionApproved, Comment: "go"}, t0)
		})
		if err != nil || got.Status != workflow.StatusApproved {
			t.Fatalf("approve = %v, %+v", err, got)
		}
		if userHolds(t, s, alice.ID, ops.ID) {
			t.Fatal("role held before the window starts")
		}
		if due, _ := s.DueRequests(ctx, start.Add(-time.Microsecond)); len(due) != 0 {
			t.Fatalf("due before start = %v", due)
		}
		if due, _ := s.DueRequests(ctx, start); !slices.Contains(due, r.ID) {
			t.Fatalf("not due at start: %v", due)
		}
		if _, err := s.MutateRequest(ctx, r.ID, start, func(r *workflow.Request) error { r.Advance(start); return nil }); err != nil {
			t.Fatal(err)
		}
		if !userHolds(t, s, alice.ID, ops.ID) {
			t.Fatal("role not held inside the window")
		}
		stored, err := s.Request(ctx, r.ID)
		if err != nil || stored.Steps[0].Approvers[0].Comment != "go" || stored.Steps[0].Approvers[0].User.ID != "u-lead" {
			t.Fatalf("stored decision: %v %+v", err, stored)
		}
		before, _ := s.User(ctx, alice.ID)
		// The window ends: the role goes and alice's management sessions end.
		if _, err := s.MutateRequest(ctx, r.ID, end, func(r *workflow.Request) error {
			if !r.Advance(end) {
				t.Error("did not expire")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if userHolds(t, s, alice.ID, ops.ID) {
			t.Fatal("role still held after the window")
		}
		after, _ := s.User(ctx, alice.ID)
		if !after.TokensAfter.After(before.TokensAfter) {
			t.Fatal("losing the role did not end alice's management sessions")
		}
		if due, _ := s.DueRequests(ctx, end.Add(time.Hour)); len(due) != 0 {
			t.Fatalf("an expired request is still due: %v", due)
		}
		list, err := s.ListRequests(ctx, store.RequestFilter{UserID: alice.ID, Statuses: []string{workflow.StatusExpired}})
		if err != nil || len(list) != 1 || list[0].ID != r.ID {
			t.Fatalf("list = %v %v", err, list)
		}
		// The limit counts only active requests: a new one may be made now.
		if err := s.CreateRequest(ctx, &again, w.MaxActiveRequests, end); err != nil {
			t.Fatal(err)
		}
		// A deleted role shows as deleted in the workflow.
		if err := s.DeleteRole(ctx, lead.ID); err != nil {
			t.Fatal(err)
		}
		w2, err := s.Workflow(ctx, w.ID)
		if err != nil || !w2.Steps[0].Approvers[0].Role.Deleted || w2.TargetRoles[0].Deleted {
			t.Fatalf("workflow after role deletion: %v %+v", err, w2)
		}
		ws, total, err := s.ListWorkflows(ctx, store.ListOptions{Filter: "OP"})
		if err != nil || total != 1 || len(ws) != 1 {
			t.Fatalf("list workflows = %v %d", err, total)
		}
		if err := s.DeleteWorkflow(ctx, w.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Workflow(ctx, w.ID); !errors.Is(err, store.ErrNotExist) {
			t.Fatalf("deleted workflow = %v", err)
		}
		if _, err := s.Request(ctx, r.ID); err != nil {
			t.Fatalf("a request outlives its workflow: %v", err)
		}
	})
}

func TestWorkflowGrantKeepsExplicitRole(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		s := e.S
		ops := mustRole(t, s, "ops")
		bob := mustUser(t, s, "bob")
		if err := s.SetUserRoles(ctx, bob.ID, []string{ops.ID}); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		r := &workflow.Request{Requester: &workflow.User{ID: bob.ID}, TargetUser: &workflow.User{ID: bob.ID},
			RequestedRole: &workflow.Role{ID: ops.ID}, GrantType: workflow.GrantPermanent, Status: workflow.StatusApproved,
			GrantStart: &now, Created: now, Updated: now}
		if err := s.CreateRequest(ctx, r, 0, now); err != nil {
			t.Fatal(err)
		}
		if _, err := s.MutateRequest(ctx, r.ID, now, func(r *workflow.Request) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if _, err := s.MutateRequest(ctx, r.ID, now, func(r *workflow.Request) error {
			return r.Revoke(workflow.Principal{ID: bob.ID}, false, now)
		}); err != nil {
			t.Fatal(err)
		}
		if !userHolds(t, s, bob.ID, ops.ID) {
			t.Fatal("revoking the request took away bob's explicit grant")
		}
	})
}

func TestWorkflowSettingsSealPassword(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		set, err := e.S.WorkflowSettings(ctx)
		if err != nil || set != (workflow.Settings{}) {
			t.Fatalf("defaults = %+v %v", set, err)
		}
		set.MaxApprovers, set.Host, set.Password = 3, "smtp.example.com", "smtp-secret-pw"
		if err := e.S.SaveWorkflowSettings(ctx, set); err != nil {
			t.Fatal(err)
		}
		if dump := e.dumpTable(t, "settings"); strings.Contains(dump, "smtp-secret-pw") || !strings.Contains(dump, "smtp.example.com") {
			t.Fatalf("settings table: %s", dump)
		}
		got, err := e.S.WorkflowSettings(ctx)
		if err != nil || got != set {
			t.Fatalf("read back %+v %v, want %+v", got, err, set)
		}
	})
}
