package jit_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/jit"
	"github.com/gatehouse-dev/gatehouse/internal/model"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/storetest"
	"github.com/gatehouse-dev/gatehouse/internal/testpg"
	"github.com/gatehouse-dev/gatehouse/internal/workflow"
)

func TestMain(m *testing.M) { testpg.Main(m) }

var ctx = context.Background()

func openStore(t *testing.T, pg bool) *store.Store { return storetest.New(t, pg) }

// clock is a fake clock the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// recorder keeps the events an engine emits.
type recorder struct {
	mu     sync.Mutex
	events []jit.Event
}

func (r *recorder) on(_ context.Context, e jit.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}
func (r *recorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Kind+":"+e.Request.Status)
	}
	return out
}

type fixture struct {
	st                *store.Store
	eng               *jit.Engine
	clk               *clock
	ev                *recorder
	changes           int
	ops, dev, lead    *model.Role
	alice, bob, carol workflow.Principal
	wf                *workflow.Workflow
}

func setup(t *testing.T, pg bool) *fixture {
	f := &fixture{st: openStore(t, pg), clk: &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}, ev: &recorder{}}
	f.eng = &jit.Engine{Store: f.st, Now: f.clk.Now, OnEvent: f.ev.on, OnChange: func(context.Context) { f.changes++ }}
	role := func(name string) *model.Role {
		r := &model.Role{Name: name, Permissions: []string{}}
		if err := f.st.CreateRole(ctx, r, "t"); err != nil {
			t.Fatal(err)
		}
		return r
	}
	user := func(name string, roles ...*model.Role) workflow.Principal {
		u := &model.User{Username: name, Enabled: true}
		if err := f.st.CreateUser(ctx, u, "t"); err != nil {
			t.Fatal(err)
		}
		p := workflow.Principal{ID: u.ID, Name: name}
		for _, r := range roles {
			p.RoleIDs = append(p.RoleIDs, r.ID)
		}
		if err := f.st.SetUserRoles(ctx, u.ID, p.RoleIDs); err != nil {
			t.Fatal(err)
		}
		return p
	}
	f.ops, f.dev, f.lead = role("ops"), role("dev"), role("lead")
	f.alice, f.bob, f.carol = user("alice", f.dev), user("bob", f.lead), user("carol", f.lead)
	f.wf = &workflow.Workflow{Name: "ops", GrantTypes: []string{workflow.GrantTimeRestricted, workflow.GrantPermanent}, MaxTimeRestrictedDuration: 1,
		TargetRoles: []workflow.Role{{ID: f.ops.ID}}, RequesterRoles: []workflow.Role{{ID: f.dev.ID}},
		Steps: []workflow.Step{{Match: workflow.MatchAny, Approvers: []workflow.Approver{{Role: workflow.Role{ID: f.lead.ID}}}}}}
	roles, err := f.eng.Roles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.wf.Validate(roles); err != nil {
		t.Fatal(err)
	}
	if err := f.st.CreateWorkflow(ctx, f.wf, "t"); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) holds(t *testing.T, p workflow.Principal, role *model.Role) bool {
	t.Helper()
	roles, err := f.st.UserRoles(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(roles, func(r *model.Role) bool { return r.ID == role.ID })
}

func (f *fixture) timed(t *testing.T, start, end time.Duration) *workflow.Request {
	t.Helper()
	s, e := f.clk.Now().Add(start), f.clk.Now().Add(end)
	// The workflow is found by the requested role.
	r, err := f.eng.Create(ctx, &workflow.Request{RequestedRole: &workflow.Role{ID: f.ops.ID}, GrantType: workflow.GrantTimeRestricted,
		GrantStart: &s, GrantEnd: &e}, f.alice, false)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestEngine(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := map[bool]string{false: "sqlite", true: "postgres"}[pg]
		t.Run(name+"/timed grant starts and ends on the clock", func(t *testing.T) {
			f := setup(t, pg)
			r := f.timed(t, time.Minute, time.Hour)
			if _, err := f.eng.Decide(ctx, r.ID, f.alice, workflow.Decision{Decision: workflow.DecisionApproved}); !isRule(err, workflow.RuleSelfApproval) {
				t.Fatalf("self approval = %v", err)
			}
			if _, err := f.eng.Decide(ctx, r.ID, f.bob, workflow.Decision{Decision: workflow.DecisionApproved, Comment: "ok"}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.eng.Decide(ctx, r.ID, f.carol, workflow.Decision{Decision: workflow.DecisionApproved}); !isRule(err, workflow.RuleNotPending) {
				t.Fatalf("decision on an approved request = %v", err)
			}
			if f.holds(t, f.alice, f.ops) {
				t.Fatal("held before the window")
			}
			f.clk.Add(time.Minute)
			if err := f.eng.Tick(ctx); err != nil {
				t.Fatal(err)
			}
			if !f.holds(t, f.alice, f.ops) || f.changes != 1 {
				t.Fatalf("not held at the start of the window (changes %d)", f.changes)
			}
			f.clk.Add(time.Hour - time.Minute - time.Microsecond)
			if err := f.eng.Tick(ctx); err != nil {
				t.Fatal(err)
			}
			if !f.holds(t, f.alice, f.ops) || f.changes != 1 {
				t.Fatal("the grant ended early, or a tick with nothing due reloaded the policy")
			}
			f.clk.Add(time.Microsecond)
			if err := f.eng.Tick(ctx); err != nil {
				t.Fatal(err)
			}
			if f.holds(t, f.alice, f.ops) || f.changes != 2 {
				t.Fatal("still held at the end of the window")
			}
			want := []string{"requested:PENDING", "approved:APPROVED", "expired:EXPIRED"}
			if got := f.ev.kinds(); !slices.Equal(got, want) {
				t.Fatalf("events = %v, want %v", got, want)
			}
			events, _, err := f.st.ListAudit(ctx, store.AuditFilter{ObjectType: "workflow-request", Action: "expire"}, store.ListOptions{})
			if err != nil || len(events) != 1 || events[0].ObjectID != r.ID {
				t.Fatalf("expiry audit = %v %v", err, events)
			}
		})
		t.Run(name+"/rejected, revoked and expired while pending", func(t *testing.T) {
			f := setup(t, pg)
			r := f.timed(t, 0, time.Hour)
			if _, err := f.eng.Decide(ctx, r.ID, f.bob, workflow.Decision{Decision: workflow.DecisionRejected, Comment: "no"}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.eng.Decide(ctx, r.ID, f.bob, workflow.Decision{Decision: workflow.DecisionApproved}); !isRule(err, workflow.RuleDecidedTwice) {
				t.Fatalf("deciding twice = %v", err)
			}
			p, err := f.eng.Create(ctx, &workflow.Request{RequestedRole: &workflow.Role{ID: f.ops.ID}, GrantType: workflow.GrantPermanent}, f.alice, false)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.eng.Decide(ctx, p.ID, f.carol, workflow.Decision{Decision: workflow.DecisionApproved}); err != nil {
				t.Fatal(err)
			}
			if !f.holds(t, f.alice, f.ops) {
				t.Fatal("permanent grant not held at once")
			}
			if _, err := f.eng.Revoke(ctx, p.ID, f.bob, false); err != nil {
				t.Fatal(err)
			}
			if f.holds(t, f.alice, f.ops) {
				t.Fatal("held after revoke")
			}
			q := f.timed(t, 0, time.Hour)
			f.clk.Add(time.Hour)
			if err := f.eng.Tick(ctx); err != nil {
				t.Fatal(err)
			}
			if got, _ := f.st.Request(ctx, q.ID); got.Status != workflow.StatusExpired {
				t.Fatalf("pending request after its window = %s", got.Status)
			}
			want := []string{"requested:PENDING", "rejected:REJECTED", "requested:PENDING", "approved:APPROVED", "revoked:REVOKED",
				"requested:PENDING", "expired:EXPIRED"}
			if got := f.ev.kinds(); !slices.Equal(got, want) {
				t.Fatalf("events = %v, want %v", got, want)
			}
		})
	}
}

func isRule(err error, rule string) bool {
	var re *workflow.RuleError
	return errors.As(err, &re) && re.Rule == rule
}
